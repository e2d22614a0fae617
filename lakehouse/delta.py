"""Delta Lake tables of the lake: where a table lives, how a day of it is replaced, how it is read.

The silver tables, the quarantine and the gold marts are Delta Lake tables (the ``deltalake``
package), at ``<lake>/<layer>/<name>`` where ``<lake>`` is ``$LAKEHOUSE_DATA_DIR`` on local disk
or ``s3://bucket/prefix`` from ``LAKEHOUSE_STORAGE_URL`` (credentials from the ``lakehouse_s3``
Airflow connection). A day's rebuild of a table is one Delta commit that replaces that day's
partition (:func:`replace_partition`); readers see the old day or the new one, never a mix.

Commits are conditional writes of the next ``_delta_log`` entry (a rename that refuses to overwrite
on local disk, ``If-None-Match: *`` on S3), so two writers on different hosts are safe without a
lock: the second one to commit gets :class:`LakeCommitConflict` and its task's retry redoes the
work against the new table state.

Delta has no unsigned integers: ``uint64`` columns (AppMetrica's device ids, a quarter of which
are above 2^63) are stored as ``DECIMAL(20,0)``, which Spark, Trino and DuckDB read exactly, and
smaller unsigned types as the next wider signed type. Each such column carries the Arrow type it was
written as in its field metadata (``lakehouse.unsigned``), so :func:`table_schema` gives back the
writer's schema from the table alone; :func:`read_table` with that schema (and the DuckDB views over
:func:`scan_sql`) cast them back.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from lakehouse.settings import ConfigError, Layout
from lakehouse.storage import S3_CONN_ID, storage_url

log = logging.getLogger(__name__)

DELTA_LAYERS = ("silver", "quarantine", "gold")
ROW_GROUP_ROWS = 128 * 1024
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# Unsigned Arrow types and the signed type Delta stores them as (every value fits).
_DELTA_TYPE = {
    pa.uint8(): pa.int16(),
    pa.uint16(): pa.int32(),
    pa.uint32(): pa.int64(),
    pa.uint64(): pa.decimal128(20, 0),
}
UNSIGNED_KEY = b"lakehouse.unsigned"  # field metadata: the unsigned Arrow type a widened column was written as
_UNSIGNED = {str(t).encode(): t for t in _DELTA_TYPE}


class LakeCommitConflict(RuntimeError):
    """Another writer committed to the same part of the table first; retrying redoes the work on the new state."""

    retryable = True


@dataclass(frozen=True)
class DeltaLocation:
    """Where one lake table lives: ``rel`` (``silver/events_part``), its ``uri`` and the options to reach it."""

    rel: str
    uri: str
    storage_options: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")


def _check_rel(rel: str) -> str:
    layer, _, name = rel.partition("/")
    if layer not in DELTA_LAYERS or not _NAME_RE.match(name):
        raise ConfigError(f"{rel!r} is not a lake table: expected <{'|'.join(DELTA_LAYERS)}>/<lower_snake_name>")
    return rel


def s3_storage_options(conn_id: str = S3_CONN_ID) -> dict[str, str]:
    """deltalake's options for the store behind the Airflow connection ``conn_id`` (holds the secret key).

    An endpoint URL in the connection's extra (MinIO, moto) is used as is; plain ``http://`` is
    allowed only when that URL says so.
    """
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from lakehouse.publish import find_connection

    if find_connection(conn_id) is None:
        raise ConfigError(f"the lake on S3 needs the Airflow connection {conn_id!r}")
    hook = S3Hook(aws_conn_id=conn_id)
    creds = hook.get_credentials()
    extra = hook.conn_config.extra_config or {}
    options = {
        "AWS_ACCESS_KEY_ID": creds.access_key or "",
        "AWS_SECRET_ACCESS_KEY": creds.secret_key or "",
        "AWS_REGION": hook.conn_region_name or extra.get("region_name") or "us-east-1",
    }
    if creds.token:
        options["AWS_SESSION_TOKEN"] = creds.token
    endpoint = hook.conn_config.endpoint_url or extra.get("endpoint_url")
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    return options


def locate(rel: str, layout: Layout | None = None, conn_id: str = S3_CONN_ID) -> DeltaLocation:
    """The lake table ``rel`` (``<layer>/<name>``) of this process's lake: local disk or ``LAKEHOUSE_STORAGE_URL``."""
    rel = _check_rel(rel)
    url = storage_url()
    if url.is_s3:
        return DeltaLocation(rel, url.url(rel), s3_storage_options(conn_id))
    layout = layout or Layout.from_env()
    return DeltaLocation(rel, str(layout.root / rel))


