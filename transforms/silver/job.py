"""Bronze -> silver for one day: every silver table and the quarantine.

Flow per resource: records are read in file order, typed in batches with pyarrow compute,
bad rows go to quarantine with a reason and their source position, exact duplicate rows are
kept once, and the good rows feed the silver tables. Every table's day is staged in a scratch
folder and, once the whole day succeeded, committed to the table's Delta Lake table (lakehouse/delta.py)
as one replace of its export_date partition.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import itertools
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.appmetrica.resources import RESOURCES, Resource
from lakehouse.fsutil import scratch_dir, write_json
from lakehouse.settings import ConfigError, Layout
from transforms.silver import properties
from transforms.silver.bronze_reader import MAX_FIELD_CHARS, BadRecord, iter_records, raw_text, read_header
from transforms.silver.casting import blank_to_null, cast_table
from transforms.silver.dedup import StagedRows
from transforms.silver.fast_reader import NotClean, iter_clean_batches
from transforms.silver.quarantine import QuarantineWriter, quarantine_max_rate
from transforms.silver.schemas import (
    ENUM_VALUES,
    EVENTS_PART,
    FIELD_TYPES,
    JSON_FIELDS,
    PERMANENT_USER_PROPERTIES,
    QUARANTINE_SCHEMA,
    REQUIRED_FIELDS,
    SILVER_TABLES,
    TECHNICAL_DATA,
    TMP_USER_PROPERTIES,
    TYPED_ROW_TABLES,
    typed_rows_date_column,
)
from transforms.silver.writer import PartitionWriter, WriterLimits

log = logging.getLogger(__name__)

BATCH_ROWS = 50_000
SILVER_RESOURCES = tuple(RESOURCES)  # every exported resource feeds silver
MANIFEST = "_manifest.json"
# The commit metadata key naming the export date a silver or quarantine commit replaced.
COMMIT_DATE_KEY = "lakehouse.export_date"
# events_part last: its commit says the whole day is in (lakehouse.pipeline reads what it was built from).
SILVER_COMMIT_ORDER = (*(t for t in SILVER_TABLES if t != "events_part"), "events_part")
# Staged files are read once, right away, by the Delta writer: fast compression
_STAGING = "lz4"
# Reasons meaning "the value does not fit the column's contract type"; their detail starts with "<column>=".
TYPE_REASONS = frozenset({"invalid_integer", "invalid_datetime", "invalid_date", "invalid_boolean", "invalid_decimal"})

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
    "connection_type",
    "operator_name",
    "mcc",
    "mnc",
)
OBSERVATION_SOURCES = {"events": ("event_datetime", 0), "sessions_starts": ("session_start_datetime", 1),
                       "installations": ("install_datetime", 2)}  # fmt: skip
PROFILE_RENAMES = {
    "appmetrica_gender": "gender",
    "appmetrica_birth_date": "age",
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
    """Good, typed rows of one resource (bronze order), with their flattened JSON leaves and row digests.

    ``leaves`` has ``row`` (index into ``table``), ``path``, ``value_text``, ``value_type``.
    """

    table: pa.Table
    leaves: pa.Table | None
    digests: tuple[np.ndarray, np.ndarray] = (np.empty(0, np.uint64), np.empty(0, np.uint64))  # per row: hi, lo


_HASH_SQL = "select md5(concat_ws(chr(31), {columns})) as row_hash from raw"
_HEX = np.zeros(256, dtype=np.uint8)
_HEX[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.uint8)


_HASH_CONNECTION = threading.local()


def _hash_connection() -> Any:
    """One in-memory DuckDB connection per thread for hashing (opening one per batch costs more)."""
    import duckdb

    con = getattr(_HASH_CONNECTION, "con", None)
    if con is None:
        con = _HASH_CONNECTION.con = duckdb.connect()
    return con


def _row_hashes(raw: pa.Table) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """The 128-bit MD5 of each row's exported values joined by U+001F: hex text and two uint64 halves."""
    columns = ", ".join('"' + c.replace('"', '""') + '"' for c in raw.column_names)
    con = _hash_connection()
    con.register("raw", raw)
    try:
        out = con.sql(_HASH_SQL.format(columns=columns)).to_arrow_table()
    finally:
        con.unregister("raw")
    hashes = out.column("row_hash").combine_chunks().cast(pa.string())
    # every digest is 32 hex digits: read the text buffer as an (n, 32) matrix, turn digit pairs
    # into the 16 digest bytes and read those as two big-endian uint64
    _, offsets, data = hashes.buffers()
    start = int(np.frombuffer(offsets, dtype=np.int32)[hashes.offset])
    nibbles = _HEX[np.frombuffer(data, dtype=np.uint8, count=32 * len(hashes), offset=start).reshape(-1, 16, 2)]
    digest = np.ascontiguousarray((nibbles[:, :, 0] << 4) | nibbles[:, :, 1])
    halves = digest.view(">u8").astype(np.uint64)
    hi, lo = halves[:, 0], halves[:, 1]
    return hashes, hi, lo


