"""Read bronze export files record by record, with each record's source position.

Structural problems (a record with the wrong number of fields, bytes that are not UTF-8) are
reported as ``BadRecord`` values, not exceptions, so the good records of the same file go on.
"""

from __future__ import annotations

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
    return buf.getvalue().encode("utf-8", "backslashreplace").decode("utf-8")


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


def iter_records(path: Path, header: list[str]) -> Iterator[Record | BadRecord]:
    """Yield every data record of a CSV or JSON bronze file, good or bad, in file order."""
    if ".json" in path.suffixes:
        yield from _iter_json(path, header)
        return
    width = len(header)
    with _open_text(path) as fh:
        reader = csv.reader(fh, strict=True)
        row = 0
        try:
            next(reader)  # header, validated by read_header
        except StopIteration:
            return
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                row += 1
                yield BadRecord(row, "broken_csv_record", f"line {reader.line_num}: {exc}", "")
                continue
            row += 1
            if len(values) != width:
                yield BadRecord(
                    row,
                    "wrong_field_count",
                    f"line {reader.line_num}: expected {width} fields, found {len(values)}",
                    raw_text(values),
                )
            elif _has_surrogates(values):
                detail = f"line {reader.line_num}: bytes that are not UTF-8"
                yield BadRecord(row, "invalid_utf8", detail, raw_text(values))
            else:
                yield Record(row, values)


def _iter_json(path: Path, header: list[str] | None = None) -> Iterator[Record | BadRecord]:
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
        yield Record(row, ["" if item[f] is None else str(item[f]) for f in header])