def delta_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every unsigned integer column as the signed type Delta stores it as.

    A widened column is tagged with its unsigned type (field metadata ``lakehouse.unsigned``), which
    the table's schema keeps (see :func:`table_schema`).
    """
    fields = []
    for f in schema:
        if f.type in _DELTA_TYPE:
            f = f.with_type(_DELTA_TYPE[f.type]).with_metadata({**(f.metadata or {}), UNSIGNED_KEY: str(f.type)})
        fields.append(f)
    return pa.schema(fields, metadata=schema.metadata)


def writer_schema(stored: pa.Schema) -> pa.Schema:
    """The schema a table was written with: every column tagged ``lakehouse.unsigned`` back to its unsigned type."""
    fields = []
    for f in stored:
        tag = (f.metadata or {}).get(UNSIGNED_KEY)
        fields.append(f.with_type(_UNSIGNED[tag]).remove_metadata() if tag in _UNSIGNED else f)
    return pa.schema(fields)


def table_schema(loc: DeltaLocation, *, as_of: int | dt.datetime | None = None) -> pa.Schema | None:
    """The writer's schema of the table at ``loc`` (unsigned columns as written), or None when it is missing."""
    table = open_table(loc, as_of=as_of)
    return None if table is None else writer_schema(pa.schema(table.schema().to_arrow()))


def _to_delta(data: pa.Table | pa.RecordBatchReader) -> pa.Table | pa.RecordBatchReader:
    target = delta_schema(data.schema)
    if target.equals(data.schema):
        return data
    if isinstance(data, pa.Table):
        return data.cast(target)
    return pa.RecordBatchReader.from_batches(target, (batch.cast(target) for batch in data))


def _commit_properties(metadata: Mapping[str, str] | None) -> Any:
    from deltalake import CommitProperties

    # deltalake re-tries a commit that lost only to commits it does not conflict with (another date's
    # partition); a commit that touched the same rows fails and is the caller's to redo.
    return CommitProperties(custom_metadata=dict(metadata or {}))


def _writer_properties() -> Any:
    """Parquet settings of every lake table's data files: zstd, row groups of ~128k rows (statistics per group)."""
    from deltalake import WriterProperties

    return WriterProperties(compression="ZSTD", max_row_group_size=ROW_GROUP_ROWS)


def _write(loc: DeltaLocation, data: Any, *, predicate: str | None, partition_by: list[str] | None,
           metadata: Mapping[str, str] | None, what: str, schema_mode: str | None = None) -> int:  # fmt: skip
    from deltalake import write_deltalake
    from deltalake.exceptions import CommitFailedError

    from lakehouse.failpoints import failpoint

    failpoint("commit", f"{loc.rel} {what}")
    try:
        write_deltalake(
            loc.uri,
            _to_delta(data),
            mode="overwrite",
            predicate=predicate,
            partition_by=partition_by,
            schema_mode=schema_mode,
            storage_options=loc.storage_options or None,
            commit_properties=_commit_properties(metadata),
            writer_properties=_writer_properties(),
        )
    except CommitFailedError as exc:
        raise LakeCommitConflict(
            f"{what} of {loc.rel} ({loc.uri}) lost a commit race: another writer committed to the table first "
            f"({str(exc).splitlines()[0]}); nothing of this attempt is visible, and a retry redoes it"
        ) from exc
    table = open_table(loc)
    assert table is not None  # just written
    version = table.version()
    log.info("%s of %s committed as version %s", what, loc.rel, version)
    return version


