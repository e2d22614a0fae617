"""Bronze -> silver for one day: the seven silver tables and the quarantine.

Flow per resource: records are read in file order, typed in batches with pyarrow compute,
bad rows go to quarantine with a reason and their source position, exact duplicate rows are
kept once, and the good rows feed the silver tables. Every partition of the day is written in
a staging folder and swapped into place only when the whole day succeeded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingest.appmetrica.resources import RESOURCES, Resource
from lakehouse.fsutil import staged_dir, write_json
from lakehouse.settings import ConfigError, Layout
from transforms.silver import properties
from transforms.silver.bronze_reader import MAX_FIELD_CHARS, BadRecord, iter_records, raw_text, read_header
from transforms.silver.casting import blank_to_null, cast_table
from transforms.silver.quarantine import QuarantineWriter, quarantine_max_rate
from transforms.silver.schemas import (
    ENUM_VALUES,
    EVENTS_PART,
    FIELD_TYPES,
    JSON_FIELDS,
    PERMANENT_USER_PROPERTIES,
    REQUIRED_FIELDS,
    SILVER_TABLES,
    TECHNICAL_DATA,
    TMP_EVENT_PROPERTIES,
    TMP_USER_PROPERTIES,
)
from transforms.silver.writer import PartitionWriter, WriterLimits

log = logging.getLogger(__name__)

BATCH_ROWS = 50_000
SILVER_RESOURCES = tuple(RESOURCES)  # every exported resource feeds silver
MANIFEST = "_manifest.json"
# Reasons meaning "the value does not fit the column's contract type"; their detail starts with "<column>=".
TYPE_REASONS = frozenset({"invalid_integer", "invalid_datetime", "invalid_date", "invalid_boolean"})

# Device attributes carried by every device-level resource, and the per-session technical ones.
DEVICE_ATTRS = (
    "device_manufacturer",
    "device_model",
    "original_device_model",
    "device_type",
    "os_name",
    "os_version",
    "device_locale",
)
SESSION_ATTRS = (
    "app_version_name",
    "app_build_number",
    "appmetrica_sdk_version",
    "connection_type",
    "operator_name",
    "mcc",
    "mnc",
)
OBSERVATION_SOURCES = {"events": ("event_datetime", 0), "sessions_starts": ("session_start_datetime", 1),
                       "installations": ("install_datetime", 2)}  # fmt: skip
PROFILE_RENAMES = {
    "appmetrica_gender": "gender",
    "appmetrica_birth_date": "birth_date",
    "appmetrica_name": "name",
    "appmetrica_notifications_enabled": "notifications_enabled",
    "appmetrica_first_session_date": "first_session_date",
    "appmetrica_last_start_date": "last_start_date",
    "appmetrica_sessions": "sessions",
    "appmetrica_crashes": "crashes",
    "appmetrica_errors": "errors",
}


class SilverError(RuntimeError):
    """The day cannot be built (missing bronze, missing columns); nothing was replaced."""


@dataclass
class ResourceStats:
    """What happened to one resource's rows."""

    rows_read: int = 0
    rows_good: int = 0
    duplicates: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    extra_columns: list[str] = field(default_factory=list)
    type_mismatches: Counter[str] = field(default_factory=Counter)  # column -> rows that did not fit its type

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_good": self.rows_good,
            "duplicates": self.duplicates,
            "quarantined": sum(self.quarantined.values()),
            "quarantined_by_reason": dict(sorted(self.quarantined.items())),
            "extra_columns": self.extra_columns,
            "type_mismatches": dict(sorted(self.type_mismatches.items())),
        }


@dataclass
class Batch:
    """Good, typed rows of one resource (bronze order), with their row hash and parsed JSON."""

    table: pa.Table
    parsed: dict[str, list[dict[str, Any] | None]]


def _row_hash(values: list[str]) -> str:
    joined = "\x1f".join(values).encode("utf-8", "surrogateescape")
    return hashlib.blake2b(joined, digest_size=16).hexdigest()


