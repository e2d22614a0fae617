"""Expose a declared source's silver tables to dbt: the ``sources:`` YAML, generated from the declaration.

``lakehouse sources dbt-sources <name> --write`` writes
``dbt_project/models/staging/<name>/_<name>__sources.yml``; a unit test keeps the checked-in file
equal to what the declaration generates, so the declaration stays the one place a schema is written.
The dbt source is ``<name>_silver`` with one table per resource, read with ``read_parquet`` from
``$LAKEHOUSE_DATA_DIR/silver/<name>__<resource>/date=*/*.parquet`` (the ``date=*`` glob skips the
``.tmp-*`` folders a silver write is still staging).
"""

from __future__ import annotations

from pathlib import Path

from ingest.sources.config import SourceSpec
from lakehouse.settings import REPO_ROOT

DBT_TYPES = {
    "string": "varchar",
    "integer": "bigint",
    "number": "double",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "json": "varchar",
}
_LOCATION = (
    "read_parquet('{{{{ env_var('LAKEHOUSE_DATA_DIR', 'data') }}}}/silver/{table}/date=*/*.parquet', "
    "hive_partitioning = false, union_by_name = true)"
)


def dbt_source_name(source: SourceSpec) -> str:
    """The dbt source of a declared source: ``<name>_silver``."""
    return f"{source.name}_silver"


def dbt_sources_path(source: SourceSpec) -> Path:
    """Where the generated YAML lives: ``dbt_project/models/staging/<name>/_<name>__sources.yml``."""
    return REPO_ROOT / "dbt_project" / "models" / "staging" / source.name / f"_{source.name}__sources.yml"


def _dbt_type(ftype: str) -> str:
    if ftype.startswith("array["):
        return DBT_TYPES[ftype[6:-1]] + "[]"
    return DBT_TYPES[ftype]


def dbt_sources_yaml(source: SourceSpec) -> str:
    """The dbt ``sources:`` YAML of ``source`` (deterministic text)."""
    import yaml

    tables = []
    for name, res in source.resources.items():
        key = ", ".join(res.primary_key) or "none"
        grain = (
            f"at most one row per ({key}) per export_date"
            if res.primary_key and res.write_disposition in ("merge", "replace")
            else "one row per record received"
        )
        description = (
            f"{res.description} Silver of {source.name}/{name} (write_disposition {res.write_disposition}, "
            f"primary key {key}): {grain}."
        ).strip()
        columns = [
            {"name": f.name, "data_type": _dbt_type(f.type), "description": f.description or f"{f.path} ({f.type})"}
            for f in res.fields
        ]
        columns += [
            {"name": "export_date", "data_type": "date", "description": "The day whose load carried the row."},
            {"name": "bronze_file", "data_type": "varchar", "description": "The bronze file the row came from."},
            {"name": "bronze_row", "data_type": "bigint", "description": "1-based record number in that file."},
        ]
        tables.append(
            {
                "name": name,
                "description": description,
                "config": {"meta": {"external_location": _LOCATION.format(table=source.table(name))}},
                "columns": columns,
            }
        )
    doc = {
        "version": 2,
        "sources": [
            {
                "name": dbt_source_name(source),
                "config": {"tags": ["declared_source", f"source_{source.name}"]},
                "description": (
                    f"Silver of the declared source {source.name!r} ({source.kind}; ingest/sources/sources.yml). "
                    "Timestamps are naive UTC; every row keeps its bronze file and record number."
                ),
                "tables": tables,
            }
        ],
    }
    header = (
        f"# Generated from ingest/sources/sources.yml by `lakehouse sources dbt-sources {source.name} --write`.\n"
        "# Do not edit by hand: change the declaration and regenerate (tests/unit/sources checks they agree).\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, width=1000, allow_unicode=True)


def write_dbt_sources(source: SourceSpec) -> Path:
    """Write :func:`dbt_sources_yaml` to :func:`dbt_sources_path` and return the path."""
    from lakehouse.fsutil import atomic_file

    path = dbt_sources_path(source)
    with atomic_file(path) as fh:
        fh.write(dbt_sources_yaml(source).encode("utf-8"))
    return path
