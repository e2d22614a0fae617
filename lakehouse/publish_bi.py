"""Publish the gold marts into PostgreSQL tables for BI tools, through Airflow's ``lakehouse_bi`` connection.

See docs/bi.md. Every AppMetrica gold mart (``lakehouse.assets.GOLD_MART_NAMES``) becomes the table
``public.<mart>`` of the connection's database, its columns and types taken from the mart's dbt contract as
the feature registry of the built gold records it (``gold/_registry/feature_registry.json``: column order,
``data_type`` of each column, the model's ``timestamp`` column). A mart with a timestamp column
(``fct_device_daily.event_date``, ``feature_date`` of the daily feature marts) is published per date; the
others (``dim_devices``, ``feature_transformer_state``) whole.

What is written is what differs: each date partition of a gold mart (each whole mart) has a fingerprint
(its row count and a hash of every row and of the contract's columns) computed by DuckDB from one version
of the gold Delta table; the bookkeeping table ``lakehouse_bi.published_partitions`` holds the fingerprint of what the
database holds. A date whose fingerprint differs in any mart is rewritten, and a date gold no longer has
is deleted: after a daily build these are exactly the dates the build changed (the run's day, rebuilt
lookback days, feature dates whose windows moved), and a date an earlier failed publish left out is
written by the next one.

Each date is one transaction: ``DELETE`` of that date's rows in every mart whose partition changed, then
``COPY`` of the gold rows in chunks (at most ``LAKEHOUSE_BI_CHUNK_ROWS`` rows and
``LAKEHOUSE_BI_CHUNK_BYTES`` bytes of Arrow data per ``COPY``), then its bookkeeping rows, then commit. A
reader sees a date's old rows or its new rows, never a mix or both; a rerun replaces rather than adds. A
whole mart is replaced the same way in one transaction of its own.

The schema follows the contracts: a table is created when absent (with an index on its date column), a
contract column it lacks is added (and every partition of that mart rewritten, since the fingerprint
covers the columns), and a column whose PostgreSQL type differs from the contract's stops the publish
with an error naming the table and column before anything is written. A column the contract no longer
has is left in place (null in rows written since) and logged.

When the connection does not exist the step is skipped and the log says so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from lakehouse.settings import ConfigError, Layout, parse_day

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = "lakehouse_bi"
CHUNK_ROWS_ENV = "LAKEHOUSE_BI_CHUNK_ROWS"
CHUNK_BYTES_ENV = "LAKEHOUSE_BI_CHUNK_BYTES"
DEFAULT_CHUNK_ROWS = 50_000
DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024
MART_SCHEMA = "public"
BOOK_SCHEMA = "lakehouse_bi"
BOOK_TABLE = "published_partitions"
WHOLE = ""  # the partition key of a mart published whole
_LOCK_KEY = 0x6C616B65  # pg_advisory_lock key: one publish into a database at a time

_DECIMAL_RE = re.compile(r"^(?:decimal|numeric)\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
# DuckDB / dbt contract types -> PostgreSQL, spelt as PostgreSQL's format_type() prints them.
_TYPES = {
    "boolean": "boolean",
    "bool": "boolean",
    "tinyint": "smallint",
    "utinyint": "smallint",
    "smallint": "smallint",
    "usmallint": "integer",
    "integer": "integer",
    "int": "integer",
    "uinteger": "bigint",
    "bigint": "bigint",
    "ubigint": "numeric(20,0)",  # 0 .. 2^64-1 exactly (AppMetrica device ids)
    "hugeint": "numeric(39,0)",
    "uhugeint": "numeric(39,0)",
    "float": "real",
    "real": "real",
    "double": "double precision",
    "varchar": "text",
    "text": "text",
    "string": "text",
    "date": "date",
    "time": "time without time zone",
    "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone",
    "timestamp with time zone": "timestamp with time zone",
    "uuid": "uuid",
    "blob": "bytea",
    "interval": "interval",
}


class BiPublishError(RuntimeError):
    """Publishing gold to PostgreSQL failed (no registry, a contract the table cannot take, a database error)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable  # a contract/table conflict is not fixed by a retry


