"""The daily pipeline's steps, shared by the Airflow DAG and the CLI.

Each step takes plain values (ISO dates, names), validates them before touching anything, does
its work through the layer packages and returns a JSON-able summary. Heavy libraries are
imported inside the steps so that importing this module (from a DAG file) stays cheap.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from ingest.appmetrica.resources import RESOURCES as APPMETRICA_RESOURCES
from lakehouse.locks import day_lock_name, exclusive
from lakehouse.settings import ConfigError, Layout, app_timezone, check_connection_env, parse_day

log = logging.getLogger(__name__)

DAG_ID = "appmetrica_lakehouse"
APPMETRICA_CONN_ID = "appmetrica_default"
S3_CONN_ID = "lakehouse_s3"
BI_CONN_ID = "lakehouse_bi"
LOOKBACK_ENV = "LAKEHOUSE_LOOKBACK_DAYS"
DEFAULT_LOOKBACK_DAYS = 3
MAX_LOOKBACK_DAYS = 30
ROW_FLOOR_ENV = "LAKEHOUSE_ROW_FLOOR"
ROW_FLOOR_CHOICES = ("run_day", "all", "none")
# The exported resources, in the order the contract lists them (ingest owns the list).
RESOURCES = tuple(APPMETRICA_RESOURCES)


def resolve_day(param: str | None, data_interval_start: dt.datetime | None) -> dt.date:
    """The day a run processes: the ``date`` Param when given, else the local day its data interval starts on.

    A scheduled run fires at local midnight after its interval [D 00:00, D+1 00:00) ends, so it
    processes D, the day that just ended.
    """
    if param not in (None, ""):
        return parse_day(param, what="Param 'date'")
    if data_interval_start is None:
        raise ConfigError("this run has no data interval and no 'date' Param: trigger it with a date (YYYY-MM-DD)")
    return data_interval_start.astimezone(app_timezone()).date()


def appmetrica_settings_from_airflow(conn_id: str = APPMETRICA_CONN_ID) -> Any:
    """Build client settings from the Airflow connection (env ``AIRFLOW_CONN_*`` or the metadata DB)."""
    from airflow.sdk import BaseHook

    from ingest.appmetrica.settings import AppMetricaSettings

    check_connection_env(conn_id)
    conn = BaseHook.get_connection(conn_id)
    return AppMetricaSettings.from_connection(
        conn.host, conn.password, conn.extra_dejson, schema=conn.schema, port=conn.port
    )


def lookback_days() -> int:
    """Earlier days each run exports again for late-arriving data (``LAKEHOUSE_LOOKBACK_DAYS``, default 3)."""
    raw = os.environ.get(LOOKBACK_ENV, "").strip()
    if not raw:
        return DEFAULT_LOOKBACK_DAYS
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_LOOKBACK_DAYS:
        raise ConfigError(f"{LOOKBACK_ENV} must be a whole number of days from 0 to {MAX_LOOKBACK_DAYS}, got {raw!r}")
    return int(raw)


def row_floor_days() -> str:
    """Which checked days the suites' row-count floors fail (``LAKEHOUSE_ROW_FLOOR``): ``run_day`` (default: the
    run's own day; an empty lookback day is reported, not failed), ``all`` or ``none`` (empty days only reported)."""
    raw = os.environ.get(ROW_FLOOR_ENV, "").strip() or ROW_FLOOR_CHOICES[0]
    if raw not in ROW_FLOOR_CHOICES:
        raise ConfigError(f"{ROW_FLOOR_ENV} must be one of {', '.join(ROW_FLOOR_CHOICES)}, got {raw!r}")
    return raw


def window(day: str | dt.date, lookback: int | None = None) -> list[dt.date]:
    """The days a run for ``day`` exports: the lookback days (oldest first), then ``day``."""
    day = parse_day(day)
    n = lookback_days() if lookback is None else lookback
    return [day - dt.timedelta(days=k) for k in range(n, -1, -1)]


def _lake(layout: Layout) -> Any:
    """The lake of ``LAKEHOUSE_STORAGE_URL``: local disk (syncing is a no-op) or S3 (see lakehouse/storage.py)."""
    from lakehouse.storage import open_lake

    return open_lake(layout, S3_CONN_ID)