def _bronze_parts(layout: Layout, resource: str, day: dt.date) -> list[Path]:
    folder = layout.bronze(resource, day)
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        raise SilverError(f"no bronze export for {resource} on {day}: {manifest_path} is missing (run extract first)")
    manifest = json.loads(manifest_path.read_text())
    parts = [folder / p["file"] for p in manifest.get("parts", [])]
    missing = [str(p) for p in parts if not p.exists()]
    if missing:
        raise SilverError(f"bronze manifest {manifest_path} lists files that are missing: {missing}")
    return parts


def _read_batches(
    resource: Resource, parts: list[Path], layout: Layout, quarantine: QuarantineWriter, stats: ResourceStats
) -> Iterator[Batch]:
    required = REQUIRED_FIELDS[resource.name]
    types = {f: FIELD_TYPES.get(f, pa.string()) for f in resource.fields}
    json_fields = [f for f in JSON_FIELDS if f in resource.fields]
    for path in parts:
        rel = path.relative_to(layout.root).as_posix()
        header = read_header(path)
        missing = [f for f in resource.fields if f not in header]
        if missing:
            raise SilverError(f"{rel}: export of {resource.name} lacks required column(s) {', '.join(missing)}")
        extra = [h for h in header if h not in resource.fields]
        if extra:
            log.warning("%s: columns not in the %s contract kept in bronze only: %s", rel, resource.name, extra)
            stats.extra_columns = sorted(set(stats.extra_columns) | set(extra))
        index = [header.index(f) for f in resource.fields]

        rows: list[list[str]] = []
        positions: list[int] = []
        bad_rows: list[int] = []
        bad_reasons: list[str] = []
        bad_details: list[str] = []
        bad_raw: list[str] = []
        for rec in iter_records(path, header, max_field_chars()):
            stats.rows_read += 1
            if isinstance(rec, BadRecord):
                bad_rows.append(rec.row)
                bad_reasons.append(rec.reason)
                bad_details.append(rec.detail)
                bad_raw.append(rec.raw)
                continue
            rows.append([rec.values[i] for i in index])
            positions.append(rec.row)
            if len(rows) >= BATCH_ROWS:
                yield from _type_batch(resource, rel, rows, positions, types, required, json_fields, quarantine, stats)
                rows, positions = [], []
        quarantine.add(rel, bad_rows, bad_reasons, bad_details, bad_raw)
        for reason in bad_reasons:
            stats.quarantined[reason] += 1
        if rows:
            yield from _type_batch(resource, rel, rows, positions, types, required, json_fields, quarantine, stats)


def _type_batch(
    resource: Resource,
    rel: str,
    rows: list[list[str]],
    positions: list[int],
    types: dict[str, pa.DataType],
    required: tuple[str, ...],
    json_fields: list[str],
    quarantine: QuarantineWriter,
    stats: ResourceStats,
) -> Iterator[Batch]:
    columns = list(zip(*rows, strict=True))
    raw = {f: blank_to_null(pa.array(columns[i], pa.string())) for i, f in enumerate(resource.fields)}
    result = cast_table(raw, types, required, ENUM_VALUES)
    reasons = result.reason.to_pylist()
    details = result.detail.to_pylist()

    parsed: dict[str, list[dict[str, Any] | None]] = {}
    for f in json_fields:
        values = columns[resource.fields.index(f)]
        out: list[dict[str, Any] | None] = []
        for i, text in enumerate(values):
            if not text or reasons[i] is not None:
                out.append(None)
                continue
            try:
                out.append(properties.parse_object(text))
            except ValueError as exc:
                reasons[i] = "invalid_json"
                details[i] = f"{f}: {exc}"
                out.append(None)
        parsed[f] = out

    good = [r is None for r in reasons]
    bad_idx = [i for i, ok in enumerate(good) if not ok]
    if bad_idx:
        quarantine.add(
            rel,
            [positions[i] for i in bad_idx],
            [reasons[i] for i in bad_idx],
            [details[i] for i in bad_idx],
            [raw_text(rows[i]) for i in bad_idx],
        )
        for i in bad_idx:
            stats.quarantined[reasons[i]] += 1
            if reasons[i] in TYPE_REASONS:
                stats.type_mismatches[details[i].split("=", 1)[0]] += 1

    mask = pa.array(good)
    table = pa.table(result.columns).filter(mask)
    good_idx = [i for i, ok in enumerate(good) if ok]
    table = table.append_column("row_hash", pa.array([_row_hash(rows[i]) for i in good_idx], pa.string()))
    table = table.append_column("bronze_file", pa.array([rel] * len(good_idx), pa.string()))
    table = table.append_column("bronze_row", pa.array([positions[i] for i in good_idx], pa.int64()))
    yield Batch(table, {f: [v[i] for i in good_idx] for f, v in parsed.items()})


