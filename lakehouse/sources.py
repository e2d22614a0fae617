"""The steps of a declared source's run, shared by its generated DAG and the CLI.

A ``rest_api`` source runs: extract (each resource, the day's window) -> silver -> gold (its dbt
selector, when it declares one) -> report. A ``csv_drop`` source runs: pick up the inbox -> silver
for the days that got files -> gold -> report. Each step validates its inputs, works through the
layer packages and returns a JSON-able summary; heavy libraries are imported inside the steps so
importing this module (from a DAG file) stays cheap.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from ingest.sources.config import SourceConfigError, SourceSpec, get_source
from lakehouse.settings import ConfigError, Layout, parse_day

log = logging.getLogger(__name__)


def spec(name: str) -> SourceSpec:
    """The declared source ``name`` (ConfigError naming the declared ones when unknown)."""
    return get_source(name)


def resolve_day(source: str, param: str | None, data_interval_start: dt.datetime | None) -> dt.date:
    """The day a run processes: the ``date`` Param when given, else the source-local day its interval starts on."""
    if param not in (None, ""):
        return parse_day(param, what="Param 'date'")
    if data_interval_start is None:
        raise ConfigError("this run has no data interval and no 'date' Param: trigger it with a date (YYYY-MM-DD)")
    return data_interval_start.astimezone(spec(source).tz).date()


def extract(source: str, resource: str, day: str | dt.date) -> dict[str, Any]:
    """Pull one resource of a REST source for one day into bronze (credentials from its Airflow connection)."""
    from ingest.sources.rest_api import rest_api_source

    src = rest_api_source(spec(source))
    manifest = src.extract(resource, parse_day(day), layout=Layout.from_env())
    return {"resource": resource, "pages": manifest["pages_count"], "records": manifest["records"],
            "bytes": manifest["bytes"], "requests": manifest["requests"]}  # fmt: skip


def pick_up(source: str) -> dict[str, Any]:
    """Move the inbox of a CSV drop source into bronze (or quarantine); return what happened."""
    from ingest.sources.csv_drop import csv_drop_source

    return csv_drop_source(spec(source)).pick_up(layout=Layout.from_env())


def silver(source: str, day: str | dt.date) -> dict[str, Any]:
    """Build the day's silver partitions (and quarantine) of every resource of ``source``."""
    from transforms.sources import build_source_silver

    return build_source_silver(spec(source), parse_day(day), Layout.from_env())


def silver_days(source: str, days: list[str]) -> dict[str, Any]:
    """:func:`silver` for each of ``days`` (a CSV pick-up's new partitions); ``{}`` when there are none."""
    return {day: silver(source, day) for day in sorted(set(days))}


def gold(source: str, changed: bool = True) -> dict[str, Any]:
    """Build and test the source's dbt selector (its own DuckDB file); skipped without one or without changes."""
    src = spec(source)
    if src.dbt_selector is None:
        return {"skipped": "the source declares no dbt_selector"}
    if not changed:
        return {"skipped": "no new data"}
    from transforms.gold import build_gold

    return build_gold(Layout.from_env(), selector=src.dbt_selector, workspace=src.name)


def write_report(source: str, day: str | dt.date, run_id: str, steps: dict[str, Any]) -> dict[str, Any]:
    """Write the run summary to ``reports/source_<name>/date=D/summary.json`` and return it."""
    from lakehouse.fsutil import write_json

    src = spec(source)
    day = parse_day(day)
    report = {
        "dag_id": src.dag_id,
        "source": src.name,
        "kind": src.kind,
        "date": day.isoformat(),
        "run_id": run_id,
        "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **steps,
    }
    path = Layout.from_env().reports / src.dag_id / f"date={day.isoformat()}" / "summary.json"
    write_json(path, report)
    log.info("run summary written to %s", path)
    return report


def run(source: str, day: str | dt.date | None = None, run_id: str | None = None) -> dict[str, Any]:
    """Every step of ``source`` in this process, in order (the CLI's ``lakehouse sources run``).

    A REST source needs ``day``; a CSV drop source processes its inbox now (``day`` is ignored).
    """
    src = spec(source)
    run_id = run_id or f"cli__{os.getpid()}"
    if src.kind == "rest_api":
        if day is None:
            raise SourceConfigError(f"source {source!r} is a REST source: give the day to pull (--date YYYY-MM-DD)")
        day = parse_day(day)
        steps: dict[str, Any] = {"extract": [extract(source, r, day) for r in src.resources]}
        steps["silver"] = silver(source, day)
        steps["gold"] = gold(source)
        return write_report(source, day, run_id, steps)
    picked = pick_up(source)
    steps = {"pick_up": picked, "silver": silver_days(source, picked["days"])}
    steps["gold"] = gold(source, changed=bool(picked["days"]))
    return write_report(source, picked["date"], run_id, steps)