@dataclass(frozen=True)
class ChunkLimits:
    """Bounds on one ``COPY`` statement: rows, and bytes of the Arrow data it sends."""

    rows: int = DEFAULT_CHUNK_ROWS
    bytes: int = DEFAULT_CHUNK_BYTES

    @classmethod
    def from_env(cls) -> ChunkLimits:
        values = {}
        for field, env in (("rows", CHUNK_ROWS_ENV), ("bytes", CHUNK_BYTES_ENV)):
            raw = os.environ.get(env, "").strip()
            if not raw:
                continue
            if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
                raise ConfigError(f"{env} must be a positive whole number, got {raw!r}")
            values[field] = int(raw)
        return cls(**values)


@dataclass(frozen=True)
class Mart:
    """One gold mart as its contract describes it."""

    name: str
    columns: tuple[tuple[str, str], ...]  # (column, PostgreSQL type), in contract order
    date_column: str | None  # None: published whole
    table: Any  # its gold Delta table (a lakehouse.delta.DeltaLocation)
    version: int  # the version read: every query of one publish sees the same rows

    @property
    def signature(self) -> str:
        """A hash of the columns and types: a contract change changes every fingerprint of the mart."""
        return hashlib.sha256(json.dumps(self.columns).encode()).hexdigest()[:16]


def pg_type(data_type: str, *, where: str) -> str:
    """The PostgreSQL type (as ``format_type`` spells it) for a contract ``data_type``; ConfigError when unknown."""
    raw = " ".join(str(data_type).strip().lower().split())
    if raw.endswith("[]"):
        return pg_type(raw[:-2], where=where) + "[]"
    if match := _DECIMAL_RE.match(raw):
        return f"numeric({match.group(1)},{match.group(2)})"
    if raw in {"decimal", "numeric"}:
        return "numeric(18,3)"  # DuckDB's default DECIMAL width
    if raw in _TYPES:
        return _TYPES[raw]
    raise ConfigError(f"{where}: contract data_type {data_type!r} has no PostgreSQL type here")


def _ident(name: str) -> Any:
    from psycopg import sql

    return sql.Identifier(name)


def contract_marts(layout: Layout, names: Iterable[str]) -> list[Mart]:
    """The listed marts with their contracts from the feature registry of ``layout``'s gold, each at its
    latest table version; BiPublishError when the registry, a contract or a table is absent."""
    from lakehouse.delta import locate, open_table
    from transforms.feature_registry import RegistryError, read_registry, registry_paths

    try:
        registry = read_registry(registry_paths(layout.gold)["json"])
    except RegistryError as exc:
        raise BiPublishError(str(exc), retryable=False) from exc
    types = {(f["model"], f["column"]): f["data_type"] for f in registry["features"]}
    marts = []
    for name in names:
        model = registry["models"].get(name)
        if model is None:
            raise BiPublishError(f"the feature registry has no contract for gold mart {name!r}", retryable=False)
        loc = locate(f"gold/{name}", layout)
        table = open_table(loc)
        if table is None:
            raise BiPublishError(f"gold mart {name} has no Delta table at {loc.uri}: build gold first")
        columns = tuple((c, pg_type(types[(name, c)], where=f"{name}.{c}")) for c in model["columns"])
        marts.append(Mart(name, columns, model.get("timestamp_column"), loc, table.version()))
    return marts


# --------------------------------------------------------------------------------------------
# Gold side (DuckDB)