def _dedup(batch: Batch, seen: set[str], stats: ResourceStats) -> Batch:
    hashes = batch.table.column("row_hash").to_pylist()
    keep = []
    for h in hashes:
        first = h not in seen
        keep.append(first)
        if first:
            seen.add(h)
    stats.duplicates += keep.count(False)
    stats.rows_good += keep.count(True)
    if all(keep):
        return batch
    return Batch(
        batch.table.filter(pa.array(keep)),
        {f: [v for v, k in zip(vals, keep, strict=True) if k] for f, vals in batch.parsed.items()},
    )


def _observations(resource: str, table: pa.Table) -> pa.Table:
    """Project device-level rows onto one shape so all resources can be aggregated together."""
    seen_col, rank = OBSERVATION_SOURCES[resource]
    n = table.num_rows
    cols: dict[str, pa.Array] = {
        "appmetrica_device_id": table.column("appmetrica_device_id"),
        "seen_at": table.column(seen_col),
        "source_rank": pa.array([rank] * n, pa.int8()),
        "bronze_file": table.column("bronze_file"),
        "bronze_row": table.column("bronze_row"),
        "installation_id": table.column("installation_id"),
        "session_id": table.column("session_id") if "session_id" in table.column_names else pa.nulls(n, pa.uint64()),
        "country_iso_code": table.column("country_iso_code"),
        "city": table.column("city"),
    }
    for name in DEVICE_ATTRS:
        cols[name] = table.column(name)
    for name in SESSION_ATTRS:
        typ = TECHNICAL_DATA.schema.field(name).type
        cols[name] = table.column(name) if name in table.column_names else pa.nulls(n, typ)
    return pa.table(cols)


def _sorted(table: pa.Table, keys: list[str]) -> pa.Table:
    order = pc.sort_indices(table, sort_keys=[(k, "ascending", "at_end") for k in keys])
    return table.take(order)


def _mobile_devices(obs: pa.Table, day: dt.date) -> pa.Table:
    # Latest known (non-null) value of each attribute over the day, across all resources.
    ordered = _sorted(obs, ["appmetrica_device_id", "seen_at", "source_rank", "bronze_file", "bronze_row"])
    agg = ordered.group_by("appmetrica_device_id", use_threads=False).aggregate(
        [(a, "last") for a in DEVICE_ATTRS]
        + [("seen_at", "min"), ("seen_at", "max"), ("seen_at", "count")]
        + [("bronze_file", "last"), ("bronze_row", "last")]
    )
    renames = {f"{a}_last": a for a in (*DEVICE_ATTRS, "bronze_file", "bronze_row")} | {
        "seen_at_min": "first_seen_at",
        "seen_at_max": "last_seen_at",
        "seen_at_count": "observations",
    }
    agg = agg.rename_columns([renames.get(c, c) for c in agg.column_names])
    agg = agg.append_column("export_date", pa.array([day] * agg.num_rows, pa.date32()))
    return _sorted(agg, ["appmetrica_device_id"])


