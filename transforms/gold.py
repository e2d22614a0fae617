"""Silver -> gold: run the dbt project, then commit its marts to the gold Delta tables.

``build_gold`` runs ``dbt build`` (models, data tests and unit tests in one DAG, so a failing
test stops the step) in a subprocess, with ``target/`` and ``logs/`` under
``$LAKEHOUSE_DATA_DIR/warehouse/dbt/`` so nothing is written into the repository. The DuckDB file
dbt builds into is only a cache. Only when every node of the invocation succeeded are the marts
(models whose config has ``meta.gold``) committed, each to its Delta Lake table ``gold/<mart>``
(:mod:`lakehouse.delta`: local disk or the lake on S3), rows ordered by its ``meta.gold.order_by``
key, one commit per mart. A mart with ``meta.gold.date_partition`` (``feature_date``) is partitioned
by that date: an incremental build replaces only the feature dates it recomputed, a full build the
whole table. Every commit records the build's feature-set version, run and mode (see
:data:`COMMIT_KEYS`). A failed build or test therefore commits nothing, and a rerun over the same
silver data leaves every table's contents identical (its log gains a version).

Importing this module is cheap: dbt runs in a child process, duckdb and pyarrow are imported
only when needed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakehouse.fsutil import write_json
from lakehouse.settings import REPO_ROOT, Layout, check_name, reporting_currency

log = logging.getLogger(__name__)

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DEFAULT_SELECTOR = "gold"
WAREHOUSE_FILE = "lakehouse.duckdb"  # must match dbt_project/profiles.yml
STATE_FILE = "gold_state.json"  # beside the warehouse: what the incremental tables were built from
STATE_VERSION = 2
WINDOW_DAYS = 28  # the longest feature window (device_features_daily)

# Commit metadata of every gold commit (the Delta log's commitInfo; lakehouse.delta.commit_metadata reads it)
COMMIT_KEYS = {
    "feature_set_version": "lakehouse.feature_set_version",  # the feature registry of the build ("" if none)
    "run_id": "lakehouse.run_id",  # the Airflow run (AIRFLOW_CTX_DAG_RUN_ID) or "manual"
    "build_id": "lakehouse.build_id",  # one id shared by every mart of one build
    "mode": "lakehouse.mode",  # full | incremental | selected
    "order_by": "lakehouse.order_by",  # the mart's meta.gold.order_by, comma-separated
}
_BATCH_ROWS = 256 * 1024

_FAILED = frozenset({"error", "fail", "runtime error"})
_RESULT_KINDS = {"test": "data_tests", "unit_test": "unit_tests"}


class GoldBuildError(RuntimeError):
    """``dbt build`` (or the publication of its marts) failed; the message names the failing nodes.

    ``retryable`` is False when every failing node is a data or unit test that failed (status ``fail``):
    the same silver gives the same verdict, so a retry only repeats the build. A model error may be
    passing (a lock, a full disk) and stays retryable.
    """

    def __init__(self, message: str, failures: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []
        self.retryable = not self.failures or any(str(f.get("status")) != "fail" for f in self.failures)


@dataclass(frozen=True)
class _Mart:
    name: str
    relation: str
    order_by: tuple[str, ...]
    date_partition: str | None = None  # meta.gold.date_partition: partitioned by it, replaced by date


def dbt_paths(layout: Layout, workspace: str | None = None) -> dict[str, Path]:
    """Where a dbt invocation for ``layout`` keeps its artifacts, logs and database.

    A ``workspace`` (a declared source's name) gets its own target, logs and DuckDB file, so its
    build never waits on, nor writes into, the AppMetrica build's database.
    """
    base = layout.warehouse / "dbt"
    database = layout.warehouse / WAREHOUSE_FILE
    if workspace is not None:
        base = base / check_name(workspace, what="dbt workspace")
        database = layout.warehouse / f"{workspace}.duckdb"
    return {
        "target": base / "target",
        "logs": base / "logs",
        "database": database,
        "docs": layout.root / "docs" / "dbt",
    }


def gold_table(mart: str, layout: Layout | None = None) -> Any:
    """The Delta table of ``mart`` (a :class:`lakehouse.delta.DeltaLocation`): ``gold/<mart>`` of the lake."""
    from lakehouse.delta import locate

    return locate(f"gold/{check_name(mart, what='gold mart')}", layout)


def _dbt_executable() -> list[str]:
    """The dbt of this interpreter's environment (its console script, or the same entry point via -c)."""
    script = Path(sys.executable).with_name("dbt")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "import sys; from dbt.cli.main import cli; sys.exit(cli())"]