def replace_partition(
    loc: DeltaLocation,
    data: pa.Table | pa.RecordBatchReader,
    *,
    column: str,
    value: dt.date,
    metadata: Mapping[str, str] | None = None,
) -> int:
    """Replace the rows of ``column = value`` (a date partition) with ``data`` in one commit; the new version.

    Every row of ``data`` must carry ``value`` in ``column`` (checked for a Table; Delta refuses a
    stream's stray rows at commit). ``metadata`` is recorded with the commit (the table's history).
    """
    if not isinstance(value, dt.date) or not re.fullmatch(r"[a-z_][a-z0-9_]*", column):
        raise ConfigError(f"replace_partition needs a date column name and a date, got {column!r}={value!r}")
    if isinstance(data, pa.Table) and data.num_rows:
        import pyarrow.compute as pc

        stray = data.num_rows - pc.sum(pc.equal(data[column], pa.scalar(value, data.schema.field(column).type))).as_py()
        if stray:
            raise ConfigError(f"{stray} row(s) for {loc.rel} partition {column}={value} carry another {column}")
    return _write(loc, data, predicate=f"{column} = '{value.isoformat()}'", partition_by=[column],
                  metadata=metadata, what=f"{column}={value}")  # fmt: skip


def replace_dates(
    loc: DeltaLocation,
    data: pa.Table | pa.RecordBatchReader,
    *,
    column: str,
    dates: list[dt.date],
    metadata: Mapping[str, str] | None = None,
) -> int:
    """Replace the rows of ``column in dates`` with ``data`` in one commit; the new version.

    Dates of ``dates`` that ``data`` has no row of end up with no rows. Every row of ``data`` must
    carry one of ``dates`` in ``column`` (checked for a Table; Delta refuses a stream's stray rows at
    commit). The table must exist (create it with :func:`replace_table`).
    """
    if (
        not re.fullmatch(r"[a-z_][a-z0-9_]*", column)
        or not dates
        or not all(isinstance(d, dt.date) and not isinstance(d, dt.datetime) for d in dates)
    ):
        raise ConfigError(f"replace_dates needs a date column name and dates, got {column!r}={dates!r}")
    if open_table(loc) is None:
        raise ConfigError(f"{loc.rel} ({loc.uri}) is not a table yet: replace the whole table first")
    days = sorted(set(dates))
    if isinstance(data, pa.Table) and data.num_rows:
        import pyarrow.compute as pc

        allowed = pa.array(days, data.schema.field(column).type)
        stray = data.num_rows - pc.sum(pc.is_in(data[column], value_set=allowed)).as_py()
        if stray:
            raise ConfigError(f"{stray} row(s) for {loc.rel} carry a {column} outside the {len(days)} date(s) replaced")
    listed = ", ".join(f"'{d.isoformat()}'" for d in days)
    what = f"{column} {days[0]}..{days[-1]} ({len(days)} date(s))" if len(days) > 1 else f"{column}={days[0]}"
    return _write(loc, data, predicate=f"{column} in ({listed})", partition_by=None, metadata=metadata, what=what)


def replace_table(
    loc: DeltaLocation,
    data: pa.Table | pa.RecordBatchReader,
    *,
    partition_by: list[str] | None = None,
    metadata: Mapping[str, str] | None = None,
    new_schema: bool = False,
) -> int:
    """Replace the whole table with ``data`` in one commit (created when missing); the new version.

    ``new_schema``: the table takes ``data``'s schema (columns added, dropped or retyped) instead of
    refusing data that does not match its current one; its partition columns stay.
    """
    return _write(loc, data, predicate=None, partition_by=partition_by, metadata=metadata, what="full replace",
                  schema_mode="overwrite" if new_schema else None)  # fmt: skip