@dataclass(frozen=True)
class _Bronze:
    """One resource's bronze export of a day: its files and the resource as exported (for profiles_v2 its fields
    include the custom attributes the manifest says were requested)."""

    files: list[Path]
    resource: Resource


def _bronze_parts(layout: Layout, resource: str, day: dt.date) -> _Bronze:
    """The day's bronze export of ``resource`` (its manifest names the files and the requested fields)."""
    folder = layout.bronze(resource, day)
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        raise SilverError(f"no bronze export for {resource} on {day}: {manifest_path} is missing (run extract first)")
    manifest = json.loads(manifest_path.read_text())
    parts = [folder / p["file"] for p in manifest.get("parts", [])]
    missing = [str(p) for p in parts if not p.exists()]
    if missing:
        raise SilverError(f"bronze manifest {manifest_path} lists files that are missing: {missing}")
    res = RESOURCES[resource]
    if res.takes_custom_attributes:
        attributes = tuple(f for f in manifest.get("fields", ()) if f not in res.fields)
        res = dataclasses.replace(res, fields=res.fields + attributes)
    return _Bronze(parts, res)


@dataclass
class _RawBatch:
    """Text values of consecutive good-structured records of one file (resource field order)."""

    columns: pa.Table  # one string column per resource field, empty fields as ""
    positions: np.ndarray  # record numbers (int64)


def _check_field_lengths(batch: pa.RecordBatch, limit: int) -> None:
    """Raise ``NotClean`` when some field of ``batch`` has more than ``limit`` characters.

    Its rows then go to the record reader, which quarantines the long field's row as
    ``field_too_long`` exactly as it would have without the fast reader.
    """
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        longest = pc.max(pc.binary_length(column)).as_py() or 0  # bytes >= characters: cheap first check
        if longest > limit and (pc.max(pc.utf8_length(column)).as_py() or 0) > limit:
            raise NotClean(f"{name} has a field over the {limit}-character limit")


def _raw_batches(
    resource: Resource, path: Path, header: list[str], rel: str, quarantine: QuarantineWriter, stats: ResourceStats
) -> Iterator[_RawBatch]:
    """The file's records in file order: the fast reader while the file is clean, then the record reader."""
    index = [header.index(f) for f in resource.fields]
    limit = max_field_chars()
    delivered = 0
    if ".json" not in path.suffixes:
        try:
            for batch in iter_clean_batches(path, header):
                _check_field_lengths(batch, limit)  # before anything of the batch is used
                n = batch.num_rows
                stats.rows_read += n
                columns = pa.Table.from_arrays([batch.column(i) for i in index], names=list(resource.fields))
                yield _RawBatch(columns, np.arange(delivered + 1, delivered + n + 1, dtype=np.int64))
                delivered += n
            return
        except (NotClean, pa.ArrowException) as exc:
            log.info("%s: reading record by record after record %d (%s)", rel, delivered, str(exc).split("\n")[0])

    rows: list[list[str]] = []
    positions: list[int] = []
    bad: list[BadRecord] = []

    def flush() -> _RawBatch:
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in resource.fields]
        table = pa.Table.from_arrays([pa.array(c, pa.string()) for c in columns], names=list(resource.fields))
        return _RawBatch(table, np.asarray(positions, dtype=np.int64))

    for rec in iter_records(path, header, limit):
        if rec.row <= delivered:
            continue
        stats.rows_read += 1
        if isinstance(rec, BadRecord):
            bad.append(rec)
            continue
        rows.append([rec.values[i] for i in index])
        positions.append(rec.row)
        if len(rows) >= BATCH_ROWS:
            yield flush()
            rows, positions = [], []
    quarantine.add(rel, [b.row for b in bad], [b.reason for b in bad], [b.detail for b in bad], [b.raw for b in bad])
    for b in bad:
        stats.quarantined[b.reason] += 1
    if rows:
        yield flush()


