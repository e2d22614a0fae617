"""Bronze -> silver for a declared source: typed Parquet, deduplicated on the primary key, with quarantine.

For each resource of the source and the day D:

- records are read from the bronze partition in manifest order (JSON pages: the list at
  ``records_path``; CSV files: the data rows), each typed by the declared schema
  (:mod:`ingest.sources.values`); a record that does not fit goes to
  ``quarantine/<source>__<resource>/date=D/`` (the AppMetrica quarantine schema: reason, detail,
  raw text, bronze file and 1-based record number);
- with an incremental cursor, records whose cursor falls outside the day's window are dropped and
  counted (``outside_window``: an "updated after" API returns later records too);
- ``merge`` and ``replace`` keep one row per primary key: the one with the greatest cursor value,
  ties going to the record read last; ``append`` keeps every row;
- rows are written with the shared ``PartitionWriter`` to ``silver/<source>__<resource>/date=D/``,
  with the lineage columns ``export_date``, ``bronze_file`` and ``bronze_row``.

Every partition is staged and swapped in only when the whole day succeeded. When more than
``LAKEHOUSE_QUARANTINE_MAX_RATE`` of a resource's records are quarantined, the day fails, its
silver stays as it was and its quarantine is replaced (the AppMetrica rule).

Timestamps are naive UTC (``timestamp[us]``); arrays are Parquet lists.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from ingest.sources.config import FieldSpec, ResourceSpec, SourceSpec
from ingest.sources.csv_drop.helpers import CsvFileError, iter_records, read_header
from ingest.sources.values import BadValue, convert_record, get_path
from lakehouse.settings import Layout, parse_day
from transforms.silver.quarantine import QuarantineWriter, quarantine_max_rate, staged_day
from transforms.silver.writer import PartitionWriter, WriterLimits

log = logging.getLogger(__name__)

MANIFEST = "_manifest.json"
LINEAGE = (
    pa.field("export_date", pa.date32(), nullable=False),
    pa.field("bronze_file", pa.string(), nullable=False),
    pa.field("bronze_row", pa.int64(), nullable=False),
)
_SCALARS: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "json": pa.string(),
}
_RAW_LIMIT = 10_000


class SourceSilverError(RuntimeError):
    """The day's silver of a declared source cannot be built (no bronze, too many bad rows); nothing replaced."""

    retryable = False


def arrow_type(spec: FieldSpec) -> pa.DataType:
    """The Arrow type of a declared field (arrays become lists of the element type)."""
    if spec.is_array:
        return pa.list_(_SCALARS[spec.element_type])
    return _SCALARS[spec.type]


def silver_schema(resource: ResourceSpec) -> pa.Schema:
    """The silver schema of ``resource``: its fields in declared order, then the lineage columns."""
    fields = [pa.field(f.name, arrow_type(f), nullable=not f.required) for f in resource.fields]
    return pa.schema([*fields, *LINEAGE])