def commit_metadata(loc: DeltaLocation, version: int | None = None) -> dict[str, Any]:
    """The commit information of ``version`` (default: the latest) of the table at ``loc``, custom metadata included.

    {} when the table or that version is missing. (Read from the latest table: deltalake numbers the
    history of a time-travelled table from the wrong end.)
    """
    table = open_table(loc)
    if table is None:
        return {}
    version = table.version() if version is None else version
    if not 0 <= version <= table.version():
        return {}
    for entry in table.history(table.version() - version + 1):
        if entry.get("version") == version:
            return dict(entry)
    return {}


def open_table(loc: DeltaLocation, *, as_of: int | dt.datetime | None = None) -> Any:
    """The ``DeltaTable`` at ``loc`` (at version or time ``as_of``), or None when no table is there yet."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    if not loc.is_s3 and not (Path(loc.uri) / "_delta_log").is_dir():
        return None
    try:
        table = DeltaTable(loc.uri, storage_options=loc.storage_options or None)
    except TableNotFoundError:
        return None
    if as_of is not None:
        if isinstance(as_of, dt.datetime) and as_of.tzinfo is None:
            raise ConfigError(f"as_of={as_of.isoformat()} needs a time zone (e.g. 2026-11-05T12:00:00+00:00)")
        try:
            table.load_as_version(as_of)
        except Exception as exc:  # deltalake raises plain errors for versions/times outside the history
            raise ConfigError(f"{loc.rel} has no version as of {as_of!s}: {str(exc).splitlines()[0]}") from exc
    return table


def read_table(
    loc: DeltaLocation,
    *,
    as_of: int | dt.datetime | None = None,
    columns: list[str] | None = None,
    filters: Any = None,
    schema: pa.Schema | None = None,
) -> pa.Table | None:
    """The rows of the table at ``loc`` (None when missing), cast back to ``schema`` when given.

    ``filters`` are pyarrow dataset expressions (partition pruning included).
    """
    table = open_table(loc, as_of=as_of)
    if table is None:
        return None
    rows = table.to_pyarrow_dataset().to_table(columns=columns, filter=filters)
    if schema is not None:
        rows = rows.cast(pa.schema([schema.field(n) if n in schema.names else rows.schema.field(n)
                                    for n in rows.schema.names]))  # fmt: skip
    return rows


def partition_files(loc: DeltaLocation, column: str) -> dict[dt.date, list[dict[str, Any]]]:
    """The data files of each ``column`` (a date) partition of the current version: ``path``, ``size_bytes``,
    ``num_records``, from the table's add actions (no data file is read); {} when there is no table.

    A rewritten partition has new files (names carry a uuid), so the paths identify what a partition holds.
    """
    table = open_table(loc)
    if table is None:
        return {}
    actions = pa.table(table.get_add_actions(flatten=True))
    out: dict[dt.date, list[dict[str, Any]]] = {}
    for row in actions.select(["path", "size_bytes", "num_records", f"partition.{column}"]).to_pylist():
        day = row.pop(f"partition.{column}")
        out.setdefault(day, []).append(row)
    return {day: sorted(files, key=lambda f: f["path"]) for day, files in sorted(out.items())}


def latest_commit(loc: DeltaLocation, match: Mapping[str, str], *, limit: int = 200) -> dict[str, Any] | None:
    """The newest of the last ``limit`` commits whose metadata holds every key and value of ``match``, or None."""
    table = open_table(loc)
    if table is None:
        return None
    for commit in table.history(limit):
        if all(commit.get(k) == v for k, v in match.items()):
            return commit
    return None


def register_duckdb(
    con: Any, loc: DeltaLocation, view: str, *, as_of: int | dt.datetime | None = None, columns: list[str] | None = None
) -> Any:
    """Create the temporary view ``view`` over the table at ``loc`` in the DuckDB connection ``con``.

    The view reads one version (the latest, or ``as_of``) through deltalake's pyarrow dataset
    (DuckDB pushes projections and filters into it), with the unsigned columns cast back to the
    writer's types, only ``columns`` when given. Returns the loaded ``DeltaTable`` (its ``version()``
    is the one read), or None when there is no table at ``loc``.
    """
    table = open_table(loc, as_of=as_of)
    if table is None:
        return None
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", view):
        raise ConfigError(f"{view!r} is not a DuckDB view name")
    dataset = table.to_pyarrow_dataset()
    schema = writer_schema(dataset.schema)
    names = list(columns) if columns is not None else schema.names
    missing = [n for n in names if n not in schema.names]
    if missing:
        raise ConfigError(f"{loc.rel} ({loc.uri}) has no column(s) {', '.join(missing)}; it has {schema.names}")
    unsigned = {pa.uint8(): "utinyint", pa.uint16(): "usmallint", pa.uint32(): "uinteger", pa.uint64(): "ubigint"}
    quoted = {n: '"' + n.replace('"', '""') + '"' for n in names}
    select = ", ".join(f"{quoted[n]}::{unsigned[schema.field(n).type]} as {quoted[n]}"
                       if schema.field(n).type in unsigned else quoted[n] for n in names)  # fmt: skip
    con.register(f"{view}__delta", dataset)
    con.execute(f"create or replace temporary view {view} as select {select} from {view}__delta")  # noqa: S608
    return table


def delta_extension() -> str:
    """The path of DuckDB's delta extension shipped by the ``duckdb-extension-delta`` wheel (works offline)."""
    import duckdb_extension_delta

    found = next(Path(duckdb_extension_delta.__path__[0]).rglob("*.duckdb_extension"), None)
    if found is None:
        raise ConfigError("the duckdb-extension-delta package has no .duckdb_extension file")
    return str(found)