def _read_batches(
    resource: Resource,
    parts: list[Path],
    layout: Layout,
    quarantine: QuarantineWriter,
    stats: ResourceStats,
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
        for raw in _raw_batches(resource, path, header, rel, quarantine, stats):
            batch = _type_batch(resource, rel, raw, types, required, json_fields, quarantine, stats)
            if batch is not None:
                yield batch


_WORKER: list[concurrent.futures.ThreadPoolExecutor] = []


def _json_worker() -> concurrent.futures.ThreadPoolExecutor:
    if not _WORKER:
        _WORKER.append(concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="silver-json"))
    return _WORKER[0]


def _type_batch(
    resource: Resource,
    rel: str,
    raw: _RawBatch,
    types: dict[str, pa.DataType],
    required: tuple[str, ...],
    json_fields: list[str],
    quarantine: QuarantineWriter,
    stats: ResourceStats,
) -> Batch | None:
    n = raw.columns.num_rows
    if not n:
        return None
    # JSON is decoded in Python (holding the GIL) on a worker thread while pyarrow types the
    # columns and DuckDB hashes the rows here (both release the GIL): the two cores work together.
    everything = np.ones(n, dtype=bool)
    flattening = {f: _json_worker().submit(properties.flatten_texts, raw.columns.column(f), everything)
                  for f in json_fields}  # fmt: skip
    hashes, hi, lo = _row_hashes(raw.columns)
    result = cast_table({f: blank_to_null(raw.columns.column(f).combine_chunks()) for f in resource.fields},
                        types, required, ENUM_VALUES)  # fmt: skip
    good = np.asarray(pc.is_null(result.reason).to_numpy(zero_copy_only=False), dtype=bool)

    leaves: pa.Table | None = None
    json_bad: dict[int, str] = {}
    for f, future in flattening.items():
        bad, leaves = future.result()
        for i, message in bad.items():
            if good[i]:  # a row already bad keeps its first reason
                json_bad[i] = f"{f}: {message}"
        good[list(json_bad)] = False

    bad_idx = np.flatnonzero(~good)
    if len(bad_idx):
        bad_rows = raw.columns.take(pa.array(bad_idx, pa.int64())).to_pylist()
        reasons = result.reason.take(pa.array(bad_idx, pa.int64())).to_pylist()
        details = result.detail.take(pa.array(bad_idx, pa.int64())).to_pylist()
        for k, i in enumerate(bad_idx.tolist()):
            if i in json_bad:
                reasons[k], details[k] = "invalid_json", json_bad[i]
        quarantine.add(
            rel,
            raw.positions[bad_idx].tolist(),
            reasons,
            details,
            [raw_text([r[f] for f in resource.fields]) for r in bad_rows],
        )
        for reason, detail in zip(reasons, details, strict=True):
            stats.quarantined[reason] += 1
            if reason in TYPE_REASONS:
                stats.type_mismatches[detail.split("=", 1)[0]] += 1

    keep_idx = np.flatnonzero(good)
    if not len(keep_idx):
        return None
    stats.rows_good += len(keep_idx)
    table = pa.Table.from_pydict({f: result.columns[f] for f in resource.fields})
    if len(keep_idx) == n:  # the usual case: every row good
        table = table.append_column("row_hash", hashes)
    else:
        keep = pa.array(keep_idx, pa.int64())
        table = table.take(keep).append_column("row_hash", hashes.take(keep))
    table = table.append_column("bronze_file", pa.array(np.full(len(keep_idx), rel, dtype=object), pa.string()))
    table = table.append_column("bronze_row", pa.array(raw.positions[keep_idx], pa.int64()))

    if leaves is not None:
        # renumber the leaves' rows to the kept rows (dropped rows lose their leaves)
        new_index = np.full(n, -1, dtype=np.int64)
        new_index[keep_idx] = np.arange(len(keep_idx), dtype=np.int64)
        mapped = new_index[np.asarray(leaves.column("row"), dtype=np.int64)]
        leaves = leaves.set_column(0, "row", pa.array(mapped, pa.int64())).filter(pa.array(mapped >= 0))
    return Batch(table, leaves, (hi[keep_idx], lo[keep_idx]))


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
        "installation_id": _column_or_nulls(table, "installation_id", pa.string()),
        "session_id": _column_or_nulls(table, "session_id", pa.uint64()),
        "country_iso_code": table.column("country_iso_code"),
        "city": table.column("city"),
    }
    for name in DEVICE_ATTRS:
        cols[name] = _column_or_nulls(table, name, pa.string())
    for name in SESSION_ATTRS:
        typ = TECHNICAL_DATA.schema.field(name).type
        cols[name] = table.column(name) if name in table.column_names else pa.nulls(n, typ)
    return pa.Table.from_pydict(cols)