def _rel(layout: Layout, path: Any) -> str:
    return path.relative_to(layout.root).as_posix()


def _part_digests(layout: Layout, resource: str, day: dt.date) -> list[str] | None:
    """The sha256 of each part of the bronze partition now in place (None when there is none)."""
    import json

    path = layout.bronze(resource, day) / "_manifest.json"
    if not path.exists():
        return None
    return [p.get("sha256", "") for p in json.loads(path.read_text()).get("parts", [])]


def extract(resource: str, day: str | dt.date, settings: Any | None = None) -> dict[str, Any]:
    """Export one resource into bronze for ``day`` and, for dated resources, the lookback days before it.

    A lookback day counts as ``changed`` when its export's bytes differ from the bronze already
    there (or there was none); only changed days are rebuilt downstream. Resources exported
    without a date window (profiles) are exported for ``day``, and for a lookback day only when it
    has no bronze yet (silver needs every resource of a day).
    """
    from ingest.appmetrica import extract_resource
    from ingest.appmetrica.client import get_resource_checked

    res = get_resource_checked(resource)
    day = parse_day(day)
    if settings is None:
        from ingest.appmetrica.settings import AppMetricaSettings

        settings = AppMetricaSettings.from_env()
    layout = Layout.from_env()
    lake = _lake(layout)
    days: dict[str, dict[str, Any]] = {}
    for when in window(day):
        lake.hydrate(_rel(layout, layout.bronze(res.name, when)))
        before = _part_digests(layout, res.name, when)
        if when != day and not res.takes_dates and before is not None:
            continue
        with exclusive(day_lock_name(when), layout):
            before = _part_digests(layout, res.name, when)
            manifest = extract_resource(res.name, when, settings=settings, layout=layout)
            lake.commit(_rel(layout, layout.bronze(res.name, when)))
        changed = before != [p["sha256"] for p in manifest["parts"]]
        days[when.isoformat()] = {"rows": manifest["rows"], "bytes": manifest["bytes"],
                                  "parts": len(manifest["parts"]), "changed": changed}  # fmt: skip
        log.info("bronze %s %s: %s rows, %s bytes in %d part(s)%s", res.name, when, manifest["rows"],
                 manifest["bytes"], len(manifest["parts"]), "" if changed else " (unchanged)")  # fmt: skip
    today = days[day.isoformat()]
    return {"resource": res.name, "rows": today["rows"], "bytes": today["bytes"], "parts": today["parts"],
            "days": days}  # fmt: skip


# Commit metadata of a silver day: the sha256 of each bronze part it was built from (JSON) and the run that built it.
BUILT_FROM_KEY = "lakehouse.bronze_digests"
RUN_KEY = "lakehouse.run_id"


def _bronze_digests(layout: Layout, day: dt.date) -> dict[str, list[str] | None]:
    return {r: _part_digests(layout, r, day) for r in RESOURCES}


def silver_built_from(layout: Layout, day: dt.date) -> dict[str, Any] | None:
    """The bronze digests the silver of ``day`` was last built from: the metadata of the newest commit of that
    export date to ``silver/events_part`` (committed last of a day's tables), or None when there is none."""
    import json

    from lakehouse.delta import latest_commit, locate
    from transforms.silver.job import COMMIT_DATE_KEY

    commit = latest_commit(locate("silver/events_part", layout), {COMMIT_DATE_KEY: day.isoformat()})
    if commit is None or BUILT_FROM_KEY not in commit:
        return None
    return json.loads(commit[BUILT_FROM_KEY])


def days_to_rebuild(day: str | dt.date, extracted: list[dict[str, Any]] | None) -> list[dt.date]:
    """``day`` itself, plus each lookback day whose bronze differs from the bronze its silver was built from
    (a changed export, a missing silver, or a run killed between the two).

    The bronze and the silver tables' commit metadata decide, not ``extracted`` (the extract results, which the DAG
    passes so that silver waits for them): a run killed after a lookback export but before its silver commit
    leaves bronze newer than silver, and the rerun, which finds the same bytes again, must still rebuild.
    """
    day = parse_day(day)
    layout = Layout.from_env()
    lake = _lake(layout)
    wanted = {day}
    for when in window(day)[:-1]:
        if lake.is_s3:  # this worker's scratch copy may be stale or empty: the store decides
            for resource in RESOURCES:
                lake.hydrate(_rel(layout, layout.bronze(resource, when)))
        digests = _bronze_digests(layout, when)
        if any(d is None for d in digests.values()):
            continue
        if silver_built_from(layout, when) != digests:
            wanted.add(when)
    return sorted(wanted)


