"""Reading the lake's Delta tables in tests: a silver table's or a resource's quarantine rows, one day or all."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from lakehouse.delta import locate, partition_files, read_table
from lakehouse.settings import Layout


def _read(layout: Layout, rel: str, schema: pa.Schema, day: dt.date | None) -> pa.Table:
    where = None if day is None else ds.field("export_date") == pa.scalar(day, pa.date32())
    rows = read_table(locate(rel, layout), filters=where, schema=schema)
    return rows if rows is not None else schema.empty_table()


def silver_table(layout: Layout, table: str, day: dt.date | None = None) -> pa.Table:
    """The rows of silver ``table`` (of export date ``day``), with the table's schema (device ids UInt64)."""
    from transforms.silver.schemas import SILVER_TABLES

    return _read(layout, f"silver/{table}", SILVER_TABLES[table].schema, day)


def quarantine_table(layout: Layout, resource: str, day: dt.date | None = None) -> pa.Table:
    """The quarantined rows of ``resource`` (of export date ``day``)."""
    from transforms.silver.schemas import QUARANTINE_SCHEMA

    return _read(layout, f"quarantine/{resource}", QUARANTINE_SCHEMA, day)


def silver_rows(layout: Layout, table: str, day: dt.date | None = None) -> int:
    """Rows of silver ``table`` (of ``day``), counted from the table's add actions."""
    files = partition_files(locate(f"silver/{table}", layout), "export_date")
    return sum(f["num_records"] for d, fs in files.items() if day in (None, d) for f in fs)


def sorted_rows(table: pa.Table) -> list[tuple]:
    """The rows of ``table`` as tuples, in a stable order (for comparing table contents)."""
    return sorted((tuple(r.values()) for r in table.to_pylist()), key=repr)


def table_digests(root: Path, layers: tuple[str, ...] = ("silver", "quarantine")) -> dict[str, str]:
    """sha256 of the contents of every Delta table of ``layers`` under the lake at ``root``: its rows, in a stable
    order (a rebuild writes new data files, so files are not compared; the rows they hold are)."""
    out = {}
    for layer in layers:
        for folder in sorted(p.parent for p in (root / layer).glob("*/_delta_log")):
            rows = read_table(locate(f"{layer}/{folder.name}", Layout(root)))
            digest = hashlib.sha256(repr(sorted_rows(rows)).encode()).hexdigest() if rows is not None else "-"
            out[f"{layer}/{folder.name}"] = digest
    return out


def day_digests(root: Path, layers: tuple[str, ...] = ("silver", "quarantine")) -> dict[str, str]:
    """sha256 of the rows of each export date of every Delta table of ``layers`` under the lake at ``root``, as
    ``<layer>/<table>/date=D`` -> digest (days without rows are absent)."""
    out = {}
    for layer in layers:
        for folder in sorted(p.parent for p in (root / layer).glob("*/_delta_log")):
            rows = read_table(locate(f"{layer}/{folder.name}", Layout(root)))
            by_day: dict[dt.date, list[dict]] = {}
            for row in rows.to_pylist() if rows is not None else []:
                by_day.setdefault(row["export_date"], []).append(row)
            for day, found in by_day.items():
                ordered = sorted((tuple(r.values()) for r in found), key=repr)
                out[f"{layer}/{folder.name}/date={day.isoformat()}"] = hashlib.sha256(
                    repr(ordered).encode()
                ).hexdigest()
    return dict(sorted(out.items()))


def write_rows(layout: Layout, table: str, day: dt.date, rows: list[dict]) -> None:
    """Replace the ``day`` of silver ``table`` with ``rows`` (columns not given are null; lineage filled in)."""
    from lakehouse.delta import replace_partition
    from transforms.silver.schemas import SILVER_TABLES

    schema = pa.schema([f.with_nullable(True) for f in SILVER_TABLES[table].schema])
    full = [
        {"bronze_file": "bronze/test", "bronze_row": n + 1} | row | {"export_date": day} for n, row in enumerate(rows)
    ]
    data = pa.Table.from_pylist([{name: r.get(name) for name in schema.names} for r in full], schema=schema)
    replace_partition(locate(f"silver/{table}", layout), data, column="export_date", value=day)
