"""Read bronze export files record by record, with each record's source position.

Structural problems (a record with the wrong number of fields, bytes that are not UTF-8) are
reported as ``BadRecord`` values, not exceptions, so the good records of the same file go on.
"""

from __future__ import annotations

import collections
import csv
import gzip
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# Real exports carry fields longer than the csv module's default 128 KiB limit.
csv.field_size_limit(min(sys.maxsize, (1 << 31) - 1))

BOM = "\ufeff"
# A field longer than this is quarantined as ``field_too_long`` (the csv module's own default limit);
# ``LAKEHOUSE_SILVER_MAX_FIELD_CHARS`` changes it for a silver run (see transforms.silver.job).
MAX_FIELD_CHARS = 131_072


class BronzeFormatError(ValueError):
    """A bronze file cannot be read at all (not a single record can be trusted)."""


@dataclass(frozen=True)
class Record:
    """A structurally sound record: one value per header field, in header order."""

    row: int  # 1-based data row number in the file (the header is row 0)
    values: list[str]


@dataclass(frozen=True)
class BadRecord:
    """A record that cannot be used; ``raw`` is its text as well as it could be recovered."""

    row: int
    reason: str
    detail: str
    raw: str


def _open_text(path: Path) -> IO[str]:
    raw: IO[bytes] = gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")  # noqa: SIM115
    # surrogateescape keeps undecodable bytes visible (as lone surrogates) instead of failing the file.
    return io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")


def _has_surrogates(values: list[str]) -> bool:
    try:
        "".join(values).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def raw_text(values: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(values)
    return _escaped(buf.getvalue())


def _escaped(text: str) -> str:
    """Text with undecodable bytes (kept as lone surrogates) shown as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def read_header(path: Path) -> list[str]:
    """Return the header of a bronze file (CSV header row, or the keys of the first JSON record)."""
    if ".json" in path.suffixes:
        for rec in _iter_json(path):
            return list(rec.values) if isinstance(rec, Record) else []
        return []
    with _open_text(path) as fh:
        try:
            header = next(csv.reader(fh))
        except StopIteration:
            raise BronzeFormatError(f"{path}: empty file, expected a CSV header row") from None
        except csv.Error as exc:
            raise BronzeFormatError(f"{path}: unreadable CSV header: {exc}") from None
    if header and header[0].startswith(BOM):
        header[0] = header[0][len(BOM) :]
    return header


class _Lines:
    """Physical lines of a text stream for ``csv.reader``, with push-back and the lines of the current record.

    When a record turns out to be broken (an unbalanced quote swallows the lines after it), the
    reader keeps only its first line as the bad record and reads the rest again: the good records
    that the stray quote had swallowed are not lost.
    """

    def __init__(self, fh: IO[str]) -> None:
        self._fh = fh
        self._pending: collections.deque[tuple[int, str]] = collections.deque()
        self._next_number = 1
        self.taken: list[tuple[int, str]] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._pending:
            item = self._pending.popleft()
        else:
            text = self._fh.readline()
            if not text:
                raise StopIteration
            item = (self._next_number, text)
            self._next_number += 1
        self.taken.append(item)
        return item[1]

    def push_back(self, items: list[tuple[int, str]]) -> None:
        self._pending.extendleft(reversed(items))


def _line_text(items: list[tuple[int, str]]) -> str:
    return _escaped("".join(t for _, t in items).rstrip("\r\n"))


def iter_records(path: Path, header: list[str], max_field_chars: int = MAX_FIELD_CHARS) -> Iterator[Record | BadRecord]:
    """Yield every data record of a CSV or JSON bronze file, good or bad, in file order.

    ``row`` counts the records after the header (1-based); details name the physical line. A
    record broken over several lines (an unbalanced quote) is reported by its first line and the
    lines after it are read again.
    """
    if ".json" in path.suffixes:
        yield from _iter_json(path, header, max_field_chars)
        return
    width = len(header)
    with _open_text(path) as fh:
        lines = _Lines(fh)
        reader = csv.reader(lines, strict=True)
        try:
            next(reader)  # header, validated by read_header
        except (StopIteration, csv.Error):
            return
        row = 0
        while True:
            lines.taken = []
            error: str | None = None
            try:
                values = next(reader)
            except StopIteration:
                if not lines.taken:
                    return
                values, error = [], "unexpected end of data"
            except csv.Error as exc:
                values, error = [], str(exc)
            taken = lines.taken
            if not taken:  # defensive: the reader made no progress
                return
            row += 1
            first = taken[0][0]
            if error is not None or len(values) != width:
                if len(taken) > 1:
                    # Keep the first line as the bad record; the lines it swallowed are read again.
                    lines.push_back(taken[1:])
                    why = error or f"{len(values)} fields instead of {width}"
                    detail = f"line {first}: broken record ({why}), likely an unbalanced quote; lines after it re-read"
                    yield BadRecord(row, "broken_csv_record", detail, _line_text(taken[:1]))
                elif error is not None:
                    yield BadRecord(row, "broken_csv_record", f"line {first}: {error}", _line_text(taken))
                else:
                    detail = f"line {first}: expected {width} fields, found {len(values)}"
                    yield BadRecord(row, "wrong_field_count", detail, raw_text(values))
                continue
            bad = _field_problem(values, header, max_field_chars)
            if bad is not None:
                reason, detail = bad
                yield BadRecord(row, reason, f"line {first}: {detail}", raw_text(values))
            else:
                yield Record(row, values)


def _field_problem(values: list[str], header: list[str], max_field_chars: int) -> tuple[str, str] | None:
    """The first structural problem of a record's values: bytes that are not UTF-8, or an oversized field."""
    if _has_surrogates(values):
        return "invalid_utf8", "bytes that are not UTF-8"
    if max(map(len, values), default=0) > max_field_chars:
        i = max(range(len(values)), key=lambda k: len(values[k]))
        return "field_too_long", f"{header[i]} has {len(values[i])} characters, over the {max_field_chars} limit"
    return None


def _iter_json(
    path: Path, header: list[str] | None = None, max_field_chars: int = MAX_FIELD_CHARS
) -> Iterator[Record | BadRecord]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        try:
            doc = json.load(fh)
        except ValueError as exc:
            raise BronzeFormatError(f"{path}: not a JSON document: {exc}") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise BronzeFormatError(f'{path}: expected {{"data": [...]}} at the top level')
    for row, item in enumerate(data, start=1):
        if header is None:  # read_header asks for the first record's keys
            if isinstance(item, dict):
                yield Record(0, list(item))
            return
        if not isinstance(item, dict):
            yield BadRecord(row, "broken_json_record", "record is not an object", json.dumps(item, ensure_ascii=False))
            continue
        missing = [f for f in header if f not in item]
        if missing:
            yield BadRecord(row, "wrong_field_count", f"missing fields {missing}", json.dumps(item, ensure_ascii=False))
            continue
        values = ["" if item[f] is None else str(item[f]) for f in header]
        bad = _field_problem(values, header, max_field_chars)
        if bad is not None:
            yield BadRecord(row, bad[0], bad[1], json.dumps(item, ensure_ascii=False))
        else:
            yield Record(row, values)