def silver(
    day: str | dt.date, extracted: list[dict[str, Any]] | None = None, run_id: str | None = None
) -> dict[str, Any]:
    """Build silver and quarantine for ``day`` and every lookback day whose export changed.

    Each day's commits to the silver and quarantine tables record the bronze digests it was built from and
    ``run_id`` (default: the Airflow run's id from the task's environment). Returns the run day's summary, plus
    ``rebuilt`` (ISO days built, oldest first) and ``lookback`` (the summary of each rebuilt earlier day).
    """
    import json

    from transforms.silver import build_silver

    day = parse_day(day)
    run_id = run_id or os.environ.get("AIRFLOW_CTX_DAG_RUN_ID") or f"pid__{os.getpid()}"
    layout = Layout.from_env()
    lake = _lake(layout)
    rebuilt = days_to_rebuild(day, extracted)
    lookback: dict[str, Any] = {}
    for when in rebuilt:
        # not for the commits (a concurrent writer of the same day loses its commit race and is retried): so that
        # a run reads a lookback day's bronze after another run's extract of it, and rebuilds it only if needed
        with exclusive(day_lock_name(when), layout):
            for resource in RESOURCES:
                lake.hydrate(_rel(layout, layout.bronze(resource, when)))
            digests = _bronze_digests(layout, when)
            metadata = {BUILT_FROM_KEY: json.dumps(digests, sort_keys=True), RUN_KEY: run_id}
            summary = build_silver(when, layout, metadata=metadata)
        if when != day:
            lookback[when.isoformat()] = {"tables": summary["tables"], "quarantined": summary["quarantined"]}
            log.info("silver %s rebuilt: its export changed since it was last built (late data)", when)
    summary["rebuilt"] = [d.isoformat() for d in rebuilt]
    summary["lookback"] = lookback
    return summary


def quality_gate(day: str | dt.date, days: list[str] | None = None) -> dict[str, Any]:
    """Run the Great Expectations suites on the silver of ``day`` and of ``days`` (rebuilt lookback days).

    Raises when any expectation fails on any of them. A table with a row-count floor but no row on a
    day the floor does not apply to (see :func:`row_floor_days`) is an empty export: listed in ``empty``
    ({day: [tables]}), logged and sent to the alerts channel when there is one, not a failure.
    """
    from transforms.quality.gx_gate import run_gate

    day = parse_day(day)
    checked = sorted({day, *(parse_day(d) for d in days or [])})
    floor = row_floor_days()
    result: dict[str, Any] = {}
    empty: dict[str, list[str]] = {}
    for when in checked:
        enforce = floor == "all" or (floor == "run_day" and when == day)
        with exclusive("gx_docs"):  # one Data Docs site for every date
            result = run_gate(when, Layout.from_env(), with_row_floor=enforce)
        log.info("quality gate %s passed for %d silver tables; Data Docs: %s", when, len(result["tables"]),
                 result.get("data_docs"))  # fmt: skip
        if result["empty"]:
            empty[when.isoformat()] = result["empty"]
            log.warning("empty export for %s: no rows in %s (%s=%s: reported, not failed)", when,
                        ", ".join(result["empty"]), ROW_FLOOR_ENV, floor)  # fmt: skip
    if empty:
        from lakehouse.alerts import alert_empty_days

        alert_empty_days(DAG_ID, day.isoformat(), empty)
    return {
        "success": result["success"],
        "days": [d.isoformat() for d in checked],
        "evaluated": {t: r["evaluated"] for t, r in result["tables"].items()},
        "data_docs": result.get("data_docs"),
        "row_floor": floor,
        "empty": empty,
    }