def _files_sql(con: Any, mart: Mart) -> str:
    """A DuckDB view over the mart's table at the version the publish reads (created on ``con`` when missing)."""
    from lakehouse.delta import register_duckdb

    view = f"gold_{mart.name}_v{mart.version}"
    if not con.execute("select 1 from duckdb_views() where view_name = ?", [view]).fetchone():
        register_duckdb(con, mart.table, view, as_of=mart.version)
    return view


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def gold_fingerprints(con: Any, mart: Mart) -> dict[str, tuple[int, str]]:
    """``{partition: (rows, fingerprint)}`` of a gold mart: one per date (ISO), or ``{"": ...}`` for a whole mart."""
    have = [r[0] for r in con.execute(f"describe select * from {_files_sql(con, mart)}").fetchall()]  # noqa: S608
    wanted = [c for c, _ in mart.columns]
    if have != wanted:
        raise BiPublishError(
            f"gold mart {mart.name} has columns {have}, its contract {wanted}: rebuild gold", retryable=False
        )
    row_hash = f"hash({', '.join(_quote(c) for c in wanted)})"
    key = f"cast({_quote(mart.date_column)} as varchar)" if mart.date_column else "''"
    rows = con.execute(
        f"select {key}, count(*), cast(sum(cast({row_hash} as hugeint)) as varchar) "  # noqa: S608
        f"from {_files_sql(con, mart)} group by all"
    ).fetchall()
    if any(part is None for part, _, _ in rows):
        raise BiPublishError(f"gold mart {mart.name} has rows without {mart.date_column}", retryable=False)
    return {part: (int(n), f"{n}:{digest}:{mart.signature}") for part, n, digest in rows}


def _chunks(batch: Any, limit_bytes: int) -> Iterator[Any]:
    """Split an Arrow record batch into pieces of at most ``limit_bytes`` (a single larger row goes alone)."""
    if batch.num_rows <= 1 or batch.nbytes <= limit_bytes:
        if batch.num_rows:
            yield batch
        return
    half = batch.num_rows // 2
    yield from _chunks(batch.slice(0, half), limit_bytes)
    yield from _chunks(batch.slice(half), limit_bytes)


def _gold_batches(con: Any, mart: Mart, partition: str, limits: ChunkLimits) -> Iterator[Any]:
    columns = ", ".join(_quote(c) for c, _ in mart.columns)
    where = f"where {_quote(mart.date_column)} = cast(? as date)" if mart.date_column else ""
    params = [partition] if mart.date_column else []
    sql = f"select {columns} from {_files_sql(con, mart)} {where}"  # noqa: S608 - quoted names
    reader = con.execute(sql, params).fetch_record_batch(limits.rows)
    for batch in reader:
        yield from _chunks(batch, limits.bytes)


# --------------------------------------------------------------------------------------------
# PostgreSQL side


def _existing_columns(cur: Any, table: str) -> dict[str, str] | None:
    cur.execute(
        "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a "
        "join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped order by a.attnum",
        (MART_SCHEMA, table),
    )
    rows = cur.fetchall()
    return {name: kind for name, kind in rows} if rows else None


def migrate(conn: Any, marts: list[Mart]) -> tuple[dict[str, list[str]], set[str]]:
    """Create absent tables, add missing contract columns; BiPublishError (nothing changed) on a type conflict.

    Returns ``({mart: [columns added]}, {marts whose table was created})``.
    """
    from psycopg import sql

    plan: dict[str, tuple[bool, list[tuple[str, str]]]] = {}
    with conn.cursor() as cur:
        conflicts = []
        for mart in marts:
            existing = _existing_columns(cur, mart.name)
            if existing is None:
                plan[mart.name] = (True, list(mart.columns))
                continue
            for column, kind in mart.columns:
                if column in existing and existing[column] != kind:
                    conflicts.append(f"{MART_SCHEMA}.{mart.name}.{column} is {existing[column]}, the contract {kind}")
            extra = [c for c in existing if c not in dict(mart.columns)]
            if extra:
                log.warning("table %s.%s has column(s) %s that the contract no longer has: left in place",
                            MART_SCHEMA, mart.name, ", ".join(extra))  # fmt: skip
            plan[mart.name] = (False, [(c, k) for c, k in mart.columns if c not in existing])
        if conflicts:
            raise BiPublishError(
                "PostgreSQL tables do not match the gold contracts (change or drop them by hand, then rerun): "
                + "; ".join(conflicts),
                retryable=False,
            )
        with conn.transaction():
            cur.execute(sql.SQL("create schema if not exists {}").format(_ident(BOOK_SCHEMA)))
            cur.execute(
                sql.SQL(
                    "create table if not exists {}.{} (mart text not null, partition_key text not null, "
                    "rows bigint not null, fingerprint text not null, run_id text not null, "
                    "published_at timestamptz not null default now(), primary key (mart, partition_key))"
                ).format(_ident(BOOK_SCHEMA), _ident(BOOK_TABLE))
            )
            by_name = {m.name: m for m in marts}
            for name, (create, columns) in plan.items():
                table = sql.SQL("{}.{}").format(_ident(MART_SCHEMA), _ident(name))
                if create:
                    defs = sql.SQL(", ").join(sql.SQL("{} {}").format(_ident(c), sql.SQL(k)) for c, k in columns)
                    cur.execute(sql.SQL("create table {} ({})").format(table, defs))
                    if by_name[name].date_column:
                        cur.execute(
                            sql.SQL("create index {} on {} ({})").format(
                                _ident(f"{name}_date_idx"), table, _ident(by_name[name].date_column)
                            )
                        )
                    log.info("created table %s.%s (%d columns)", MART_SCHEMA, name, len(columns))
                elif columns:
                    for column, kind in columns:
                        cur.execute(
                            sql.SQL("alter table {} add column {} {}").format(table, _ident(column), sql.SQL(kind))
                        )
                    log.info("table %s.%s: added column(s) %s from the contract", MART_SCHEMA, name,
                             ", ".join(c for c, _ in columns))  # fmt: skip
    added = {name: [c for c, _ in columns] for name, (create, columns) in plan.items() if columns and not create}
    return added, {name for name, (create, _) in plan.items() if create}


