"""The three ways of touching one bronze events file that the benchmark compares (one per process).

``python -m bench.paths silver DATA_DIR DAY``: this project's bronze -> silver job, ``build_silver``,
exactly as the DAG's build_silver task calls it (every silver table written, JSON flattened,
deduplicated, quarantine decided).
``python -m bench.paths duckdb CSV OUT``: DuckDB ``read_csv`` of the file -> Parquet (defaults).
``python -m bench.paths pandas CSV OUT``: pandas ``read_csv`` of the whole file -> ``to_parquet`` (defaults).

``python -m bench.paths gold DATA_DIR DAY|full``: ``build_gold`` as the daily run calls it.
``python -m bench.paths lookup GOLD N http|store``: N timed feature lookups over a gold folder
(:func:`lakehouse.features.lookup_latency`, the endpoint's own code).

Each prints one JSON line with the rows it read.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path


def silver(data_dir: str, day: str) -> dict:
    from lakehouse.settings import Layout
    from transforms.silver import build_silver

    summary = build_silver(dt.date.fromisoformat(day), Layout(Path(data_dir)))
    events = summary["resources"]["events"]
    return {
        "rows": events["rows_read"],
        "good": events["rows_good"],
        "duplicates": events["duplicates"],
        "quarantined": events["quarantined"],
        "tables": summary["tables"],
    }


def gold(data_dir: str, day: str) -> dict:
    """``build_gold`` as a daily run calls it (``changed_dates=[day]``), or a full rebuild (``full``)."""
    from lakehouse.delta import locate, partition_files
    from lakehouse.settings import Layout
    from transforms.gold import build_gold

    layout = Layout(Path(data_dir))
    changed = None if day == "full" else [dt.date.fromisoformat(day)]
    summary = build_gold(layout, changed_dates=changed)
    files = partition_files(locate("silver/events_part", layout), "export_date")
    return {
        "mode": summary["mode"],
        "events": sum(f["num_records"] for found in files.values() for f in found),
        "marts": {m: info["rows"] for m, info in summary["marts"].items()},
        "data_tests": summary["data_tests"],
    }


def lookup(gold_dir: str, lookups: str, through: str) -> dict:
    from lakehouse.features import lookup_latency

    return lookup_latency(int(lookups), source=gold_dir, through=through)


def duckdb_copy(csv: str, out: str) -> dict:
    import duckdb

    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    src = csv.replace("'", "''")
    dst = out.replace("'", "''")
    rows = con.execute(
        f"copy (select * from read_csv('{src}')) to '{dst}' (format parquet)"  # noqa: S608
    ).fetchone()
    return {"rows": int(rows[0]) if rows else 0}


def pandas_copy(csv: str, out: str) -> dict:
    import pandas as pd

    frame = pd.read_csv(csv)
    frame.to_parquet(out, index=False)
    return {"rows": len(frame)}


def main(argv: list[str]) -> int:
    kind, *args = argv
    paths = {"silver": silver, "gold": gold, "duckdb": duckdb_copy, "pandas": pandas_copy, "lookup": lookup}
    print(json.dumps(paths[kind](*args)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