def gold(
    days: list[str] | None = None, *, full_refresh: bool = False, drift_day: str | dt.date | None = None
) -> dict[str, Any]:
    """Build and test the gold marts with dbt (models and tests together).

    ``days`` are the export dates whose silver this run rebuilt (the quality gate's ``days``); the
    build recomputes only what they touch (see :func:`transforms.gold.build_gold`), and silver
    partitions changed since the last build some other way are found by themselves.
    ``full_refresh`` rebuilds every mart from all of silver. With ``drift_day`` (the run's day) the
    built ``feature_stats_daily`` of that date is checked against the drift thresholds (see
    :func:`feature_drift`); the thresholds are validated before the build.
    """
    from transforms.gold import build_gold

    thresholds = None
    if drift_day is not None:
        from lakehouse.features.drift import DriftThresholds

        thresholds = DriftThresholds.from_env()  # a bad setting fails before the build, not after it
    layout = Layout.from_env()
    lake = _lake(layout)
    # On S3 every build is a full one: the incremental state (the DuckDB warehouse and gold_state.json)
    # lives on one worker, while silver lives in the lake and the next build may run on any worker.
    changed = None if full_refresh or lake.is_s3 else [parse_day(d, what="changed silver date") for d in days or []]
    with exclusive("gold"):  # one warehouse and one dbt target for every date
        summary = build_gold(layout, changed_dates=changed)  # the marts are committed to the lake's Delta tables
        if lake.is_s3 and summary.get("feature_set_version"):  # the feature registry is a folder of files
            lake.commit(_rel(layout, layout.gold / "_registry"))
        if drift_day is not None:  # the marts this build published, before another build replaces them
            summary["feature_drift"] = feature_drift(drift_day, layout, thresholds)
    return summary


def feature_drift(day: str | dt.date, layout: Layout | None = None, thresholds: Any = None) -> dict[str, Any]:
    """Check the day's ``feature_stats_daily`` rows of the gold just built; alert on each feature past a threshold.

    Drift is reported (alerts channel and log), not failed. Returns ``{"date", "thresholds", "features": n,
    "breaches": ["<feature> on <date>: psi 0.41 > 0.2", ...]}``.
    """
    from lakehouse.features.drift import breach_lines, drift_report
    from lakehouse.features.store import FeatureSource

    layout = layout or Layout.from_env()
    day = parse_day(day)
    report = drift_report(day, FeatureSource(gold_dir=layout.gold, lake=True), thresholds)
    lines = breach_lines(report)
    if not report["features"]:
        log.info("feature drift: feature_stats_daily has no rows for %s (no device had a feature row)", day)
    if lines:
        from lakehouse.alerts import alert_feature_drift

        log.warning("feature drift on %s (reported, not failed):\n%s", day, "\n".join(lines))
        alert_feature_drift(DAG_ID, day.isoformat(), lines)
    else:
        log.info("feature drift: %d feature(s) of %s within the thresholds %s", len(report["features"]), day,
                 report["thresholds"])  # fmt: skip
    return {"date": report["date"], "thresholds": report["thresholds"], "features": len(report["features"]),
            "breaches": lines}  # fmt: skip


def publish(day: str | dt.date, run_id: str) -> dict[str, Any]:
    """Publish gold to ``lakehouse_s3`` (or locally when that connection does not exist)."""
    from lakehouse.publish import publish_gold

    layout = Layout.from_env()
    with exclusive("publish"):  # latest.json and stale-object removal span every date
        _hydrate_registry(layout)
        manifest = publish_gold(parse_day(day), layout=layout, run_id=run_id, conn_id=S3_CONN_ID)
    return {
        "target": manifest["target"],
        "objects": len(manifest["objects"]),
        "rows": {o["key"]: o["rows"] for o in manifest["objects"]},
    }


def _hydrate_registry(layout: Layout) -> None:
    """On a lake in S3, bring the committed feature registry into this worker's copy (the marts are read in place)."""
    lake = _lake(layout)
    if lake.is_s3:
        lake.hydrate(_rel(layout, layout.gold / "_registry"))


def publish_bi(day: str | dt.date, run_id: str) -> dict[str, Any]:
    """Publish the gold marts' changed partitions to PostgreSQL through ``lakehouse_bi`` (skipped without it)."""
    from lakehouse.publish_bi import publish_bi as publish_gold_bi

    layout = Layout.from_env()
    with exclusive("publish_bi"):  # the bookkeeping table spans every date
        _hydrate_registry(layout)
        return publish_gold_bi(parse_day(day), layout=layout, run_id=run_id, conn_id=BI_CONN_ID)


