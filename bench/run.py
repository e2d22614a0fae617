"""``make bench`` / ``make bench-large``: throughput, memory and build-time figures against the targets.

Every figure is measured on a child process from the outside (``bench.measure``: wall time, peak
RSS of the process tree sampled from the OS). The silver and gold figures run the code the DAG runs
(``build_silver``, ``build_gold``) through ``bench.paths``; nothing here has a faster path of its own.

1. Bronze -> silver at 1M and 10M rows (``--large``: also 50M) of a synthetic events export
   (``bench.datagen``), side by side on the same gzip CSV file with DuckDB ``read_csv`` -> Parquet
   and pandas ``read_csv`` -> ``to_parquet``: one warm-up run of each path, then the median of
   ``--runs`` runs (pandas once at 10M: it needs memory in proportion to the file; not at 50M).
   Row counts are checked: all three read the same rows, and silver's kept + duplicate +
   quarantined rows add up to them.
2. The daily gold build after 1 day of history (the first build) and after 30 days (the
   incremental build of day 30 on the warehouse of days 1-29), medians of ``--runs``.
3. DAG parse time as ``airflow dags report`` gives it, and the whole ``make demo``.

Results go to ``$LAKEHOUSE_BENCH_DIR/results.json`` and ``results.md`` (default ``.bench/``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import datagen
from bench.measure import Measured, python_cmd, run
from lakehouse.settings import REPO_ROOT

DAY = dt.date(2026, 11, 1)
GOLD_FIRST = dt.date(2026, 10, 2)
GOLD_DAYS = 30
GOLD_DEVICES = 10_000  # ~31k events a day
GIB = 1 << 30
MIB = 1 << 20


def bench_dir() -> Path:
    return Path(os.environ.get("LAKEHOUSE_BENCH_DIR", REPO_ROOT / ".bench")).resolve()


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import duckdb
    import pandas
    import psutil
    import pyarrow

    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / GIB, 1),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__,
        "pandas": pandas.__version__,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _say(text: str) -> None:
    print(f"[bench] {text}", flush=True)


def ensure_day(root: Path, rows: int) -> dict[str, Any]:
    """The bronze day of ``rows`` events under ``root``, generated once and reused (same bytes)."""
    meta = root / "bench-meta.json"
    if meta.exists():
        info = json.loads(meta.read_text())
        if info.get("rows") == rows and info.get("generator") == datagen.BASE_DEVICES:
            return info
    _say(f"generating a {rows:,}-row events export under {root} ...")
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    info = datagen.write_bronze_day(root, DAY, rows) | {"generator": datagen.BASE_DEVICES}
    _say(f"  {info['bytes'] / MIB:,.0f} MiB gzip ({info['raw_bytes'] / MIB:,.0f} MiB CSV) "
         f"in {time.perf_counter() - started:.0f} s")  # fmt: skip
    meta.write_text(json.dumps(info))
    return info


def _events_file(root: Path) -> Path:
    return root / "bronze" / "appmetrica" / "events" / f"date={DAY.isoformat()}" / "events.part-00000-of-00001.csv.gz"


def _one(kind: str, root: Path, scratch: Path) -> Measured:
    if kind == "silver":
        return run(python_cmd("bench.paths", "silver", str(root), DAY.isoformat()), cwd=str(REPO_ROOT))
    out = scratch / f"{kind}.parquet"
    try:
        return run(python_cmd("bench.paths", kind, str(_events_file(root)), str(out)), cwd=str(REPO_ROOT))
    finally:
        out.unlink(missing_ok=True)


def _summary(label: str, runs: list[Measured], rows: int) -> dict[str, Any]:
    seconds = statistics.median(r.seconds for r in runs)
    return {
        "path": label,
        "runs": len(runs),
        "seconds": round(seconds, 2),
        "seconds_all": [round(r.seconds, 2) for r in runs],
        "rows_per_s": round(rows / seconds),
        "peak_rss_mib": round(max(r.peak_rss for r in runs) / MIB),
        "peak_rss_mib_median": round(statistics.median(r.peak_rss for r in runs) / MIB),
        "result": runs[-1].result,
    }


def silver_section(rows: int, runs: int, *, pandas_runs: int, warmup: bool) -> dict[str, Any]:
    """Silver vs DuckDB vs pandas on one file of ``rows`` events."""
    root = bench_dir() / f"day-{rows}"
    info = ensure_day(root, rows)
    scratch = Path(tempfile.mkdtemp(prefix="bench-", dir=bench_dir()))
    kinds = ["silver", "duckdb"] + (["pandas"] if pandas_runs else [])
    measured: dict[str, list[Measured]] = {k: [] for k in kinds}
    try:
        if warmup:
            for kind in kinds:
                _say(f"{rows:,} rows: warm-up {kind}")
                _one(kind, root, scratch)
        else:  # at least bring the file into the page cache, as a warm-up run would
            _events_file(root).read_bytes()
        for i in range(runs):
            for kind in kinds:
                if kind == "pandas" and i >= pandas_runs:
                    continue
                m = _one(kind, root, scratch)
                _say(f"{rows:,} rows: {kind} run {i + 1}: {m.seconds:.1f} s, peak RSS {m.peak_rss / MIB:,.0f} MiB")
                measured[kind].append(m)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out = {k: _summary(k, v, rows) for k, v in measured.items()}
    silver = out["silver"]["result"]
    checks = {
        "duckdb_rows": out["duckdb"]["result"]["rows"],
        "pandas_rows": out["pandas"]["result"]["rows"] if "pandas" in out else None,
        "silver_rows_read": silver["rows"],
        "silver_kept_plus_duplicates_plus_quarantined": silver["good"] + silver["duplicates"] + silver["quarantined"],
        "generated_rows": info["rows"],
        "generated_duplicates": info["duplicates"],
        "silver_duplicates": silver["duplicates"],
    }
    counts = {checks["duckdb_rows"], checks["silver_rows_read"], checks["generated_rows"],
              checks["silver_kept_plus_duplicates_plus_quarantined"]}  # fmt: skip
    if checks["pandas_rows"] is not None:
        counts.add(checks["pandas_rows"])
    checks["rows_equal"] = len(counts) == 1 and checks["generated_duplicates"] == checks["silver_duplicates"]
    if not checks["rows_equal"]:
        raise SystemExit(f"row counts differ between the paths: {checks}")
    return {"rows": rows, "file_mib": round(info["bytes"] / MIB), "csv_mib": round(info["raw_bytes"] / MIB),
            "paths": out, "checks": checks}  # fmt: skip


def _gold_history() -> Path:
    """Silver for GOLD_DAYS generated days (the demo generator's population), built once and reused."""
    root = bench_dir() / "gold-history"
    marker = root / "bench-meta.json"
    meta = {"days": GOLD_DAYS, "devices": GOLD_DEVICES, "silver": "delta"}
    if marker.exists() and json.loads(marker.read_text()) == meta:
        return root
    shutil.rmtree(root, ignore_errors=True)
    _say(f"generating and building silver for {GOLD_DAYS} days ({GOLD_DEVICES:,} device slots) ...")
    for k in range(GOLD_DAYS):
        day = GOLD_FIRST + dt.timedelta(days=k)
        datagen.write_generated_day(root, day, GOLD_DEVICES)
        run(python_cmd("bench.paths", "silver", str(root), day.isoformat()), cwd=str(REPO_ROOT))
    marker.write_text(json.dumps(meta))
    return root


def _copy_silver(src: Path, dst: Path, days: list[dt.date], *, fresh: bool = True) -> None:
    """The silver of ``days`` from the lake at ``src`` into the lake at ``dst`` (emptied first when ``fresh``)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from lakehouse.delta import locate, read_table, replace_partition
    from lakehouse.settings import Layout
    from transforms.silver.schemas import SILVER_TABLES

    if fresh:
        shutil.rmtree(dst, ignore_errors=True)
    for table, spec in SILVER_TABLES.items():
        source, target = locate(f"silver/{table}", Layout(src)), locate(f"silver/{table}", Layout(dst))
        for day in days:
            rows = read_table(
                source, filters=ds.field("export_date") == pa.scalar(day, pa.date32()), schema=spec.schema
            )
            if rows is not None:
                replace_partition(target, rows, column="export_date", value=day)


def gold_section(runs: int) -> dict[str, Any]:
    """The daily gold build after 1 day of history vs after 30 days."""
    history = _gold_history()
    days = [GOLD_FIRST + dt.timedelta(days=k) for k in range(GOLD_DAYS)]
    work = Path(tempfile.mkdtemp(prefix="bench-gold-", dir=bench_dir()))
    try:
        one = work / "one-day"
        _copy_silver(history, one, days[:1])
        first: list[Measured] = []
        for i in range(runs + 1):  # the first build ever, from an empty warehouse; run 0 is the warm-up
            shutil.rmtree(one / "warehouse", ignore_errors=True)
            shutil.rmtree(one / "gold", ignore_errors=True)
            m = run(python_cmd("bench.paths", "gold", str(one), days[0].isoformat()), cwd=str(REPO_ROOT))
            _say(f"gold, day 1 of history: run {i}: {m.seconds:.1f} s ({m.result['mode']})")
            if i:
                first.append(m)

        month = work / "thirty-days"
        _copy_silver(history, month, days[:-1])
        run(python_cmd("bench.paths", "gold", str(month), days[-2].isoformat()), cwd=str(REPO_ROOT))
        snapshot = work / "after-day-29"
        for folder in ("warehouse", "gold"):
            shutil.copytree(month / folder, snapshot / folder)
        _copy_silver(history, month, days[-1:], fresh=False)
        thirtieth: list[Measured] = []
        for i in range(runs + 1):  # day 30's run on the warehouse of days 1-29; run 0 is the warm-up
            for folder in ("warehouse", "gold"):
                shutil.rmtree(month / folder, ignore_errors=True)
                shutil.copytree(snapshot / folder, month / folder)
            m = run(python_cmd("bench.paths", "gold", str(month), days[-1].isoformat()), cwd=str(REPO_ROOT))
            _say(f"gold, day 30 of history: run {i}: {m.seconds:.1f} s ({m.result['mode']})")
            if i:
                thirtieth.append(m)
        full = run(python_cmd("bench.paths", "gold", str(month), "full"), cwd=str(REPO_ROOT))
        _say(f"gold, full rebuild of 30 days: {full.seconds:.1f} s")
        lookup = feature_lookup_latency(month / "gold")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "events_per_day": round(thirtieth[-1].result["events"] / GOLD_DAYS),
        "day_1": _summary("gold day 1", first, 1) | {"mode": first[-1].result["mode"]},
        "day_30": _summary("gold day 30", thirtieth, 1) | {"mode": thirtieth[-1].result["mode"]},
        "full_rebuild_30_days_seconds": round(full.seconds, 2),
        "feature_lookup": lookup,
    }


def dag_parse_seconds() -> dict[str, Any]:
    """The DAG file's parse duration as ``airflow dags report`` gives it (a fresh SQLite AIRFLOW_HOME)."""
    home = Path(tempfile.mkdtemp(prefix="bench-airflow-", dir=bench_dir()))
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    })  # fmt: skip
    airflow = str(Path(sys.executable).with_name("airflow"))
    try:
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        durations = []
        for _ in range(3):
            out = subprocess.run([airflow, "dags", "report", "-o", "json"], env=env, check=True,
                                 capture_output=True, text=True).stdout  # fmt: skip
            report = json.loads(next(line for line in out.splitlines() if line.startswith("[{")))
            h, m, s = report[0]["duration"].split(":")
            durations.append(int(h) * 3600 + int(m) * 60 + float(s))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return {"seconds": round(statistics.median(durations), 3), "seconds_all": durations, "file": report[0]["file"]}