@dataclass
class ResourceStats:
    """What happened to one resource's records on one day."""

    records_read: int = 0
    rows_good: int = 0
    duplicates: int = 0
    outside_window: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    rows: int = 0
    files: list[str] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The counts as a JSON-ready dict (for the run summary)."""
        return {
            "records_read": self.records_read,
            "rows_good": self.rows_good,
            "duplicates": self.duplicates,
            "outside_window": self.outside_window,
            "quarantined": sum(self.quarantined.values()),
            "quarantined_by_reason": dict(sorted(self.quarantined.items())),
            "rows": self.rows,
            "files": self.files,
            "extra_columns": self.extra_columns,
        }


@dataclass(frozen=True)
class _Record:
    bronze_file: str
    row: int
    raw: Any  # the JSON value, or the CSV row text
    values: dict[str, Any] | None  # for CSV: header -> text
    reason: str | None = None
    detail: str | None = None


def _manifest(layout: Layout, source: SourceSpec, resource: str, day: dt.date) -> tuple[Path, dict[str, Any]] | None:
    folder = layout.bronze(resource, day, source=source.name)
    path = folder / MANIFEST
    if not path.exists():
        return None
    try:
        return folder, json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SourceSilverError(f"bronze manifest {path} is not valid JSON: {exc}") from None


def _json_records(folder: Path, layout: Layout, resource: ResourceSpec, manifest: dict[str, Any]) -> Iterator[_Record]:
    for page in manifest.get("pages", []):
        path = folder / page["file"]
        rel = path.relative_to(layout.root).as_posix()
        try:
            payload = json.loads(path.read_bytes().decode("utf-8-sig"))
        except FileNotFoundError:
            raise SourceSilverError(f"bronze manifest lists {rel}, which is missing") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise SourceSilverError(f"{rel} is not JSON ({exc}); the bronze page is damaged") from None
        records = get_path(payload, resource.records_path) if resource.records_path else payload
        if not isinstance(records, list):
            raise SourceSilverError(f"{rel}: records_path {resource.records_path!r} does not hold a list")
        for i, record in enumerate(records, start=1):
            yield _Record(rel, i, record, record if isinstance(record, dict) else None)


def _csv_records(
    folder: Path, layout: Layout, resource: ResourceSpec, manifest: dict[str, Any], stats: ResourceStats
) -> Iterator[_Record]:
    declared = {f.path for f in resource.fields}
    for entry in manifest.get("files", []):
        path = folder / entry["file"]
        rel = path.relative_to(layout.root).as_posix()
        if not path.exists():
            raise SourceSilverError(f"bronze manifest lists {rel}, which is missing")
        try:
            header = read_header(path, resource)
            extra = [h for h in header if h not in declared]
            if extra:
                log.info("%s: columns not declared, kept in bronze only: %s", rel, extra)
                stats.extra_columns = sorted(set(stats.extra_columns) | set(extra))
            for rec in iter_records(path, resource, header):
                yield _Record(rel, rec.row, rec.raw, rec.values, rec.reason, rec.detail)
        except CsvFileError as exc:
            raise SourceSilverError(f"{rel}: {exc} (the file passed the inbox check; is bronze damaged?)") from None


def _raw_text(raw: Any) -> str:
    text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= _RAW_LIMIT else text[:_RAW_LIMIT] + "..."


def _window_bounds(source: SourceSpec, resource: ResourceSpec, day: dt.date) -> tuple[Any, Any] | None:
    inc = resource.incremental
    if inc is None:
        return None
    start, end = source.window(day)
    if resource.field(inc.cursor_field).type == "date":
        return start.date(), end.date()
    return start.astimezone(dt.UTC).replace(tzinfo=None), end.astimezone(dt.UTC).replace(tzinfo=None)


def _resource_table(
    source: SourceSpec,
    resource: ResourceSpec,
    day: dt.date,
    records: Iterator[_Record],
    quarantine: QuarantineWriter,
    stats: ResourceStats,
) -> pa.Table:
    tz = source.tz
    bounds = _window_bounds(source, resource, day)
    cursor = resource.incremental.cursor_field if resource.incremental else None
    dedup = bool(resource.primary_key) and resource.write_disposition in ("merge", "replace")
    kept: dict[tuple[Any, ...], tuple[tuple[Any, int], dict[str, Any]]] = {}
    rows: list[dict[str, Any]] = []
    order = 0
    pending: dict[str, list[Any]] = {"rows": [], "reasons": [], "details": [], "raws": []}
    current_file = None

    def flush_quarantine(bronze_file: str | None) -> None:
        if bronze_file is not None and pending["rows"]:
            quarantine.add(bronze_file, pending["rows"], pending["reasons"], pending["details"], pending["raws"])
        for v in pending.values():
            v.clear()

    for rec in records:
        if rec.bronze_file != current_file:
            flush_quarantine(current_file)
            current_file = rec.bronze_file
        stats.records_read += 1
        try:
            if rec.reason is not None:
                raise BadValue(rec.reason, rec.detail or "")
            if rec.values is None:
                raise BadValue("not_an_object", f"record={_raw_text(rec.raw)[:80]}")
            values = convert_record(resource.fields, rec.values, tz, from_text=source.kind == "csv_drop")
        except BadValue as exc:
            stats.quarantined[exc.reason] += 1
            pending["rows"].append(rec.row)
            pending["reasons"].append(exc.reason)
            pending["details"].append(exc.detail)
            pending["raws"].append(_raw_text(rec.raw))
            continue
        if bounds is not None and cursor is not None:
            value = values[cursor]
            if value is None or not bounds[0] <= value < bounds[1]:
                stats.outside_window += 1
                continue
        stats.rows_good += 1
        values["export_date"] = day
        values["bronze_file"] = rec.bronze_file
        values["bronze_row"] = rec.row
        order += 1
        if not dedup:
            rows.append(values)
            continue
        key = tuple(values[k] for k in resource.primary_key)
        rank = (values[cursor] if cursor is not None else None, order)
        previous = kept.get(key)
        if previous is not None:
            stats.duplicates += 1
            if cursor is not None and previous[0][0] is not None and rank[0] is not None and rank[0] < previous[0][0]:
                continue  # an older version read later: the newer one stays
        kept[key] = (rank, values)
    flush_quarantine(current_file)

    if dedup:
        rows = [values for _, (_, values) in sorted(kept.items(), key=lambda item: item[0])]
    schema = silver_schema(resource)
    return pa.table({f.name: pa.array([r[f.name] for r in rows], f.type) for f in schema}, schema=schema)


def build_source_silver(
    source: SourceSpec, day: dt.date | str, layout: Layout | None = None, limits: WriterLimits | None = None
) -> dict[str, Any]:
    """Build the silver partitions (and quarantine) of every resource of ``source`` for ``day``.

    A REST resource without a bronze partition for the day is an error (run extract first); a CSV
    resource without one (no file arrived for it that day) is skipped. Returns per resource what was
    read, kept, deduplicated, dropped as outside the window and quarantined, and the files written.
    """
    day = parse_day(day)
    layout = layout if layout is not None else Layout.from_env()
    limits = limits if limits is not None else WriterLimits.from_env()
    max_rate = quarantine_max_rate()
    bronze: dict[str, tuple[Path, dict[str, Any]]] = {}
    skipped: list[str] = []
    for name in source.resources:
        found = _manifest(layout, source, name, day)
        if found is None:
            if source.kind == "rest_api":
                path = layout.bronze(name, day, source=source.name) / MANIFEST
                raise SourceSilverError(
                    f"no bronze for {source.name}/{name} on {day}: {path} is missing (extract first)"
                )
            skipped.append(name)
            continue
        bronze[name] = found
    stats = {name: ResourceStats() for name in bronze}
    tables = {name: source.table(name) for name in bronze}
    breach: list[str] = []
    with staged_day(
        {n: layout.silver(t, day) for n, t in tables.items()}, {n: layout.quarantine(t, day) for n, t in tables.items()}
    ) as staged:
        for name, (folder, manifest) in bronze.items():
            res = source.resources[name]
            quarantine = QuarantineWriter(staged.quarantine[name], tables[name], day, limits)
            if source.kind == "rest_api":
                records = _json_records(folder, layout, res, manifest)
            else:
                records = _csv_records(folder, layout, res, manifest, stats[name])
            table = _resource_table(source, res, day, records, quarantine, stats[name])
            writer = PartitionWriter(staged.silver[name], silver_schema(res), limits)
            writer.write(table)
            written = writer.close()
            quarantine.close()
            stats[name].rows = int(written["rows"])
            stats[name].files = list(written["files"])  # type: ignore[arg-type]
            s = stats[name]
            bad = sum(s.quarantined.values())
            if s.records_read and bad / s.records_read > max_rate:
                reasons = ", ".join(f"{reason} {n}" for reason, n in s.quarantined.most_common())
                breach.append(f"{name}: {bad} of {s.records_read} records ({bad / s.records_read:.2%}) quarantined "
                              f"({reasons})")  # fmt: skip
        staged.discard_silver = bool(breach)
    if breach:
        raise SourceSilverError(
            f"silver {source.name} {day}: too many bad records, above the {max_rate:.2%} threshold "
            f"(LAKEHOUSE_QUARANTINE_MAX_RATE): {'; '.join(breach)}. The day's silver was not replaced; the bad "
            f"records are in quarantine/{source.name}__<resource>/date={day.isoformat()}/ with their reasons."
        )
    summary = {
        "source": source.name,
        "date": day.isoformat(),
        "resources": {n: s.as_dict() for n, s in stats.items()},
        "tables": {tables[n]: s.rows for n, s in stats.items()},
        "skipped": skipped,
    }
    for name, s in stats.items():
        log.info("silver %s/%s %s: %s", source.name, name, day, s.as_dict())
    return summary
