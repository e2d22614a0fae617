"""Fast, vectorised reading of clean bronze CSV files, in bounded memory.

``iter_clean_batches`` streams a CSV export through pyarrow's CSV reader in record batches of
about ``BLOCK_BYTES`` of text, every column as text. It yields only records it can vouch for:
before pyarrow sees a block of bytes, ``_CleanCsvStream`` checks that the block is CSV exactly as
Python's ``csv`` module (strict) reads it, the way ``bronze_reader.iter_records`` does. Where it
cannot tell (a quote that is not an opening, closing or doubled quote, a blank line, an odd
number of quotes at the end of the file) it stops with ``NotClean``; pyarrow itself stops on
wrong field counts and bytes that are not UTF-8. The caller then hands the rest of the file to
``bronze_reader.iter_records``, which decides the quarantine record by record; the records
already yielded are numbered 1..n in file order, the same numbers ``iter_records`` gives them.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

BLOCK_BYTES = 8 << 20
_QUOTE, _COMMA, _LF, _CR = ord('"'), ord(","), ord("\n"), ord("\r")


class NotClean(Exception):
    """The file holds something the fast reader does not vouch for; the message says what."""


class _CleanCsvStream:
    """A read-only byte stream over a (gzip) CSV file that checks the CSV structure as it goes.

    Quotes are counted over the whole file: a quote with an even index must open a quoted field
    (after a separator, a line end or the file start) or be the second of a doubled quote; a
    quote with an odd index must close the field (before a separator, a line end or the end of
    the file) or be the first of a doubled quote. A line end right after a line end outside quotes
    is a blank line. Clean CSV passes these rules; a stray quote, text after a closing quote or an
    unterminated quote does not, and neither does a blank line.
    """

    def __init__(self, path: Path) -> None:
        self._raw: IO[bytes] = gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")  # noqa: SIM115
        self._quotes = 0  # quotes seen before the pending bytes
        self._prev = -1  # the byte before the pending bytes (-1: start of file)
        self._pending = b""  # read but not yet checked (the last byte waits for its successor)
        self._eof = False
        self.closed = False

    # pyarrow reads through these
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    def close(self) -> None:
        self._raw.close()
        self.closed = True

    def read(self, size: int = -1) -> bytes:
        if self._eof and not self._pending:
            return b""
        want = BLOCK_BYTES if size is None or size < 0 else max(size, 1)
        data = self._pending + (b"" if self._eof else self._raw.read(want + 1 - len(self._pending)))
        if len(data) <= want and not self._eof:
            more = self._raw.read(1)
            data += more
            self._eof = not more
        if len(data) <= want:
            self._eof = True
            out, self._pending = data, b""
        else:
            out, self._pending = data[:want], data[want:]
        self._check(out, data)
        return out

    def _check(self, out: bytes, data: bytes) -> None:
        buf = np.frombuffer(data, dtype=np.uint8)
        n = len(out)
        quotes = np.flatnonzero(buf[:n] == _QUOTE)
        if len(quotes):
            before = np.where(quotes > 0, buf[np.maximum(quotes - 1, 0)], self._prev).astype(np.int16)
            after_idx = quotes + 1
            has_after = after_idx < len(buf)
            after = np.where(has_after, buf[np.minimum(after_idx, len(buf) - 1)], -1).astype(np.int16)
            odd = (np.arange(len(quotes)) + self._quotes) % 2 == 1
            opening_ok = (before == _COMMA) | (before == _LF) | (before == _CR) | (before == _QUOTE) | (before == -1)
            closing_ok = (after == _COMMA) | (after == _LF) | (after == _CR) | (after == _QUOTE) | (after == -1)
            bad = np.where(odd, ~closing_ok, ~opening_ok)
            if bad.any():
                raise NotClean("a quote that neither opens, closes nor doubles a quoted field")
        self._blank_lines(buf[:n], quotes)
        self._quotes += len(quotes)
        self._prev = int(buf[n - 1]) if n else self._prev
        if self._eof and not self._pending and self._quotes % 2:
            raise NotClean("the file ends inside a quoted field")

    def _blank_lines(self, buf: np.ndarray, quotes: np.ndarray) -> None:
        ends = (buf == _LF) | (buf == _CR)
        prev_ends = np.empty_like(ends)
        prev_ends[1:] = ends[:-1]
        prev_ends[0] = self._prev in (_LF, _CR)
        # "\r\n" is one line end; any other pair of line-end bytes starts a blank line
        pair = ends & prev_ends
        if not pair.any():
            return
        where = np.flatnonzero(pair)
        prev_byte = np.where(where > 0, buf[np.maximum(where - 1, 0)], self._prev)
        where = where[~((buf[where] == _LF) & (prev_byte == _CR))]
        if not len(where):
            return
        inside = (np.searchsorted(quotes, where) + self._quotes) % 2 == 1
        if (~inside).any():
            raise NotClean("a blank line")


def iter_clean_batches(path: Path, header: list[str]) -> Iterator[pa.RecordBatch]:
    """Yield the file's records as batches of text columns named by ``header``, in file order.

    Empty fields are empty strings. Raises ``NotClean`` (or a pyarrow error) at the first block
    it cannot vouch for; the batches yielded before that are exact.
    """
    stream = _CleanCsvStream(path)
    reader = None
    try:
        reader = pcsv.open_csv(
            stream,
            read_options=pcsv.ReadOptions(block_size=BLOCK_BYTES, use_threads=True),
            parse_options=pcsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=True,
            ),
        )
        names = reader.schema.names
        if len(names) != len(header):
            raise NotClean(f"the header has {len(names)} fields, expected {len(header)}")
        for batch in reader:
            yield pa.RecordBatch.from_arrays(batch.columns, names=header)
    finally:
        # stop pyarrow's read-ahead (it reads the stream from its own thread) before closing the stream
        if reader is not None:
            reader.close()
        stream.close()