def _sql_str(value: str) -> str:
    return value.replace("'", "''")


def duckdb_secret_sql(options: Mapping[str, str], name: str = "lake_s3") -> str:
    """``CREATE TEMPORARY SECRET`` for DuckDB (httpfs/delta) from deltalake's S3 options (holds the key)."""
    from urllib.parse import urlsplit

    parts = {"key_id": options["AWS_ACCESS_KEY_ID"], "secret": options["AWS_SECRET_ACCESS_KEY"],
             "region": options.get("AWS_REGION", "us-east-1")}  # fmt: skip
    if options.get("AWS_SESSION_TOKEN"):
        parts["session_token"] = options["AWS_SESSION_TOKEN"]
    if options.get("AWS_ENDPOINT_URL"):
        endpoint = urlsplit(options["AWS_ENDPOINT_URL"])
        parts |= {"endpoint": endpoint.netloc, "use_ssl": str(endpoint.scheme == "https").lower(), "url_style": "path"}
    listed = ", ".join(f"{k} '{_sql_str(v)}'" for k, v in parts.items())
    return f"create or replace temporary secret {name} (type s3, {listed})"


def duckdb_connect_lake(con: Any, loc: DeltaLocation | None = None) -> None:
    """Make ``delta_scan`` work on ``con``: load the delta extension (and, for S3, httpfs and the secret)."""
    con.execute(f"load '{_sql_str(delta_extension())}'")
    if loc is not None and loc.is_s3:
        from lakehouse.storage import httpfs_extension

        con.execute(f"load '{_sql_str(httpfs_extension())}'")
        con.execute(duckdb_secret_sql(loc.storage_options))


def scan_sql(loc: DeltaLocation, schema: pa.Schema | None = None) -> str:
    """A DuckDB select over the table (``delta_scan``), casting Delta's stored types back to ``schema``'s."""
    source = f"delta_scan('{_sql_str(loc.uri)}')"
    if schema is None:
        return f"select * from {source}"  # noqa: S608 - the uri is quoted
    unsigned = {pa.uint8(): "utinyint", pa.uint16(): "usmallint", pa.uint32(): "uinteger", pa.uint64(): "ubigint"}
    casts = [f'"{f.name}"::{unsigned[f.type]} as "{f.name}"' for f in schema if f.type in unsigned]
    if not casts:
        return f"select * from {source}"  # noqa: S608
    return f"select * replace ({', '.join(casts)}) from {source}"  # noqa: S608