def _technical_data(obs: pa.Table, day: dt.date) -> pa.Table:
    sessions = obs.filter(pc.and_(pc.is_valid(obs.column("session_id")), pc.less(obs.column("source_rank"), 2)))
    # A session-start row describes the session best; otherwise the session's first event does.
    preference = pc.if_else(pc.equal(sessions.column("source_rank"), 1), 0, 1)
    sessions = sessions.append_column("preference", preference)
    key = ["appmetrica_device_id", "installation_id", "session_id"]
    ordered = _sorted(sessions, [*key, "preference", "seen_at", "bronze_file", "bronze_row"])
    first = pc.ScalarAggregateOptions(skip_nulls=False)
    agg = ordered.group_by(key, use_threads=False).aggregate(
        [("seen_at", "first", first), ("source_rank", "first", first)]
        + [(a, "first", first) for a in (*SESSION_ATTRS, "bronze_file", "bronze_row")]
    )
    renames = {f"{a}_first": a for a in (*SESSION_ATTRS, "bronze_file", "bronze_row")}
    renames["seen_at_first"] = "session_started_at"
    agg = agg.rename_columns([renames.get(c, c) for c in agg.column_names])
    source = pc.if_else(pc.equal(agg.column("source_rank_first"), 1), "sessions_starts", "events")
    agg = agg.drop_columns(["source_rank_first"]).append_column("source", source)
    agg = agg.append_column("export_date", pa.array([day] * agg.num_rows, pa.date32()))
    return _sorted(agg, key)


def _user_locations(obs: pa.Table, day: dt.date) -> pa.Table:
    located = obs.filter(
        pc.and_(
            pc.less(obs.column("source_rank"), 2),
            pc.or_(pc.is_valid(obs.column("country_iso_code")), pc.is_valid(obs.column("city"))),
        )
    )
    key = ["appmetrica_device_id", "country_iso_code", "city"]
    located = _sorted(located, [*key, "seen_at", "source_rank", "bronze_file", "bronze_row"])
    agg = located.group_by(key, use_threads=False).aggregate(
        [
            ("seen_at", "min"),
            ("seen_at", "max"),
            ("seen_at", "count"),
            ("bronze_file", "first"),
            ("bronze_row", "first"),
        ]
    )
    renames = {"seen_at_min": "first_seen_at", "seen_at_max": "last_seen_at", "seen_at_count": "observations",
               "bronze_file_first": "bronze_file", "bronze_row_first": "bronze_row"}  # fmt: skip
    agg = agg.rename_columns([renames.get(c, c) for c in agg.column_names])
    agg = agg.append_column("export_date", pa.array([day] * agg.num_rows, pa.date32()))
    return _sorted(agg, key)


def _flattened(
    parsed: list[dict[str, Any] | None], source: pa.Table, carry: tuple[str, ...], path_column: str, schema: pa.Schema
) -> pa.Table:
    """One row per leaf of each parsed JSON object, carrying ``carry`` columns of its ``source`` row."""
    carried = {c: source.column(c).to_pylist() for c in carry}
    out: dict[str, list[Any]] = {k: [] for k in (*carry, path_column, "value_text", "value_type")}
    for i, obj in enumerate(parsed):
        if not obj:
            continue
        for path, text, kind in properties.flatten(obj):
            for c in carry:
                out[c].append(carried[c][i])
            out[path_column].append(path)
            out["value_text"].append(text)
            out["value_type"].append(kind)
    return pa.table({k: pa.array(v, schema.field(k).type) for k, v in out.items()})


def _event_properties(table: pa.Table, parsed: list[dict[str, Any] | None]) -> pa.Table:
    carry = ("event_id", "event_date", "appmetrica_device_id", "event_name", "bronze_file", "bronze_row")
    return _flattened(parsed, table, carry, "property_path", TMP_EVENT_PROPERTIES.schema)


def _with_export_date(table: pa.Table, day: dt.date) -> pa.Table:
    return table.append_column("export_date", pa.array([day] * table.num_rows, pa.date32()))