def _column_or_nulls(table: pa.Table, name: str, typ: pa.DataType) -> pa.ChunkedArray | pa.Array:
    """The column, or nulls where the resource does not export that field (installations: original_device_model;
    sessions_starts and installations: installation_id or session_id)."""
    return table.column(name) if name in table.column_names else pa.nulls(table.num_rows, typ)


# file_no: the bronze file's place in the sorted list of the day's files, so the key orders as it would with the
# file name but holds no text (each aggregate state keeps a copy of its key)
_KEY = "struct_pack(s := seen_at, r := source_rank, f := file_no, n := bronze_row)"

_MOBILE_DEVICES_SQL = f"""
select appmetrica_device_id,
    {", ".join(f"arg_max({a}, {_KEY}) filter (where {a} is not null) as {a}" for a in DEVICE_ATTRS)},
    min(seen_at) as first_seen_at,
    max(seen_at) as last_seen_at,
    count(seen_at) as observations,
    arg_max(bronze_file, {_KEY}) as bronze_file,
    arg_max(bronze_row, {_KEY}) as bronze_row
from obs
group by appmetrica_device_id
order by appmetrica_device_id
"""  # noqa: S608 - names from code

# A session is (device, session_id): sessions_starts exports no installation_id, so the session's installation_id is
# the one its earliest event carries (null when it has no event that day). A session-start row describes the session
# best; otherwise the session's first event does. The SDK version is the device's profile's (profile_sdk: profiles_v2
# is the only exported resource documenting appmetrica_sdk_version).
_TECHNICAL_DATA_SQL = f"""
with sessions as (
    select *, case when source_rank = 1 then 0 else 1 end as preference
    from obs
    where session_id is not null and source_rank < 2
),
firsts as (
    select appmetrica_device_id, session_id,
        arg_min(installation_id, struct_pack(s := seen_at, f := file_no, n := bronze_row))
            filter (where installation_id is not null) as installation_id,
        arg_min(
            struct_pack(seen_at, source_rank, {", ".join(SESSION_ATTRS)}, bronze_file, bronze_row),
            struct_pack(p := preference, s := seen_at, f := file_no, n := bronze_row)
        ) as v
    from sessions
    group by appmetrica_device_id, session_id
)
select firsts.appmetrica_device_id, installation_id, session_id,
    v.seen_at as session_started_at,
    {", ".join(f"v.{a} as {a}" for a in SESSION_ATTRS)},
    profile_sdk.appmetrica_sdk_version,
    case when v.source_rank = 1 then 'sessions_starts' else 'events' end as source,
    v.bronze_file as bronze_file,
    v.bronze_row as bronze_row
from firsts
left join profile_sdk on profile_sdk.appmetrica_device_id = firsts.appmetrica_device_id
order by firsts.appmetrica_device_id, session_id
"""  # noqa: S608 - names from code

