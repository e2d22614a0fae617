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
from lakehouse.settings import ConfigError, Layout, app_timezone, parse_day

log = logging.getLogger(__name__)

DAG_ID = "appmetrica_lakehouse"
APPMETRICA_CONN_ID = "appmetrica_default"
S3_CONN_ID = "lakehouse_s3"
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

    conn = BaseHook.get_connection(conn_id)
    return AppMetricaSettings.from_connection(
        conn.host, conn.password, conn.extra_dejson, schema=conn.schema, port=conn.port
    )


def extract(resource: str, day: str | dt.date, settings: Any | None = None) -> dict[str, Any]:
    """Export one resource for one day into bronze; returns its bronze manifest."""
    from ingest.appmetrica import extract_resource
    from ingest.appmetrica.resources import get_resource

    get_resource(resource)
    day = parse_day(day)
    if settings is None:
        from ingest.appmetrica.settings import AppMetricaSettings

        settings = AppMetricaSettings.from_env()
    manifest = extract_resource(resource, day, settings=settings, layout=Layout.from_env())
    log.info("bronze %s %s: %s rows, %s bytes in %d part(s)", resource, day, manifest["rows"], manifest["bytes"],
             len(manifest["parts"]))  # fmt: skip
    return {"resource": resource, "rows": manifest["rows"], "bytes": manifest["bytes"], "parts": len(manifest["parts"])}


def silver(day: str | dt.date) -> dict[str, Any]:
    """Build the day's silver tables and quarantine from bronze."""
    from transforms.silver import build_silver

    return build_silver(parse_day(day), Layout.from_env())


def quality_gate(day: str | dt.date) -> dict[str, Any]:
    """Run the Great Expectations suites on the day's silver tables; raises when any expectation fails."""
    from transforms.quality.gx_gate import run_gate

    result = run_gate(parse_day(day), Layout.from_env())
    log.info("quality gate %s passed for %d silver tables; Data Docs: %s", day, len(result["tables"]),
             result.get("data_docs"))  # fmt: skip
    return {
        "success": result["success"],
        "evaluated": {t: r["evaluated"] for t, r in result["tables"].items()},
        "data_docs": result.get("data_docs"),
    }


def gold() -> dict[str, Any]:
    """Build and test the gold marts with dbt (models and tests together)."""
    from transforms.gold import build_gold

    return build_gold(Layout.from_env())


def publish(day: str | dt.date, run_id: str) -> dict[str, Any]:
    """Publish gold to ``lakehouse_s3`` (or locally when that connection does not exist)."""
    from lakehouse.publish import publish_gold

    manifest = publish_gold(parse_day(day), layout=Layout.from_env(), run_id=run_id, conn_id=S3_CONN_ID)
    return {
        "target": manifest["target"],
        "objects": len(manifest["objects"]),
        "rows": {o["key"]: o["rows"] for o in manifest["objects"]},
    }


def write_report(day: str | dt.date, run_id: str, steps: dict[str, Any]) -> dict[str, Any]:
    """Write the run summary to ``reports/<dag>/date=D/summary.json`` and return it."""
    from lakehouse.fsutil import write_json

    day = parse_day(day)
    silver_summary = steps.get("silver") or {}
    report = {
        "dag_id": DAG_ID,
        "date": day.isoformat(),
        "run_id": run_id,
        "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "bronze_rows": {e["resource"]: e["rows"] for e in steps.get("extract", [])},
        "silver_rows": silver_summary.get("tables", {}),
        "quarantined_rows": silver_summary.get("quarantined", {}),
        "quarantined_by_reason": {
            r: s["quarantined_by_reason"] for r, s in silver_summary.get("resources", {}).items() if s["quarantined"]
        },
        "schema_drift": silver_summary.get("schema_drift", {}),
        "duplicates_removed": {r: s["duplicates"] for r, s in silver_summary.get("resources", {}).items()},
        "quality_gate": steps.get("quality", {}),
        "gold": steps.get("gold", {}),
        "published": steps.get("publish", {}),
        "docs": steps.get("docs") or {},
    }
    path = Layout.from_env().reports / DAG_ID / f"date={day.isoformat()}" / "summary.json"
    write_json(path, report)
    log.info("run summary written to %s", path)
    return report


def run_day(day: str | dt.date, run_id: str | None = None) -> dict[str, Any]:
    """Run every step for one day in this process, in order (the CLI's ``lakehouse run``)."""
    day = parse_day(day)
    run_id = run_id or f"cli__{os.getpid()}"
    steps: dict[str, Any] = {"extract": [extract(r, day) for r in RESOURCES]}
    steps["silver"] = silver(day)
    steps["quality"] = quality_gate(day)
    steps["gold"] = gold()
    steps["publish"] = publish(day, run_id)
    return write_report(day, run_id, steps)