def build_silver(day: dt.date, layout: Layout | None = None, limits: WriterLimits | None = None) -> dict[str, Any]:
    """Build every silver table and the quarantine for ``day`` from its bronze exports.

    Returns a summary: per resource what was read, kept, deduplicated and quarantined (by
    reason), and per silver table its rows and files.
    """
    layout = layout or Layout.from_env()
    limits = limits or WriterLimits.from_env()
    parts = {name: _bronze_parts(layout, name, day) for name in SILVER_RESOURCES}
    stats = {name: ResourceStats() for name in SILVER_RESOURCES}

    max_rate = quarantine_max_rate()
    breach: str | None = None
    # Quarantine and silver are staged separately: when too many rows are quarantined the day's
    # silver is not replaced, but its quarantine is, so the bad rows can be inspected.
    with contextlib.ExitStack() as quarantine_stack:
        quarantines = {
            r: QuarantineWriter(quarantine_stack.enter_context(staged_dir(layout.quarantine(r, day))), r, day, limits)
            for r in SILVER_RESOURCES
        }
        try:
            with contextlib.ExitStack() as silver_stack:
                folders = {t: silver_stack.enter_context(staged_dir(layout.silver(t, day))) for t in SILVER_TABLES}
                tables = _write_tables(day, layout, limits, parts, stats, folders, quarantines)
                quarantined = {r: q.writer.close()["rows"] for r, q in quarantines.items()}
                breach = _threshold_breach(day, stats, max_rate)
                if breach:
                    raise _KeepQuarantineOnly
        except _KeepQuarantineOnly:
            pass
    _write_drift_record(layout, day, stats)
    if breach:
        raise SilverError(breach)

    summary = {
        "date": day.isoformat(),
        "resources": {r: s.as_dict() for r, s in stats.items()},
        "tables": {t: tables[t]["rows"] for t in SILVER_TABLES},
        "files": {t: tables[t]["files"] for t in SILVER_TABLES},
        "quarantined": quarantined,
        "schema_drift": {r: s.extra_columns for r, s in stats.items() if s.extra_columns},
        "type_mismatches": {r: dict(s.type_mismatches) for r, s in stats.items() if s.type_mismatches},
    }
    for r, s in stats.items():
        log.info("silver %s %s: %s", day, r, s.as_dict())
    log.info("silver %s tables: %s", day, summary["tables"])
    return summary


def _write_tables(
    day: dt.date,
    layout: Layout,
    limits: WriterLimits,
    parts: dict[str, list[Path]],
    stats: dict[str, ResourceStats],
    folders: dict[str, Path],
    quarantines: dict[str, QuarantineWriter],
) -> dict[str, dict[str, Any]]:
    """Read every resource of the day and write the seven tables into ``folders``."""
    writers = {t: PartitionWriter(folders[t], SILVER_TABLES[t].schema, limits) for t in SILVER_TABLES}
    observations: list[pa.Table] = []
    profiles: list[Batch] = []

    for name in SILVER_RESOURCES:
        resource = RESOURCES[name]
        seen: set[str] = set()
        for batch in _read_batches(resource, parts[name], layout, quarantines[name], stats[name]):
            batch = _dedup(batch, seen, stats[name])
            table = batch.table
            if name == "profiles_v2":
                profiles.append(batch)
                continue
            observations.append(_observations(name, table))
            if name == "events":
                table = table.rename_columns(["event_id" if c == "row_hash" else c for c in table.column_names])
                table = table.append_column("event_date", pc.cast(table.column("event_datetime"), pa.date32()))
                table = _with_export_date(table, day)
                writers["events_part"].write(table)
                writers["tmp_event_properties"].write(
                    _with_export_date(_event_properties(table, batch.parsed["event_json"]), day)
                )

    obs = pa.concat_tables(observations) if observations else _observations("events", _empty_events())
    writers["mobile_devices"].write(_mobile_devices(obs, day))
    writers["technical_data"].write(_technical_data(obs, day))
    writers["user_locations"].write(_user_locations(obs, day))
    perm, attrs = _profiles(profiles, day, stats["profiles_v2"])
    writers["permanent_user_properties"].write(perm)
    writers["tmp_user_properties"].write(attrs)

    return {t: w.close() for t, w in writers.items()}


