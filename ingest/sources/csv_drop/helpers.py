"""Reading and checking a CSV file against a resource's declared schema.

The same reader serves the inbox check (a file with any problem is rejected whole) and silver
(which types the accepted files), so both see the same records.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ingest.sources.config import ResourceSpec
from ingest.sources.csv_drop.settings import CSV_FIELD_SIZE_LIMIT, IN_PROGRESS_SUFFIXES, MAX_PROBLEMS_LISTED
from ingest.sources.values import BadValue, convert_record

_SAFE_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")


class CsvFileError(ValueError):
    """The file as a whole cannot be read as the declared CSV (encoding, header); ``reason`` says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class CsvRecord:
    """One data row: its 1-based number (header = 0), its raw text and its values by header name."""

    row: int
    raw: str
    values: dict[str, str] | None  # None when the row is broken (see ``reason``)
    reason: str | None = None
    detail: str | None = None


def safe_file_name(name: str) -> str:
    """``name`` reduced to ``[A-Za-z0-9._-]`` (other runs become ``_``), never starting with a dot."""
    cleaned = _SAFE_NAME_RE.sub("_", name).lstrip(".") or "file"
    return cleaned[:150]


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: object) -> str:
    """``text`` with control characters (line breaks, escapes) written as ``\\n``, ``\\x1b``...: a file name put
    in a log line cannot start a line of its own."""
    return _CONTROL_RE.sub(lambda m: repr(m.group())[1:-1], str(text))


def left_alone(name: str) -> bool:
    """True for inbox names a pick-up skips: starting with ``.`` or ``_``, or a name a producer is still
    writing (``*.tmp``, ``*.part``, ... : write elsewhere, then rename into the inbox)."""
    return name.startswith((".", "_")) or name.lower().endswith(IN_PROGRESS_SUFFIXES)


def _encoding(resource: ResourceSpec) -> str:
    return "utf-8-sig" if resource.encoding.lower().replace("_", "-") in ("utf-8", "utf8") else resource.encoding


def read_header(path: Path, resource: ResourceSpec) -> list[str]:
    """The header row; CsvFileError when the file is empty, undecodable or lacks declared columns."""
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_SIZE_LIMIT))
    try:
        with open(path, encoding=_encoding(resource), newline="") as fh:
            header = next(csv.reader(fh, delimiter=resource.delimiter), None)
    except UnicodeDecodeError as exc:
        raise CsvFileError("invalid_encoding", f"not {resource.encoding} text at byte {exc.start}") from None
    except csv.Error as exc:
        raise CsvFileError("broken_csv_header", str(exc)) from None
    if header is None or not any(h.strip() for h in header):
        raise CsvFileError("empty_file", "no header row")
    header = [h.strip() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise CsvFileError("duplicate_columns", ", ".join(dupes))
    missing = [f.path for f in resource.fields if f.path not in header]
    if missing:
        raise CsvFileError("missing_columns", ", ".join(missing))
    return header


def iter_records(path: Path, resource: ResourceSpec, header: list[str]) -> Iterator[CsvRecord]:
    """Every data row of ``path`` (after its header) as a CsvRecord, in file order.

    Raises CsvFileError when the text cannot be decoded part-way through.
    """
    delimiter = resource.delimiter
    try:
        with open(path, encoding=_encoding(resource), newline="") as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            next(reader, None)
            row = 0
            while True:
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    row += 1
                    yield CsvRecord(row, "", None, "broken_csv_record", str(exc))
                    continue
                row += 1
                raw = delimiter.join(values)
                if not values or values == [""]:
                    continue  # blank line
                if len(values) != len(header):
                    yield CsvRecord(row, raw, None, "wrong_field_count",
                                    f"{len(values)} fields, the header has {len(header)}")  # fmt: skip
                    continue
                yield CsvRecord(row, raw, dict(zip(header, values, strict=True)))
    except UnicodeDecodeError as exc:
        raise CsvFileError("invalid_encoding", f"not {resource.encoding} text at byte {exc.start}") from None


@dataclass
class CheckResult:
    """What checking one file found: rows, and the problems (row number, reason, detail)."""

    header: list[str] = field(default_factory=list)
    rows: int = 0
    problems: list[tuple[int, str, str]] = field(default_factory=list)
    problem_count: int = 0
    file_error: CsvFileError | None = None

    @property
    def ok(self) -> bool:
        """True when the file can be loaded as it is."""
        return self.file_error is None and self.problem_count == 0

    def reason(self) -> str:
        """One line: the file error, or the count of bad rows and the first few."""
        if self.file_error is not None:
            return f"{self.file_error.reason}: {self.file_error.detail}"
        listed = "; ".join(f"row {row}: {why} ({detail})" for row, why, detail in self.problems)
        more = (
            f" (and {self.problem_count - len(self.problems)} more)" if self.problem_count > len(self.problems) else ""
        )
        return f"{self.problem_count} of {self.rows} rows do not fit the declared schema: {listed}{more}"

    def as_dict(self) -> dict[str, Any]:
        """The result as written to the ``.reason.json`` beside a quarantined file."""
        return {
            "reason": self.reason(),
            "rows": self.rows,
            "bad_rows": self.problem_count,
            "problems": [{"row": r, "reason": w, "detail": d} for r, w, d in self.problems],
            "file_error": None if self.file_error is None else self.file_error.reason,
        }


def check_file(path: Path, resource: ResourceSpec, tz: ZoneInfo) -> CheckResult:
    """Check every row of ``path`` against ``resource``'s schema (header, field count, types, required)."""
    result = CheckResult()
    try:
        result.header = read_header(path, resource)
        for rec in iter_records(path, resource, result.header):
            result.rows += 1
            problem: tuple[str, str] | None = None
            if rec.values is None:
                problem = (str(rec.reason), str(rec.detail))
            else:
                try:
                    convert_record(resource.fields, rec.values, tz, from_text=True)
                except BadValue as exc:
                    problem = (exc.reason, exc.detail)
            if problem is not None:
                result.problem_count += 1
                if len(result.problems) < MAX_PROBLEMS_LISTED:
                    result.problems.append((rec.row, *problem))
    except CsvFileError as exc:
        result.file_error = exc
    return result
