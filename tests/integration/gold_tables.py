"""Reading the gold Delta tables in tests: through deltalake (pyarrow) or DuckDB's delta_scan, rows in key order."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa

from lakehouse.delta import (
    DeltaLocation,
    commit_metadata,
    duckdb_connect_lake,
    open_table,
    read_table,
    scan_sql,
    table_schema,
)


def gold_location(root: Path, mart: str) -> DeltaLocation:
    """The Delta table of ``mart`` in the lake at ``root`` (local disk)."""
    return DeltaLocation(f"gold/{mart}", str(root / "gold" / mart))


def order_key(loc: DeltaLocation, version: int | None = None) -> list[str]:
    """The mart's ``order_by`` key, as its commit recorded it."""
    key = commit_metadata(loc, version).get("lakehouse.order_by")
    assert key, f"{loc.rel}: the commit records no order_by key"
    return key.split(",")


def read_gold(root: Path, mart: str, *, as_of: int | dt.datetime | None = None) -> pa.Table:
    """The mart's rows through deltalake (pyarrow), unsigned ids as written, ordered by the mart's key."""
    loc = gold_location(root, mart)
    table = open_table(loc, as_of=as_of)
    assert table is not None, f"no gold table {loc.uri}"
    rows = read_table(loc, as_of=table.version(), schema=table_schema(loc, as_of=table.version()))
    return rows.sort_by([(c, "ascending") for c in order_key(loc, table.version())])


def scan_gold(root: Path, mart: str) -> duckdb.DuckDBPyRelation:
    """The mart's rows through DuckDB's delta_scan (the latest version), ordered by the mart's key."""
    loc = gold_location(root, mart)
    con = duckdb.connect()
    duckdb_connect_lake(con, loc)
    order = ", ".join(f'"{c}"' for c in order_key(loc))
    return con.sql(f"{scan_sql(loc, table_schema(loc))} order by {order}")


def gold_state(root: Path, marts: list[str] | tuple[str, ...]) -> dict[str, tuple[int, list[dict]]]:
    """Every mart's latest version and rows: compares table contents across builds."""
    state = {}
    for mart in marts:
        table = open_table(gold_location(root, mart))
        assert table is not None, mart
        state[mart] = (table.version(), read_gold(root, mart).to_pylist())
    return state