class _KeepQuarantineOnly(Exception):
    """Internal: discard the staged silver partitions but keep the staged quarantine."""


def max_field_chars() -> int:
    """Longest field kept; a longer one quarantines its row (``LAKEHOUSE_SILVER_MAX_FIELD_CHARS``, default 131072)."""
    raw = os.environ.get("LAKEHOUSE_SILVER_MAX_FIELD_CHARS", "").strip()
    if not raw:
        return MAX_FIELD_CHARS
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise ConfigError(f"LAKEHOUSE_SILVER_MAX_FIELD_CHARS must be a positive whole number, got {raw!r}")
    return int(raw)


def _threshold_breach(day: dt.date, stats: dict[str, ResourceStats], max_rate: float) -> str | None:
    problems = []
    for name, s in stats.items():
        bad = sum(s.quarantined.values())
        if s.rows_read and bad / s.rows_read > max_rate:
            reasons = ", ".join(f"{reason} {n}" for reason, n in s.quarantined.most_common())
            problems.append(f"{name}: {bad} of {s.rows_read} rows ({bad / s.rows_read:.2%}) quarantined ({reasons})")
    if not problems:
        return None
    return (
        f"silver {day}: too many bad rows, above the {max_rate:.2%} threshold (LAKEHOUSE_QUARANTINE_MAX_RATE): "
        + "; ".join(problems)
        + ". The day's silver was not replaced; the bad rows are in quarantine/<resource>/date="
        + day.isoformat()
        + "/ with their reasons."
    )


def _write_drift_record(layout: Layout, day: dt.date, stats: dict[str, ResourceStats]) -> None:
    """Record, per date, columns exported beyond the contract (kept in bronze, not in silver) and, per
    column, the rows whose value no longer fits the contract type (quarantined)."""
    drift = {r: s.extra_columns for r, s in stats.items() if s.extra_columns}
    mismatches = {r: dict(sorted(s.type_mismatches.items())) for r, s in stats.items() if s.type_mismatches}
    for resource, columns in mismatches.items():
        log.warning("schema drift %s %s: values that do not fit the contract type (rows quarantined): %s",
                    resource, day, columns)  # fmt: skip
    write_json(layout.reports / "schema_drift" / f"date={day.isoformat()}" / "drift.json",
               {"date": day.isoformat(), "extra_columns": drift, "type_mismatches": mismatches})  # fmt: skip


def _empty_events() -> pa.Table:
    schema = EVENTS_PART.schema
    return pa.table({f.name: pa.array([], f.type) for f in schema})


def _profiles(batches: list[Batch], day: dt.date, stats: ResourceStats) -> tuple[pa.Table, pa.Table]:
    """One row per profile (the last one exported wins) and its flattened custom attributes."""
    schema = PERMANENT_USER_PROPERTIES.schema
    if not batches:
        return (
            pa.table({f.name: pa.array([], f.type) for f in schema}),
            pa.table({f.name: pa.array([], f.type) for f in TMP_USER_PROPERTIES.schema}),
        )
    table = pa.concat_tables([b.table for b in batches])
    parsed = [obj for b in batches for obj in b.parsed["custom_attributes"]]
    ids = table.column("profile_id").to_pylist()
    last: dict[str, int] = {pid: i for i, pid in enumerate(ids)}
    conflicts = len(ids) - len(last)
    if conflicts:
        log.info("profiles_v2 %s: %d profile rows superseded by a later row of the same profile", day, conflicts)
        stats.duplicates += conflicts
        stats.rows_good -= conflicts
    keep = sorted(last.values(), key=lambda i: ids[i])
    table = table.take(pa.array(keep, pa.int64()))
    table = table.rename_columns([PROFILE_RENAMES.get(c, c) for c in table.column_names])
    table = _with_export_date(table, day)

    kept = [parsed[i] for i in keep]
    attrs = _flattened(
        kept, table, ("profile_id", "bronze_file", "bronze_row"), "attribute_name", TMP_USER_PROPERTIES.schema
    )
    attrs = _with_export_date(attrs, day)
    return table, attrs