def _dbt_command(args: list[str], *, target: Path, logs: Path) -> list[str]:
    return [
        *_dbt_executable(),
        "--no-use-colors",
        "--log-format",
        "text",
        *args,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(target),
        "--log-path",
        str(logs),
    ]


def _dbt_env(layout: Layout, database: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["LAKEHOUSE_DATA_DIR"] = str(layout.root)
    env["LAKEHOUSE_DBT_DATABASE"] = str(database or dbt_paths(layout)["database"])  # read by profiles.yml
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    env["LAKEHOUSE_REPORTING_CURRENCY"] = reporting_currency()  # checked here, read by the macro reporting_currency
    if database is None or database == dbt_paths(layout)["database"]:  # the AppMetrica build reads the lake
        from lakehouse.storage import dbt_lake_env

        env |= dbt_lake_env(layout, Path(env["LAKEHOUSE_DBT_DATABASE"]))  # {} on local disk
    return env


def _run_dbt(
    args: list[str], layout: Layout, *, target: Path, logs: Path, database: Path | None = None
) -> tuple[int, list[str]]:
    """Run dbt with ``args``, logging its output line by line; return its exit code and output."""
    for folder in (target, logs, layout.warehouse):
        folder.mkdir(parents=True, exist_ok=True)
    cmd = _dbt_command(args, target=target, logs=logs)
    log.info("running: dbt %s", " ".join(args))
    lines: list[str] = []
    with subprocess.Popen(
        cmd,
        cwd=DBT_PROJECT_DIR,
        env=_dbt_env(layout, database),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip()
            lines.append(line)
            log.info("dbt | %s", line)
        returncode = proc.wait()
    return returncode, lines


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _node_label(unique_id: str) -> str:
    """``test.appmetrica_lakehouse.unique_x.abc123`` -> ``test unique_x``."""
    parts = unique_id.split(".")
    kind = parts[0]
    name = parts[2] if len(parts) > 2 else unique_id
    if kind == "unit_test" and len(parts) > 3:
        name = f"{parts[2]}.{parts[3]}"
    return f"{kind} {name}"


def _failures(run_results: dict[str, Any]) -> list[dict[str, Any]]:
    failed = []
    for result in run_results.get("results", []):
        if str(result.get("status")) in _FAILED:
            failed.append(
                {
                    "unique_id": result.get("unique_id", "?"),
                    "status": result.get("status"),
                    "message": (result.get("message") or "").strip(),
                    "failures": result.get("failures"),
                }
            )
    return failed


def _raise_failed(returncode: int, run_results: dict[str, Any] | None, output: list[str]) -> None:
    failures = _failures(run_results) if run_results else []
    if failures:
        listed = "; ".join(f"{_node_label(f['unique_id'])} [{f['status']}]: {f['message']}" for f in failures)
        skipped = sum(1 for r in (run_results or {}).get("results", []) if r.get("status") == "skipped")
        raise GoldBuildError(
            f"dbt build failed ({len(failures)} failing node(s), {skipped} skipped; gold left unchanged): {listed}",
            failures,
        )
    tail = "\n".join(output[-20:])
    raise GoldBuildError(f"dbt build exited with status {returncode} and no failing node recorded:\n{tail}")


def _marts(manifest: dict[str, Any], run_results: dict[str, Any]) -> list[_Mart]:
    """The gold marts (models with ``meta.gold``) that this invocation built successfully."""
    built = {r["unique_id"] for r in run_results.get("results", []) if r.get("status") == "success"}
    marts = []
    for unique_id, node in manifest.get("nodes", {}).items():
        if node.get("resource_type") != "model" or unique_id not in built:
            continue
        meta = node.get("config", {}).get("meta") or {}
        if "gold" not in meta:
            continue
        order_by = tuple((meta["gold"] or {}).get("order_by") or ())
        if not order_by:
            raise GoldBuildError(f"model {node['name']} has meta.gold but no meta.gold.order_by key")
        partition = (meta["gold"] or {}).get("date_partition")
        if partition not in (None, "feature_date"):  # the dates an incremental build recomputes are feature dates
            raise GoldBuildError(
                f"model {node['name']}: meta.gold.date_partition must be feature_date, got {partition!r}"
            )
        marts.append(_Mart(check_name(node["name"], what="gold mart"), node["relation_name"], order_by, partition))
    return sorted(marts, key=lambda m: m.name)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _publish(
    layout: Layout,
    marts: list[_Mart],
    database: Path | None = None,
    *,
    dates: list[dt.date] | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Commit each mart of the DuckDB warehouse to its gold Delta table: one commit per mart.

    ``dates`` (an incremental build's feature dates): a mart with a date partition has only those
    dates replaced, provided its table then holds exactly the warehouse's rows (checked by count;
    otherwise, and for every other mart, the whole table is replaced).
    """
    import duckdb

    from lakehouse.delta import LakeCommitConflict, open_table, replace_dates, replace_table

    summary: dict[str, dict[str, Any]] = {}
    try:
        with duckdb.connect(str(database or dbt_paths(layout)["database"]), read_only=True) as con:
            for mart in marts:
                loc = gold_table(mart.name, layout)
                meta = {**(metadata or {}), COMMIT_KEYS["order_by"]: ",".join(mart.order_by)}
                order_by = ", ".join(_quote(c) for c in mart.order_by)
                select = f"select * from {mart.relation}"  # noqa: S608 - names from the manifest
                total = con.execute(f"select count(*) from {mart.relation}").fetchone()[0]  # noqa: S608
                version = None
                if dates is not None and mart.date_partition and (table := open_table(loc)) is not None:
                    column = mart.date_partition
                    if not dates:
                        version, how = table.version(), "unchanged (no feature date recomputed)"
                    elif _replaceable(con, table, mart, column, dates, total):
                        listed = ", ".join(f"date '{d.isoformat()}'" for d in dates)
                        rows = con.execute(f"{select} where {_quote(column)} in ({listed}) order by {order_by}")
                        version = replace_dates(loc, rows.fetch_record_batch(_BATCH_ROWS), column=column,
                                                dates=dates, metadata=meta)  # fmt: skip
                        how = f"{len(dates)} feature date(s) replaced"
                if version is None:
                    rows = con.execute(f"{select} order by {order_by}")
                    partition_by = [mart.date_partition] if mart.date_partition else None
                    version = replace_table(loc, rows.fetch_record_batch(_BATCH_ROWS), partition_by=partition_by,
                                            metadata=meta, new_schema=True)  # fmt: skip
                    how = "table replaced"
                summary[mart.name] = {"table": loc.uri, "version": version, "rows": total}
                log.info("committed %s: %d rows, %s -> %s version %s", mart.name, total, how, loc.uri, version)
        return summary
    except LakeCommitConflict as exc:
        raise GoldBuildError(f"{exc} (marts committed before it: {', '.join(summary) or 'none'})") from exc
    except Exception as exc:
        if isinstance(exc, GoldBuildError):
            raise
        raise GoldBuildError(
            f"committing the gold marts failed: {exc} (committed before it: {', '.join(summary) or 'none'})"
        ) from exc


def _replaceable(con: Any, table: Any, mart: _Mart, column: str, dates: list[dt.date], total: int) -> bool:
    """Whether replacing ``dates`` of the Delta ``table`` leaves it with the warehouse's ``total`` rows of ``mart``."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    if list(table.metadata().partition_columns) != [column]:
        log.info("gold %s: the table is not partitioned by %s; replacing it whole", mart.name, column)
        return False
    listed = ", ".join(f"date '{d.isoformat()}'" for d in dates)
    new = con.execute(f"select count(*) from {mart.relation} where {_quote(column)} in ({listed})").fetchone()[0]  # noqa: S608
    dataset = table.to_pyarrow_dataset()
    held = dataset.count_rows()
    old = dataset.count_rows(filter=ds.field(column).isin(pa.array(dates, pa.date32())))
    if held - old + new == total:
        return True
    log.warning("gold %s: the table holds %d rows, %d of them on the replaced dates, the warehouse %d (%d on them): "
                "the table and the warehouse differ elsewhere, so the whole table is replaced",
                mart.name, held, old, total, new)  # fmt: skip
    return False


def _feature_registry(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The feature registry of this build (see transforms/feature_registry.py), or None for a partial build.

    A gold column without complete registry metadata raises GoldBuildError. When some gold model
    was not compiled by this invocation (a ``--select`` build), the registry is left as it was.
    """
    from transforms.feature_registry import RegistryError, build_registry, gold_models

    uncompiled = [name for name, node in gold_models(manifest).items() if not node.get("compiled_code")]
    if uncompiled:
        log.warning("feature registry not updated: this build did not compile %s", ", ".join(uncompiled))
        return None
    try:
        return build_registry(manifest)
    except RegistryError as exc:
        raise GoldBuildError(f"{exc} (gold left unchanged)") from exc


def _feature_set_version(layout: Layout, registry: dict[str, Any] | None) -> str:
    """The feature-set version the marts of this build belong to: the new registry's, else the one in place."""
    if registry is not None:
        return str(registry["feature_set_version"])
    from transforms.feature_registry import RegistryError, read_registry, registry_paths

    try:
        return str(read_registry(registry_paths(layout.gold)["json"])["feature_set_version"])
    except RegistryError:
        return ""


@dataclass(frozen=True)
class _Plan:
    """What an incremental build recomputes (see dbt_project/macros/gold_incremental.sql)."""

    silver_dates: list[dt.date]
    event_dates: list[dt.date]
    feature_dates: list[dt.date]
    last_export_date: dt.date

    def dbt_vars(self) -> dict[str, Any]:
        return {
            "gold_silver_dates": [d.isoformat() for d in self.silver_dates],
            "gold_event_dates": [d.isoformat() for d in self.event_dates],
            "gold_feature_dates": [d.isoformat() for d in self.feature_dates],
            "gold_last_export_date": self.last_export_date.isoformat(),
        }


def _silver_partitions(layout: Layout) -> dict[dt.date, dict[str, Any]]:
    """Every export date of silver events_part with data files, and its fingerprint: the paths of its data files
    in the Delta table's current version (a rewritten day has new files; nothing is read but the table's log)."""
    from lakehouse.delta import locate, partition_files

    files = partition_files(locate("silver/events_part", layout), "export_date")
    return {day: {"fingerprint": [f["path"] for f in found]} for day, found in files.items()}


def _event_dates(layout: Layout, day: dt.date) -> dict[str, Any]:
    """The distinct event dates and the row count of one silver export date (one column read)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from lakehouse.delta import locate, read_table

    where = ds.field("export_date") == pa.scalar(day, pa.date32())
    column = read_table(locate("silver/events_part", layout), columns=["event_date"], filters=where)
    if column is None:
        return {"event_dates": [], "rows": 0}
    dates = {d for d in pc.unique(column.column("event_date")).to_pylist() if d is not None}
    return {"event_dates": sorted(d.isoformat() for d in dates), "rows": column.num_rows}


def _state_path(layout: Layout) -> Path:
    return layout.warehouse / STATE_FILE


def _read_state(layout: Layout) -> dict[str, Any] | None:
    state = _read_json(_state_path(layout))
    if not state or state.get("version") != STATE_VERSION or not dbt_paths(layout)["database"].exists():
        return None
    return state


def _new_state(
    layout: Layout, partitions: dict[dt.date, dict[str, Any]], old: dict[str, Any] | None, changed: set[dt.date]
) -> dict:
    """The state after a successful build: per silver partition its fingerprint, event dates and rows."""
    known = (old or {}).get("partitions", {})
    out = {}
    for day, part in partitions.items():
        key = day.isoformat()
        info = known.get(key) if day not in changed else None
        if info is None or info.get("fingerprint") != part["fingerprint"]:
            info = {"fingerprint": part["fingerprint"], **_event_dates(layout, day)}
        out[key] = info
    last = max((d for d, p in out.items() if p["rows"]), default=None)
    return {"version": STATE_VERSION, "partitions": out, "last_export_date": last,
            "reporting_currency": reporting_currency(), "feature_fit_window": _feature_fit_window()}  # fmt: skip


def _feature_fit_window() -> list[str]:
    """The transformers' training window as configured (env LAKEHOUSE_FEATURE_FIT_START / _END; "" = unset)."""
    return [os.environ.get(name, "").strip() for name in ("LAKEHOUSE_FEATURE_FIT_START", "LAKEHOUSE_FEATURE_FIT_END")]


def _gold_silver_tables() -> tuple[str, ...]:
    """The silver tables the gold marts read: events_part, and the revenue, ad revenue, crash and error tables."""
    from transforms.silver.schemas import TYPED_ROW_TABLES

    return ("events_part", *TYPED_ROW_TABLES)


def _plan(layout: Layout, changed_dates: Iterable[dt.date]) -> tuple[_Plan | None, str]:
    """Decide what a daily build recomputes, or why it must rebuild everything (plan None)."""
    state = _read_state(layout)
    if state is None:
        return None, "no state from an earlier build (or no warehouse)"
    built_in, currency = state.get("reporting_currency"), reporting_currency()
    if built_in != currency:  # every feature date's revenue changes
        return None, f"the reporting currency is {currency}, gold was built in {built_in}"
    fitted_on, window = state.get("feature_fit_window"), _feature_fit_window()
    if fitted_on != window:  # every fitted state, and every date encoded with one, changes
        return None, f"the feature training window is {window}, gold was fitted on {fitted_on}"
    partitions = _silver_partitions(layout)
    known = state["partitions"]
    changed = {d for d in changed_dates}
    for day, part in partitions.items():
        info = known.get(day.isoformat())
        if info is None or info["fingerprint"] != part["fingerprint"]:
            changed.add(day)
    removed = {dt.date.fromisoformat(k) for k in known} - set(partitions)
    changed |= removed

    fresh = {day: _event_dates(layout, day) for day in changed if day in partitions}
    event_dates: set[dt.date] = set()
    for day in changed:
        for source in (fresh.get(day), known.get(day.isoformat())):
            if source:
                event_dates.update(dt.date.fromisoformat(d) for d in source["event_dates"])
    if not event_dates:
        return None, "nothing to recompute found in the changed partitions"

    # every partition holding events of a date to recompute is read (late events live in later partitions)
    silver_dates = {day for day in fresh}
    for key, info in known.items():
        day = dt.date.fromisoformat(key)
        if (
            day in partitions
            and day not in changed
            and event_dates & {dt.date.fromisoformat(d) for d in info["event_dates"]}
        ):
            silver_dates.add(day)
    rows = {day: (fresh[day]["rows"] if day in fresh else known[day.isoformat()]["rows"]) for day in partitions}
    with_rows = [day for day, n in rows.items() if n]
    if not with_rows:
        return None, "silver events_part holds no rows"
    last = max(with_rows)
    old_last = dt.date.fromisoformat(state["last_export_date"]) if state.get("last_export_date") else None
    if old_last is not None and last < old_last:
        return None, f"the latest export date moved back from {old_last} to {last}"

    features: set[dt.date] = set()
    for day in event_dates:
        features.update(day + dt.timedelta(days=k) for k in range(WINDOW_DAYS) if day + dt.timedelta(days=k) <= last)
    start = (old_last + dt.timedelta(days=1)) if old_last else min(event_dates)
    features.update(start + dt.timedelta(days=k) for k in range((last - start).days + 1))
    # days_since_first_seen counts from a device's first event in all history: when a recomputed
    # date can move some device's first day, every later feature date of the spine is rebuilt
    earliest = min(event_dates)
    if earliest + dt.timedelta(days=WINDOW_DAYS) <= last and _first_seen_may_move(
        layout, sorted(event_dates), sorted(silver_dates)
    ):
        features.update(earliest + dt.timedelta(days=k) for k in range((last - earliest).days + 1))
    plan = _Plan(sorted(silver_dates), sorted(event_dates), sorted(features), last)
    return plan, f"{len(changed)} changed silver partition(s)"


def _first_seen_may_move(layout: Layout, event_dates: list[dt.date], silver_dates: list[dt.date]) -> bool:
    """Whether a known device's first event date may change when ``event_dates`` are recomputed.

    Compared with the last build's dim_devices: a device of the partitions being read whose
    earliest event there is before its known first day, or a known device whose first day is one
    of the recomputed dates (its events there may have gone). New devices do not count: all their
    feature rows are recomputed anyway. Any doubt (no dim_devices) answers True.
    """
    import duckdb

    from lakehouse.delta import duckdb_connect_lake, locate, scan_sql
    from transforms.silver.schemas import EVENTS_PART

    loc = locate("silver/events_part", layout)
    dates = ", ".join(f"date '{d.isoformat()}'" for d in event_dates)
    exports = ", ".join(f"date '{d.isoformat()}'" for d in silver_dates)
    sql = f"""
        with seen as (
            select appmetrica_device_id, min(event_date) as first_day
            from ({scan_sql(loc, EVENTS_PART.schema)})
            where export_date in ({exports}) and event_date in ({dates})
            group by appmetrica_device_id
        )
        select
            (select count(*) from seen join main.dim_devices as known using (appmetrica_device_id)
             where seen.first_day < known.first_seen_date)
            + (select count(*) from main.dim_devices where first_seen_date in ({dates}))
    """  # noqa: S608 - dates rendered from date objects, the table's uri quoted
    try:
        with duckdb.connect(str(dbt_paths(layout)["database"]), read_only=True) as con:
            duckdb_connect_lake(con, loc)
            moved = con.execute(sql).fetchone()
    except duckdb.Error as exc:
        log.info("gold: cannot tell whether first-seen dates move (%s); rebuilding every later feature date", exc)
        return True
    return bool(moved and moved[0])


def build_gold(
    layout: Layout | None = None,
    *,
    select: str | None = None,
    selector: str | None = None,
    workspace: str | None = None,
    changed_dates: Iterable[dt.date] | None = None,
) -> dict[str, Any]:
    """Run ``dbt build`` over the silver data of ``layout`` and publish the gold marts it built.

    ``select`` is a dbt ``--select`` expression; by default the ``gold`` selector runs (the marts,
    everything upstream of them and all their tests); ``selector`` names another selector of
    ``selectors.yml`` instead (a declared source's, e.g. ``source_vacancies``), and ``workspace``
    gives that build its own target folder and DuckDB file (see :func:`dbt_paths`). Only the marts
    built by this invocation are committed. Raises ``GoldBuildError`` naming the failing
    models/tests; no gold table changes then.

    ``changed_dates`` (the default ``gold`` selector only): None rebuilds everything from all of
    silver (``--full-refresh``). A daily run passes its day and any earlier export dates whose
    silver it rewrote; the build then recomputes only what those partitions touch (the event dates
    they hold, now or at the last build; the feature dates whose 28-day windows contain them; the
    devices seen on them), reading only the silver partitions that hold those event dates.
    Partitions whose files changed since the last build are added to ``changed_dates`` by
    themselves. Without a record of the last successful build (``warehouse/gold_state.json``,
    removed while a build runs, so a failed build leaves none) the build is a full one.

    Returns ``{"marts": {mart: {"table": uri, "version": int, "rows": int}}, "feature_set_version": str | None,
    "mode": "full" | "incremental" | "selected", "models": {status: n}, "data_tests": {status: n},
    "unit_tests": {status: n}, "elapsed_seconds": s}`` (statuses as dbt reports them: success,
    pass, warn). The feature registry of the build is checked before the marts are committed (its
    ``feature_set_version`` is recorded with each commit) and written to ``gold/_registry/`` after them.
    """
    layout = layout or Layout.from_env()
    paths = dbt_paths(layout, workspace)
    if select is None and selector is None:
        from lakehouse.delta import locate
        from lakehouse.storage import silver_present

        if not silver_present(layout):
            raise GoldBuildError(
                f"no silver events_part table in the lake ({locate('silver/events_part', layout).uri}): "
                "nothing to build gold from"
            )
        absent = [t for t in _gold_silver_tables() if not silver_present(layout, t)]
        if absent:  # a lake whose silver was built before these tables existed
            raise GoldBuildError(
                f"silver has no partition of {', '.join(absent)} (its days were built before those tables existed): "
                "rebuild the silver of at least one day (a daily run does) before building gold"
            )
    run_results_path = paths["target"] / "run_results.json"
    run_results_path.unlink(missing_ok=True)

    started = time.monotonic()
    plan: _Plan | None = None
    old_state = _read_state(layout)
    if select:
        args = ["build", "--select", select, "--indirect-selection", "buildable"]
    else:
        if selector is None:
            if changed_dates is not None:
                plan, why = _plan(layout, changed_dates)
            else:
                why = "changed_dates=None"
            if plan is None:
                log.info("gold: full rebuild (%s)", why)
                args = ["build", "--selector", DEFAULT_SELECTOR, "--full-refresh"]
            else:
                log.info("gold: incremental build (%s): reading silver %s, event dates %s, %d feature date(s)",
                         why, [d.isoformat() for d in plan.silver_dates], [d.isoformat() for d in plan.event_dates],
                         len(plan.feature_dates))  # fmt: skip
                args = ["build", "--selector", DEFAULT_SELECTOR, "--vars", json.dumps(plan.dbt_vars())]
        else:
            args = ["build", "--selector", selector]
    if workspace is None:
        # while the warehouse changes there is no valid record of it: a failure (or a --select build,
        # which leaves no record) means a full rebuild next time
        _state_path(layout).unlink(missing_ok=True)
    returncode, output = _run_dbt(args, layout, target=paths["target"], logs=paths["logs"], database=paths["database"])
    run_results = _read_json(run_results_path)
    if returncode != 0 or run_results is None or _failures(run_results):
        _raise_failed(returncode, run_results, output)
    assert run_results is not None

    manifest = _read_json(paths["target"] / "manifest.json") or {}
    # The registry describes the AppMetrica feature marts; a declared source's build leaves it alone.
    registry = _feature_registry(manifest) if selector is None else None  # checked before publishing
    mode = "selected" if select or selector else ("full" if plan is None else "incremental")
    metadata = {
        COMMIT_KEYS["feature_set_version"]: _feature_set_version(layout, registry) if selector is None else "",
        COMMIT_KEYS["run_id"]: os.environ.get("AIRFLOW_CTX_DAG_RUN_ID") or "manual",
        COMMIT_KEYS["build_id"]: uuid.uuid4().hex,
        COMMIT_KEYS["mode"]: mode,
    }
    dates = plan.feature_dates if plan is not None else None
    marts = _publish(layout, _marts(manifest, run_results), paths["database"], dates=dates, metadata=metadata)
    if registry is not None:
        from transforms.feature_registry import write_registry

        log.info("feature registry: %s", write_registry(layout.gold, registry))
    if not select and selector is None and workspace is None:
        changed = set(plan.silver_dates) if plan else set(_silver_partitions(layout))
        write_json(
            _state_path(layout), _new_state(layout, _silver_partitions(layout), old_state if plan else None, changed)
        )

    counts: dict[str, Counter[str]] = {"models": Counter(), "data_tests": Counter(), "unit_tests": Counter()}
    for result in run_results.get("results", []):
        kind = _RESULT_KINDS.get(result.get("unique_id", "").split(".", 1)[0], "models")
        counts[kind][str(result.get("status"))] += 1
    summary = {
        "marts": marts,
        "feature_set_version": registry["feature_set_version"] if registry else None,
        "mode": mode,
        **{kind: dict(sorted(c.items())) for kind, c in counts.items()},
        "elapsed_seconds": round(time.monotonic() - started, 1),
    }
    log.info("gold build done: %s", json.dumps(summary, sort_keys=True))
    return summary


def generate_docs(layout: Layout | None = None, target: Path | None = None) -> Path:
    """Run ``dbt docs generate`` into ``target`` (default ``$LAKEHOUSE_DATA_DIR/docs/dbt``) and return it.

    The catalog describes the tables of the last build (the DuckDB cache); the descriptions come
    from the project's YAML either way. ``static_index.html`` there is a single-file version.
    """
    layout = layout or Layout.from_env()
    paths = dbt_paths(layout)
    target = target or paths["docs"]
    returncode, output = _run_dbt(["docs", "generate", "--static"], layout, target=target, logs=paths["logs"])
    if returncode != 0 or not (target / "index.html").exists():
        tail = "\n".join(output[-20:])
        raise GoldBuildError(f"dbt docs generate exited with status {returncode}:\n{tail}")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the gold marts with dbt and commit them to the gold tables.")
    parser.add_argument("--select", help="dbt --select expression (default: the 'gold' selector)")
    parser.add_argument("--docs", action="store_true", help="generate the dbt docs instead of building")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.docs:
            print(generate_docs())
        else:
            print(json.dumps(build_gold(select=args.select), indent=2, sort_keys=True))
    except GoldBuildError as exc:
        print(f"gold build failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