_USER_LOCATIONS_SQL = f"""
select appmetrica_device_id, country_iso_code, city,
    min(seen_at) as first_seen_at,
    max(seen_at) as last_seen_at,
    count(seen_at) as observations,
    arg_min(bronze_file, {_KEY}) as bronze_file,
    arg_min(bronze_row, {_KEY}) as bronze_row
from obs
where source_rank < 2 and (country_iso_code is not null or city is not null)
group by appmetrica_device_id, country_iso_code, city
order by appmetrica_device_id, country_iso_code nulls last, city nulls last
"""  # noqa: S608 - names from code


def _with_export_date(table: pa.Table, day: dt.date) -> pa.Table:
    return table.append_column("export_date", pa.array([day] * table.num_rows, pa.date32()))


class _Observations:
    """Device-level rows of every resource, spilled to a Parquet file and aggregated by DuckDB at the end.

    The day's devices, sessions and locations are aggregates over all rows of the day. The rows go
    to disk as they come (a few narrow columns, lz4); DuckDB aggregates the file within its memory
    limit, spilling to ``workdir`` beyond it, so memory does not grow with the number of rows.
    """

    MEMORY_LIMIT = "384MB"
    # Observation rows aggregated in one pass. Larger days are cut into ranges of device ids, one pass
    # each: the aggregate states of a range (arg_max/arg_min over structs, which DuckDB does not spill)
    # stay within the memory limit however many rows the day has.
    ROWS_PER_PASS = 1_500_000

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.path = workdir / "observations.parquet"
        self._writer: pq.ParquetWriter | None = None

    def add(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="lz4")
        self._writer.write_table(table, row_group_size=1 << 20)

    def aggregate(
        self, sqls: list[tuple[str, PartitionWriter]], day: dt.date, tables: dict[str, pa.Table] | None = None
    ) -> None:
        """Run each query over the observations (and the small ``tables``, by name) and write its rows (plus
        ``export_date``) in order."""
        import duckdb

        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, _observations("events", _empty_events()).schema)
        self._writer.close()
        con = duckdb.connect()
        try:
            con.execute(f"set memory_limit = '{self.MEMORY_LIMIT}'")
            # one thread: a second one doubles the partial aggregate states, and with tens of millions of
            # sessions those states (not spillable) ran out of the limit on a 50M-row day
            con.execute("set threads = 1")
            con.execute("set preserve_insertion_order = false")
            con.execute("set temp_directory = ?", [str(self.workdir / "spill")])
            path = str(self.path).replace("'", "''")
            con.execute(f"create view obs_file as select * from read_parquet('{path}')")  # noqa: S608 - our temp file
            con.execute("create table files as select bronze_file, row_number() over (order by bronze_file) as file_no "
                        "from (select distinct bronze_file from obs_file)")  # fmt: skip
            con.execute("create view obs_all as select * from obs_file join files using (bronze_file)")
            for name, table in (tables or {}).items():
                con.register(name, table)
            ranges = self._device_ranges(con)
            for sql, writer in sqls:
                # every query groups by device first and orders by it: ranges in ascending order keep that order
                for condition in ranges:
                    con.execute(f"create or replace view obs as select * from obs_all where {condition}")  # noqa: S608
                    for batch in con.sql(sql).to_arrow_reader(writer.limits.row_group_rows):
                        writer.write(_with_export_date(pa.Table.from_batches([batch]), day))
        finally:
            con.close()

    def _device_ranges(self, con: Any) -> list[str]:
        """Conditions cutting the observations into ascending device-id ranges of about ROWS_PER_PASS rows."""
        rows = con.execute("select count(*) from obs_all").fetchone()[0]
        passes = -(-rows // self.ROWS_PER_PASS)
        if passes <= 1:
            return ["true"]
        cuts = ", ".join(str(k / passes) for k in range(1, passes))
        sql = f"select approx_quantile(appmetrica_device_id, [{cuts}]) from obs_all"  # noqa: S608 - numbers only
        found = con.execute(sql).fetchone()[0]
        bounds = sorted({int(b) for b in found or [] if b is not None})
        if not bounds:
            return ["true"]
        conditions = [f"appmetrica_device_id < {bounds[0]}"]
        conditions += [
            f"appmetrica_device_id >= {lo} and appmetrica_device_id < {hi}" for lo, hi in itertools.pairwise(bounds)
        ]
        conditions.append(f"(appmetrica_device_id >= {bounds[-1]} or appmetrica_device_id is null)")
        log.info("silver: aggregating %d observation rows in %d device-id ranges", rows, len(conditions))
        return conditions

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _typed_rows(resource: Resource, table: pa.Table, day: dt.date) -> pa.Table:
    """A batch of a resource kept row for row (TYPED_ROW_TABLES): its key, local date and export date added."""
    table = table.rename_columns(["record_id" if c == "row_hash" else c for c in table.column_names])
    date = pc.cast(table.column(resource.date_field), pa.date32())
    return _with_export_date(table.append_column(typed_rows_date_column(resource), date), day)


def _event_properties(table: pa.Table, leaves: pa.Table) -> pa.Table:
    """One row per leaf of each event's ``event_json``, carrying the event's columns."""
    carry = ("event_id", "event_date", "appmetrica_device_id", "event_name", "bronze_file", "bronze_row")
    rows = leaves.column("row")
    out = {c: table.column(c).take(rows) for c in carry}
    out |= {"property_path": leaves.column("path"), "value_text": leaves.column("value_text"),
            "value_type": leaves.column("value_type")}  # fmt: skip
    return pa.Table.from_pydict(out)


def build_silver(
    day: dt.date, layout: Layout | None = None, *, metadata: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Build every silver table and the quarantine for ``day`` from its bronze exports.

    Each table's day is staged in a scratch folder, then committed to the table's Delta Lake table
    (``silver/<table>``, ``quarantine/<resource>``) as one replace of its ``export_date`` partition,
    with ``metadata`` (what the day was built from) and ``lakehouse.export_date`` in the commit.
    The quarantine is committed first, ``events_part`` last. When too many rows were quarantined,
    only the quarantine is committed and :class:`SilverError` is raised.

    Returns a summary: per resource what was read, kept, deduplicated and quarantined (by
    reason), and per silver table its rows and the table version committed.
    """
    layout = layout or Layout.from_env()
    limits = WriterLimits()  # of the staged files only: the Delta writer sizes the table's files
    parts = {name: _bronze_parts(layout, name, day) for name in SILVER_RESOURCES}
    stats = {name: ResourceStats() for name in SILVER_RESOURCES}
    max_rate = quarantine_max_rate()
    commit = {**(metadata or {}), COMMIT_DATE_KEY: day.isoformat()}
    # scratch beside the lake's folders (on S3: this worker's scratch), removed after the commits or by the next run
    with scratch_dir(layout.root / "silver" / f"date={day.isoformat()}") as workdir:
        quarantines = {r: QuarantineWriter(_folder(workdir / "quarantine" / r), r, day, limits, _STAGING)
                       for r in SILVER_RESOURCES}  # fmt: skip
        staged = {t: _folder(workdir / "silver" / t) for t in SILVER_TABLES}
        tables = _write_tables(day, layout, limits, parts, stats, staged, quarantines, workdir)
        quarantined = {r: q.close() for r, q in quarantines.items()}
        breach = _threshold_breach(day, stats, max_rate)
        # a refused day still replaces its quarantine, so the bad rows can be inspected
        for r in SILVER_RESOURCES:
            _commit(layout, f"quarantine/{r}", workdir / "quarantine" / r, QUARANTINE_SCHEMA, day, commit)
        if not breach:
            versions = {t: _commit(layout, f"silver/{t}", staged[t], SILVER_TABLES[t].schema, day, commit)
                        for t in SILVER_COMMIT_ORDER}  # fmt: skip
    _write_drift_record(layout, day, stats)
    if breach:
        raise SilverError(breach)

    summary = {
        "date": day.isoformat(),
        "resources": {r: s.as_dict() for r, s in stats.items()},
        "tables": {t: tables[t]["rows"] for t in SILVER_TABLES},
        "versions": {t: versions[t] for t in SILVER_TABLES},
        "quarantined": quarantined,
        "schema_drift": {r: s.extra_columns for r, s in stats.items() if s.extra_columns},
        "type_mismatches": {r: dict(s.type_mismatches) for r, s in stats.items() if s.type_mismatches},
    }
    for r, s in stats.items():
        log.info("silver %s %s: %s", day, r, s.as_dict())
    log.info("silver %s tables: %s", day, summary["tables"])
    return summary


def _folder(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _commit(
    layout: Layout, rel: str, folder: Path, schema: pa.Schema, day: dt.date, metadata: Mapping[str, str]
) -> int:
    """Replace the ``export_date = day`` partition of the lake table ``rel`` with the staged files in ``folder``."""
    import pyarrow.dataset as ds

    from lakehouse.delta import ROW_GROUP_ROWS, locate, replace_partition

    files = [str(f) for f in sorted(folder.glob("*.parquet"))]
    rows = ds.dataset(files, schema=schema, format="parquet").scanner(batch_size=ROW_GROUP_ROWS).to_reader()
    return replace_partition(locate(rel, layout), rows, column="export_date", value=day, metadata=metadata)


def _write_tables(
    day: dt.date,
    layout: Layout,
    limits: WriterLimits,
    parts: dict[str, _Bronze],
    stats: dict[str, ResourceStats],
    folders: dict[str, Path],
    quarantines: dict[str, QuarantineWriter],
    workdir: Path,
) -> dict[str, dict[str, Any]]:
    """Read every resource of the day and stage every silver table into ``folders``."""
    writers = {t: PartitionWriter(folders[t], SILVER_TABLES[t].schema, limits, _STAGING) for t in SILVER_TABLES}
    profiles: list[Batch] = []
    observations = _Observations(workdir)
    try:
        for name in SILVER_RESOURCES:
            bronze = parts[name]
            staged = StagedRows(workdir, name)
            for batch in _read_batches(bronze.resource, bronze.files, layout, quarantines[name], stats[name]):
                staged.add(batch.table, *batch.digests, batch.leaves)
                del batch
            # exact duplicates (same digest) are dropped by DuckDB over the whole day: first row kept
            for kept, leaves in staged.batches():
                batch = Batch(kept, leaves)
                table = batch.table
                if name == "profiles_v2":
                    profiles.append(batch)
                    continue
                if name in TYPED_ROW_TABLES:
                    writers[name].write(_typed_rows(bronze.resource, table, day))
                    continue
                observations.add(_observations(name, table))
                if name == "events":
                    table = table.rename_columns(["event_id" if c == "row_hash" else c for c in table.column_names])
                    table = table.append_column("event_date", pc.cast(table.column("event_datetime"), pa.date32()))
                    table = _with_export_date(table, day)
                    writers["events_part"].write(table)
                    if batch.leaves is not None and batch.leaves.num_rows:
                        props = _event_properties(table, batch.leaves)
                        writers["tmp_event_properties"].write(_with_export_date(props, day))
                del table, batch
            stats[name].duplicates += staged.duplicates
            stats[name].rows_good -= staged.duplicates
        perm, attrs = _profiles(profiles, parts["profiles_v2"].resource, day, stats["profiles_v2"])
        observations.aggregate(
            [
                (_MOBILE_DEVICES_SQL, writers["mobile_devices"]),
                (_TECHNICAL_DATA_SQL, writers["technical_data"]),
                (_USER_LOCATIONS_SQL, writers["user_locations"]),
            ],
            day,
            {"profile_sdk": _profile_sdk(perm)},
        )
    finally:
        observations.close()
    writers["permanent_user_properties"].write(perm)
    writers["tmp_user_properties"].write(attrs)

    return {t: w.close() for t, w in writers.items()}


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
        + ". The day's silver was not replaced; the bad rows are in the quarantine/<resource> tables (export_date "
        + day.isoformat()
        + ") with their reasons."
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
    return pa.Table.from_pydict({f.name: pa.array([], f.type) for f in schema})


def _profile_sdk(perm: pa.Table) -> pa.Table:
    """``appmetrica_device_id`` -> ``appmetrica_sdk_version`` of the device's profile (the highest when several
    profiles name the device), the SDK version technical_data carries."""
    columns = {"appmetrica_device_id": pa.uint64(), "appmetrica_sdk_version": pa.string()}
    if "appmetrica_sdk_version" not in perm.column_names:
        return pa.Table.from_pydict({c: pa.array([], t) for c, t in columns.items()})
    import duckdb

    con = duckdb.connect()
    try:
        con.register("perm", perm.select(list(columns)))
        return con.sql(
            "select appmetrica_device_id, arg_max(appmetrica_sdk_version, "
            "(try_cast(appmetrica_sdk_version as bigint), appmetrica_sdk_version)) as appmetrica_sdk_version "
            "from perm where appmetrica_device_id is not null and appmetrica_sdk_version is not null "
            "group by appmetrica_device_id"
        ).to_arrow_table()
    finally:
        con.close()


def _profiles(
    batches: list[Batch], resource: Resource, day: dt.date, stats: ResourceStats
) -> tuple[pa.Table, pa.Table]:
    """One row per profile (the last one exported wins) and its custom attributes: one row per set attribute.

    The custom attributes are the columns ``resource`` (as exported) has beyond the documented fields; the Logs API
    exports each as text and documents no type, so ``value_type`` is ``string``; an empty value is not set (no row).
    """
    schema = PERMANENT_USER_PROPERTIES.schema
    if not batches:
        return (
            pa.Table.from_pydict({f.name: pa.array([], f.type) for f in schema}),
            pa.Table.from_pydict({f.name: pa.array([], f.type) for f in TMP_USER_PROPERTIES.schema}),
        )
    table = pa.concat_tables([b.table for b in batches])
    ids = table.column("profile_id").to_pylist()
    last: dict[str, int] = {pid: i for i, pid in enumerate(ids)}
    conflicts = len(ids) - len(last)
    if conflicts:
        log.info("profiles_v2 %s: %d profile rows superseded by a later row of the same profile", day, conflicts)
        stats.duplicates += conflicts
        stats.rows_good -= conflicts
    keep = sorted(last.values(), key=lambda i: ids[i])
    table = table.take(pa.array(keep, pa.int64()))
    attributes = [f for f in resource.fields if f not in RESOURCES[resource.name].fields]
    parts = []
    for position, name in enumerate(attributes):  # profile by profile, attributes in their configured order
        values = table.column(name)
        present = pc.is_valid(values)
        n = pc.sum(present).as_py() or 0
        parts.append(
            pa.table(
                {
                    "profile_row": pa.array(np.flatnonzero(present.to_numpy(zero_copy_only=False)), pa.int64()),
                    "position": pa.array(np.full(n, position), pa.int64()),
                    "attribute_name": pa.array([name] * n, pa.string()),
                    "value_text": values.filter(present),
                }
            )
        )
    attrs = pa.Table.from_pydict({f.name: pa.array([], f.type) for f in TMP_USER_PROPERTIES.schema
                                  if f.name != "export_date"})  # fmt: skip
    if parts:
        melted = pa.concat_tables(parts)
        melted = melted.take(pc.sort_indices(melted, [("profile_row", "ascending"), ("position", "ascending")]))
        rows = melted.column("profile_row")
        attrs = pa.Table.from_pydict(
            {
                "profile_id": table.column("profile_id").take(rows),
                "attribute_name": melted.column("attribute_name"),
                "value_text": melted.column("value_text"),
                "value_type": pa.array(["string"] * melted.num_rows, pa.string()),
                "bronze_file": table.column("bronze_file").take(rows),
                "bronze_row": table.column("bronze_row").take(rows),
            }
        )
    table = table.drop_columns(attributes)
    table = table.rename_columns([PROFILE_RENAMES.get(c, c) for c in table.column_names])
    table = _with_export_date(table, day)
    attrs = _with_export_date(attrs, day)
    return table, attrs