def run_dir(day: str | dt.date, layout: Layout | None = None) -> Any:
    """The folder of one day's run records: ``reports/<dag>/date=D/``."""
    layout = layout or Layout.from_env()
    return layout.reports / DAG_ID / f"date={parse_day(day).isoformat()}"


def record_failure(day: str | dt.date, step: str, exc: BaseException) -> None:
    """Keep why ``step`` failed for the run summary (the message carries no secret: errors never hold one)."""
    from lakehouse.fsutil import write_json

    details = getattr(exc, "result", None) or getattr(exc, "failures", None)
    record = {"step": step, "error": f"{type(exc).__name__}: {exc}",
              "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}  # fmt: skip
    if details:
        record["details"] = details
    path = run_dir(day) / "failures" / f"{step}.json"
    write_json(path, record)
    layout = Layout.from_env()
    try:
        _lake(layout).push_file(_rel(layout, path))  # the report task may run on another worker
    except Exception as push_exc:  # the step's own error is the one to raise
        log.warning("could not store the failure record of %s in the lake: %s", step, push_exc)


def clear_failure(day: str | dt.date, step: str) -> None:
    """Forget an earlier failure of ``step`` once it succeeded (a retry or a rerun)."""
    path = run_dir(day) / "failures" / f"{step}.json"
    path.unlink(missing_ok=True)
    layout = Layout.from_env()
    lake = _lake(layout)
    if lake.is_s3:
        lake.remove_file(_rel(layout, path))


def write_report(day: str | dt.date, run_id: str, steps: dict[str, Any]) -> dict[str, Any]:
    """Write the run summary to ``reports/<dag>/date=D/summary.json`` and return it.

    ``steps`` maps each step to its result; a step that failed or never ran is missing or None.
    The summary's ``status`` is ``success`` only when every step produced its result; otherwise
    ``failed_step`` names the first step without one and ``failures`` holds the recorded errors.
    """
    import json

    from lakehouse.fsutil import write_json

    day = parse_day(day)
    folder = run_dir(day)
    layout = Layout.from_env()
    lake = _lake(layout)
    lake.pull_folder(_rel(layout, folder / "failures"))
    extracted = [e for e in (steps.get("extract") or []) if e]
    silver_summary = steps.get("silver") or {}
    failures: dict[str, Any] = {}
    for path in sorted((folder / "failures").glob("*.json")):
        record = json.loads(path.read_text())
        failures[record.get("step", path.stem)] = {k: v for k, v in record.items() if k != "step"}
    done = {
        "extract": bool(steps.get("extract")) and len(extracted) == len(steps["extract"]),
        **{step: steps.get(step) is not None for step in ("silver", "quality", "gold", "publish", "publish_bi")},
    }
    failed_step = next((step for step, ok in done.items() if not ok), None)
    report = {
        "dag_id": DAG_ID,
        "date": day.isoformat(),
        "run_id": run_id,
        "status": "success" if failed_step is None else "failed",
        "failed_step": failed_step,
        "failures": failures,
        "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "bronze_rows": {e["resource"]: e["rows"] for e in extracted},
        "silver_rows": silver_summary.get("tables", {}),
        "silver_rebuilt": silver_summary.get("rebuilt", []),
        "lookback": silver_summary.get("lookback", {}),
        "quarantined_rows": silver_summary.get("quarantined", {}),
        "quarantined_by_reason": {
            r: s["quarantined_by_reason"] for r, s in silver_summary.get("resources", {}).items() if s["quarantined"]
        },
        "schema_drift": silver_summary.get("schema_drift", {}),
        "type_mismatches": silver_summary.get("type_mismatches", {}),
        "duplicates_removed": {r: s["duplicates"] for r, s in silver_summary.get("resources", {}).items()},
        "empty_days": (steps.get("quality") or {}).get("empty", {}),
        "quality_gate": steps.get("quality") or {},
        "gold": steps.get("gold") or {},
        "published": steps.get("publish") or {},
        "published_bi": steps.get("publish_bi") or {},
        "docs": steps.get("docs") or {},
    }
    pages = _write_report_pages(report, folder, layout, lake)
    path = folder / "summary.json"
    write_json(path, report)
    lake.push_file(_rel(layout, path))
    for page in pages:
        lake.push_file(_rel(layout, page))
    for step_file in (folder / "failures").glob("*.json"):
        step_file.unlink()  # consumed: the summary holds them now
        if lake.is_s3:
            lake.remove_file(_rel(layout, step_file))
    log.info("run summary (%s) written to %s:\n%s", report["status"], path, json.dumps(report, indent=2))
    return report


def _write_report_pages(report: dict[str, Any], folder: Any, layout: Layout, lake: Any) -> list[Any]:
    """The run's HTML report page (``page`` in ``report``); a page that cannot be drawn never fails the run."""
    from lakehouse.run_report import write_pages

    try:
        pages = write_pages(report, folder, layout, lake)
    except Exception as exc:
        log.warning("the run report page of %s could not be written", report["date"], exc_info=True)
        report["page_error"] = f"{type(exc).__name__}: {exc}"
        return []
    report["page"] = str(pages[0])
    return pages


def run_day(day: str | dt.date, run_id: str | None = None) -> dict[str, Any]:
    """Run every step for one day in this process, in order (the CLI's ``lakehouse run``).

    When a step fails, the summary is still written (``status: failed``) and the error is raised.
    """
    day = parse_day(day)
    run_id = run_id or f"cli__{os.getpid()}"
    steps: dict[str, Any] = {}
    plan = [
        ("extract", lambda: [extract(r, day) for r in RESOURCES]),
        ("silver", lambda: silver(day, steps["extract"], run_id)),
        ("quality", lambda: quality_gate(day, steps["silver"]["rebuilt"])),
        ("gold", lambda: gold(steps["quality"]["days"], drift_day=day)),
        ("publish", lambda: publish(day, run_id)),
        ("publish_bi", lambda: publish_bi(day, run_id)),
    ]
    for step, call in plan:
        try:
            steps[step] = call()
        except Exception as exc:
            record_failure(day, step, exc)
            write_report(day, run_id, steps)
            raise
        clear_failure(day, step)
    return write_report(day, run_id, steps)


def date_range(first: str | dt.date, last: str | dt.date, *, max_days: int = 366) -> list[dt.date]:
    """Every day from ``first`` to ``last`` inclusive; a reversed or too long range is refused, naming it."""
    start, end = parse_day(first, what="--from"), parse_day(last, what="--to")
    if end < start:
        raise ConfigError(f"backfill range is reversed: --from {start} is after --to {end}")
    days = (end - start).days + 1
    if days > max_days:
        raise ConfigError(f"backfill range {start}..{end} has {days} days, more than {max_days}; split it")
    return [start + dt.timedelta(days=i) for i in range(days)]


def _run_day_in_child(day: str) -> dict[str, Any]:
    import contextlib
    import sys

    try:
        with contextlib.redirect_stdout(sys.stderr):  # the parent's stdout carries the results alone
            summary = run_day(day, run_id=f"backfill__{day}")
        return {"date": day, "status": summary["status"]}
    except Exception as exc:  # reported by the parent, with the summary the failed run wrote
        return {"date": day, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}


def backfill(first: str | dt.date, last: str | dt.date, parallel: int = 1) -> list[dict[str, Any]]:
    """Run every day of a range, ``parallel`` days at a time, each in its own process (the CLI's backfill).

    Shared state (lookback days another date is writing, the warehouse, the Data Docs site, the
    publish prefix) is serialised by :mod:`lakehouse.locks`, so the outputs equal running the days
    one by one. Returns one ``{"date", "status"[, "error"]}`` per day, in date order.
    """
    import concurrent.futures
    import multiprocessing

    days = [d.isoformat() for d in date_range(first, last)]
    if not 1 <= parallel <= 16:
        raise ConfigError(f"--parallel must be between 1 and 16, got {parallel}")
    if parallel == 1:
        return [_run_day_in_child(d) for d in days]
    context = multiprocessing.get_context("spawn")  # no inherited locks, connections or threads
    with concurrent.futures.ProcessPoolExecutor(max_workers=parallel, mp_context=context) as pool:
        results = list(pool.map(_run_day_in_child, days))
    for result in results:
        log.info("backfill %s: %s%s", result["date"], result["status"],
                 f" ({result['error']})" if "error" in result else "")  # fmt: skip
    return results