def published_fingerprints(conn: Any) -> dict[tuple[str, str], str]:
    from psycopg import sql

    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("select mart, partition_key, fingerprint from {}.{}").format(
                _ident(BOOK_SCHEMA), _ident(BOOK_TABLE)
            )
        )
        return {(m, p): f for m, p, f in cur.fetchall()}


def _replace_partition(
    conn: Any, duck: Any, mart: Mart, partition: str, gold: tuple[int, str] | None, limits: ChunkLimits, run_id: str
) -> dict[str, int]:
    """Inside the caller's transaction: delete the partition's rows, COPY gold's, record its fingerprint."""
    from psycopg import sql

    table = sql.SQL("{}.{}").format(_ident(MART_SCHEMA), _ident(mart.name))
    book = sql.SQL("{}.{}").format(_ident(BOOK_SCHEMA), _ident(BOOK_TABLE))
    written = chunks = 0
    with conn.cursor() as cur:
        if mart.date_column:
            cur.execute(
                sql.SQL("delete from {} where {} = %s").format(table, _ident(mart.date_column)),
                (dt.date.fromisoformat(partition),),
            )
        else:
            cur.execute(sql.SQL("delete from {}").format(table))
        deleted = cur.rowcount
        if gold is None:
            cur.execute(sql.SQL("delete from {} where mart = %s and partition_key = %s").format(book),
                        (mart.name, partition))  # fmt: skip
            return {"deleted": deleted, "rows": 0, "chunks": 0}
        copy_sql = sql.SQL("copy {} ({}) from stdin").format(
            table, sql.SQL(", ").join(_ident(c) for c, _ in mart.columns)
        )
        for batch in _gold_batches(duck, mart, partition, limits):
            values = [column.to_pylist() for column in batch.columns]
            with cur.copy(copy_sql) as copy:
                for row in zip(*values, strict=True):
                    copy.write_row(row)
            written += batch.num_rows
            chunks += 1
        if written != gold[0]:
            raise BiPublishError(f"{mart.name} {partition or '(whole)'}: wrote {written} rows, gold has {gold[0]}")
        cur.execute(
            sql.SQL(
                "insert into {} (mart, partition_key, rows, fingerprint, run_id) values (%s, %s, %s, %s, %s) "
                "on conflict (mart, partition_key) do update set rows = excluded.rows, "
                "fingerprint = excluded.fingerprint, run_id = excluded.run_id, published_at = now()"
            ).format(book),
            (mart.name, partition, written, gold[1], run_id),
        )
    return {"deleted": deleted, "rows": written, "chunks": chunks}