def demo_seconds() -> dict[str, Any]:
    """The whole ``make demo`` on a fresh AIRFLOW_HOME and data folder (venv already installed)."""
    work = Path(tempfile.mkdtemp(prefix="bench-demo-", dir=bench_dir()))
    env = dict(os.environ)
    env.pop("AIRFLOW_CONN_APPMETRICA_DEFAULT", None)
    env.update({"AIRFLOW_HOME": str(work / "airflow"), "LAKEHOUSE_DATA_DIR": str(work / "data")})
    try:
        m = run(["make", "-s", "demo"], env=env, cwd=str(REPO_ROOT))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"seconds": round(m.seconds, 1), "peak_rss_mib": round(m.peak_rss / MIB)}


def feature_lookup_latency(gold: Path, lookups: int = 2000) -> dict[str, Any]:
    """p50/p99 of the feature-lookup endpoint (``GET /lakehouse-features/{device_id}``) over ``gold``.

    :func:`lakehouse.features.lookup_latency` in a child process: ``lookups`` sequential requests
    through the endpoint's FastAPI app (routing, validation, JSON; 10 % unknown ids), after a
    warm-up lookup that loads the snapshot, and the same count straight against the store.
    """
    out: dict[str, Any] = {}
    for through in ("http", "store"):
        cmd = python_cmd("bench.paths", "lookup", str(gold), str(lookups), through)
        done = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=str(REPO_ROOT))
        result = json.loads(done.stdout.strip().splitlines()[-1])
        _say(f"feature lookup through {through}: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms "
             f"({result['lookups']} lookups over {result['devices']:,} devices)")  # fmt: skip
        out[through] = result
    return out | {"p50_ms": out["http"]["p50_ms"], "p99_ms": out["http"]["p99_ms"]}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured figure and whether it is met (a target whose section did not run is left out)."""
    out = []
    for size in results["silver"]:
        paths = size["paths"]
        ratio = paths["silver"]["rows_per_s"] / paths["duckdb"]["rows_per_s"]
        out.append({"target": f"silver throughput >= 0.5x DuckDB copy ({size['rows']:,} rows)",
                    "measured": f"{ratio:.2f}x", "met": ratio >= 0.5})  # fmt: skip
    by_rows = {s["rows"]: s["paths"]["silver"]["peak_rss_mib"] for s in results["silver"]}
    if 10_000_000 in by_rows:
        peak = by_rows[10_000_000]
        out.append({"target": "silver peak RSS <= 1 GiB at 10M rows", "measured": f"{peak:,} MiB",
                    "met": peak <= 1024})  # fmt: skip
        if 1_000_000 in by_rows:
            growth = peak / by_rows[1_000_000]
            out.append({"target": "silver peak RSS at 10M within 20 % of 1M", "measured": f"{growth:.2f}x",
                        "met": growth <= 1.2})  # fmt: skip
    large = next((s["paths"]["silver"] for s in results["silver"] if s["rows"] == 50_000_000), None)
    if large is not None:
        measured = f"{large['seconds']:,.0f} s, peak {large['peak_rss_mib']:,} MiB"
        out.append({"target": "a 50M-row day in <= 5 minutes", "measured": measured, "met": large["seconds"] <= 300})
    if results.get("gold"):
        g = results["gold"]
        ratio = g["day_30"]["seconds"] / g["day_1"]["seconds"]
        out.append({"target": "gold day-30 build <= 1.2x day-1 build", "measured": f"{ratio:.2f}x",
                    "met": ratio <= 1.2})  # fmt: skip
    if results.get("dag_parse"):
        s = results["dag_parse"]["seconds"]
        out.append({"target": "DAG parse < 0.5 s", "measured": f"{s:.3f} s", "met": s < 0.5})
    if results.get("make_bench_seconds"):  # the whole `make bench`: every section, the default sizes
        s = results["make_bench_seconds"]
        out.append({"target": "make bench <= 20 minutes", "measured": f"{s / 60:.1f} min", "met": s <= 1200})
    return out


def _ms(value: float) -> str:
    return f"{value:.2f} ms" if value >= 0.1 else f"{value * 1000:.1f} µs"


def markdown(results: dict[str, Any]) -> str:
    """The results as the tables of docs/performance.md."""
    m = results["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; Python {m['python']}, "
        f"DuckDB {m['duckdb']}, pyarrow {m['pyarrow']}, pandas {m['pandas']}; load average "
        f"{m['load_average_at_start']} at the start, {results['load_average_at_end']} at the end.",
        "",
        "| rows | path | median wall | rows/s | peak RSS | runs |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for size in results["silver"]:
        for p in size["paths"].values():
            lines.append(f"| {size['rows']:,} | {p['path']} | {p['seconds']:.1f} s | {p['rows_per_s']:,} | "
                         f"{p['peak_rss_mib']:,} MiB | {p['runs']} |")  # fmt: skip
    if results.get("gold"):
        g = results["gold"]
        lines += [
            "",
            "| gold build | median wall | peak RSS |",
            "|---|---:|---:|",
            f"| day 1 of history ({g['day_1']['mode']}) | {g['day_1']['seconds']:.1f} s | "
            f"{g['day_1']['peak_rss_mib']:,} MiB |",
            f"| day 30 of history ({g['day_30']['mode']}) | {g['day_30']['seconds']:.1f} s | "
            f"{g['day_30']['peak_rss_mib']:,} MiB |",
            f"| full rebuild of 30 days | {g['full_rebuild_30_days_seconds']:.1f} s | |",
        ]
    lines += ["", "| other | figure |", "|---|---:|"]
    if results.get("dag_parse"):
        lines.append(f"| DAG parse (`airflow dags report`) | {results['dag_parse']['seconds']:.3f} s |")
    if results.get("demo"):
        lines.append(f"| `make demo` (fresh AIRFLOW_HOME and data) | {results['demo']['seconds']:.0f} s |")
    lookup = (results.get("gold") or {}).get("feature_lookup")
    if lookup:
        for through, what in (("http", "the endpoint's app, in-process"), ("store", "the store alone")):
            r = lookup[through]
            lines.append(f"| feature lookup p50 / p99, {what} ({r['lookups']:,} lookups, {r['devices']:,} "
                         f"devices) | {_ms(r['p50_ms'])} / {_ms(r['p99_ms'])} |")  # fmt: skip
    lines += ["", "| target | measured | met |", "|---|---:|---|"]
    for t in results["targets"]:
        lines.append(f"| {t['target']} | {t['measured']} | {'met' if t['met'] else 'MISSED'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large", action="store_true", help="add the 50M-row day")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per path (after one warm-up)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["silver", "gold", "dag", "demo"])
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated row counts of the events day")
    args = parser.parse_args(argv)
    bench_dir().mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "silver": []}
    previous = bench_dir() / "results.json"
    if args.skip and previous.exists():  # a partial run updates the sections it measures
        kept = json.loads(previous.read_text())
        results = kept | {"machine": kept.get("machine", results["machine"])}
        results["silver"] = kept.get("silver", []) if "silver" in args.skip else []
        results["load_average_at_start_of_update"] = [round(x, 2) for x in os.getloadavg()]
    _say(f"machine: {results['machine']}")

    def save() -> None:  # after every section, so an interrupted run still leaves its figures
        results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        results["targets"] = targets(results)
        results["bench_seconds"] = round(time.perf_counter() - started)
        (bench_dir() / "results.json").write_text(json.dumps(results, indent=2))
        (bench_dir() / "results.md").write_text(markdown(results))

    if "silver" not in args.skip:
        for rows in (int(x) for x in args.sizes.split(",")):
            small = rows < 5_000_000  # at 10M: pandas once (~10 GiB), the file read as the warm-up
            results["silver"].append(
                silver_section(rows, args.runs, pandas_runs=args.runs if small else 1, warmup=small)
            )
            save()
    if "gold" not in args.skip:
        results["gold"] = gold_section(args.runs)
        save()
    if "dag" not in args.skip:
        results["dag_parse"] = dag_parse_seconds()
        save()
    if "demo" not in args.skip:
        results["demo"] = demo_seconds()
        save()
    if not args.skip and args.sizes == parser.get_default("sizes") and args.runs == parser.get_default("runs"):
        results["make_bench_seconds"] = round(time.perf_counter() - started)
    save()
    if args.large and "silver" not in args.skip:  # last: the longest; timed against its own 5-minute target
        results["silver"].append(silver_section(50_000_000, 1, pandas_runs=0, warmup=False))
        save()
    table = markdown(results)
    print()
    print(table)
    for t in results["targets"]:
        print(f"target: {t['target']}: {t['measured']} -> {'met' if t['met'] else 'MISSED'}")
    print(f"[bench] done in {results['bench_seconds']} s; results in {bench_dir()}/results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