def _target(conn: Any) -> str:
    info = conn.info
    return f"postgresql://{info.host}:{info.port}/{info.dbname}"


# --------------------------------------------------------------------------------------------
# Entry point


def publish_bi(
    day: dt.date | str,
    *,
    layout: Layout | None = None,
    run_id: str = "manual",
    conn_id: str = DEFAULT_CONN_ID,
    marts: Iterable[str] | None = None,
    limits: ChunkLimits | None = None,
) -> dict[str, Any]:
    """Bring the PostgreSQL tables of ``conn_id`` in line with gold; return what was written.

    ``day`` is the run's day (logged and returned); the partitions written are those whose gold content
    differs from what the database holds (see the module docstring). Returns ``{"date", "target",
    "dates": [ISO dates rewritten or deleted], "marts": {mart: {"partitions", "rows", "deleted", "chunks"}},
    "created": [tables created], "migrated": {mart: [columns added]}}``, or ``{"date", "skipped": why}`` without
    the connection.
    """
    import duckdb

    from lakehouse.publish import appmetrica_marts, find_connection

    day = parse_day(day)
    layout = layout or Layout.from_env()
    limits = limits or ChunkLimits.from_env()
    if find_connection(conn_id) is None:
        log.warning("No Airflow connection %r found, so gold was not published to PostgreSQL (publish_bi skipped)",
                    conn_id)  # fmt: skip
        return {"date": day.isoformat(), "skipped": f"no Airflow connection {conn_id!r}"}
    contracts = contract_marts(layout, appmetrica_marts() if marts is None else marts)

    from airflow.providers.postgres.hooks.postgres import PostgresHook

    with duckdb.connect() as duck:
        gold = {m.name: gold_fingerprints(duck, m) for m in contracts}
        try:
            conn = PostgresHook(postgres_conn_id=conn_id).get_conn()
        except Exception as exc:  # psycopg's message names host and database, never the password
            raise BiPublishError(f"connecting to PostgreSQL through {conn_id!r} failed: {exc}") from exc
        with conn:
            conn.autocommit = True  # every write below is in an explicit transaction
            conn.execute("select pg_advisory_lock(%s)", (_LOCK_KEY,))
            target = _target(conn)
            migrated, created = migrate(conn, contracts)
            # a table created now holds nothing, whatever the bookkeeping says (it was dropped by hand)
            held = {k: v for k, v in published_fingerprints(conn).items() if k[0] not in created}
            todo: dict[str, list[Mart]] = {}
            for mart in contracts:
                parts = set(gold[mart.name]) | {p for (m, p) in held if m == mart.name}
                for part in sorted(parts):
                    now = gold[mart.name].get(part)
                    if (now[1] if now else None) != held.get((mart.name, part)):
                        todo.setdefault(part, []).append(mart)
            results = {m.name: {"partitions": 0, "rows": 0, "deleted": 0, "chunks": 0} for m in contracts}
            # one transaction per date (every mart's partition of it), then one per whole mart
            for part in sorted(todo, key=lambda p: (p == WHOLE, p)):
                groups = [[m] for m in todo[part]] if part == WHOLE else [todo[part]]
                for group in groups:
                    with conn.transaction():
                        for mart in group:
                            done = _replace_partition(conn, duck, mart, part, gold[mart.name].get(part), limits,
                                                      run_id)  # fmt: skip
                            for key, value in done.items():
                                results[mart.name][key] += value
                            results[mart.name]["partitions"] += 1
                log.info("PostgreSQL %s: %s rewritten (%s)", target, part or "whole mart(s)",
                         ", ".join(m.name for m in todo[part]))  # fmt: skip
    dates = sorted(p for p in todo if p != WHOLE)
    log.info("published gold to %s: %d date(s) rewritten, %d row(s) in %d chunk(s)", target, len(dates),
             sum(r["rows"] for r in results.values()), sum(r["chunks"] for r in results.values()))  # fmt: skip
    return {
        "date": day.isoformat(),
        "target": target,
        "dates": dates,
        "marts": results,
        "created": sorted(created),
        "migrated": migrated,
    }
