"""Airflow's own backfill: four days of appmetrica_lakehouse in flight at once under the real scheduler.

A backfill is created through REST API v2 (as `airflow backfill create` does) with max_active_runs 4
on api-server + scheduler + dag-processor (LocalExecutor, SQLite). Every run succeeds, each day is in
silver and gold, and no task log mentions a DuckDB or database lock error. That the outputs equal
running the days one by one is shown on the CLI's backfill in tests/integration/test_backfill.py.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from pathlib import Path

import duckdb
import pytest
from airflow_stack import DAG_ID, AirflowStack, free_port, stack_env, task_log
from pipeline_env import gold_sql

from ingest.appmetrica.demo.server import DemoLogsApiServer
from lakehouse.local_airflow import airflow_env

pytestmark = pytest.mark.e2e

DAYS = ["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"]
MOSCOW = dt.timezone(dt.timedelta(hours=3))  # the app's zone (no DST since 2014)


def test_airflow_backfill_runs_four_days_at_once(tmp_path: Path) -> None:
    port = free_port()
    password = secrets.token_urlsafe(12)
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"admin": password}))
    token = "tok-" + secrets.token_hex(12)
    data = tmp_path / "data"
    with DemoLogsApiServer(token=token, application_id="1234567", devices=40, max_queued=16) as logs_api:
        base = stack_env(tmp_path, port, passwords, data)
        base |= {
            "LAKEHOUSE_LOOKBACK_DAYS": "1",
            "AIRFLOW_CONN_APPMETRICA_DEFAULT": json.dumps(
                {"conn_type": "http", "host": logs_api.url, "password": token,
                 "extra": {"application_id": "1234567", "poll_interval_seconds": 0.1, "poll_timeout_seconds": 120,
                           "quota_wait_seconds": 0.5}}
            ),
        }  # fmt: skip
        stack = AirflowStack(airflow_env(base), tmp_path / "logs")
        try:
            stack.start()
            stack.wait_until_up()
            stack.login("admin", password)
            stack.wait_for("the DAG to be parsed", lambda: stack.api("GET", f"/dags/{DAG_ID}").status_code == 200, 120)
            assert stack.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False}).ok

            # Logical dates are the data-interval starts: local midnight of each day.
            first = dt.datetime.fromisoformat(DAYS[0]).replace(tzinfo=MOSCOW)
            last = dt.datetime.fromisoformat(DAYS[-1]).replace(tzinfo=MOSCOW)
            backfill = {
                "dag_id": DAG_ID, "from_date": first.isoformat(), "to_date": last.isoformat(),
                "max_active_runs": 4, "reprocess_behavior": "none", "run_backwards": False, "dag_run_conf": {},
            }  # fmt: skip

            def create_backfill() -> tuple[int, str] | None:
                # On SQLite the API answers 503 while the scheduler holds the database lock; a client retries
                response = stack.api("POST", "/backfills", json=backfill)
                return None if response.status_code == 503 else (response.status_code, response.text)

            status, text = stack.wait_for("the backfill to be accepted (not 503)", create_backfill, 120, interval=2)
            assert status == 200, text

            def runs() -> list[dict]:
                return stack.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 50}).json()["dag_runs"]

            def all_done() -> list[dict] | None:
                found = [r for r in runs() if r["run_type"] == "backfill"]
                done = len(found) == len(DAYS) and all(r["state"] in ("success", "failed") for r in found)
                return found if done else None

            def several_running() -> bool:
                return sum(r["state"] == "running" for r in runs() if r["run_type"] == "backfill") >= 2

            stack.wait_for("two or more backfill runs in flight", several_running, 300, interval=0.5)
            finished = stack.wait_for("the backfill to finish", all_done, 900, interval=3)
            assert {r["state"] for r in finished} == {"success"}, [(r["dag_run_id"], r["state"]) for r in finished]
            for run in finished:
                for task in ("build_gold", "publish"):
                    text = task_log(stack, run["dag_run_id"], task).lower()
                    assert "database is locked" not in text and "could not set lock" not in text
        finally:
            stack.stop()

    for day in DAYS:
        report = json.loads((data / "reports/appmetrica_lakehouse" / f"date={day}" / "summary.json").read_text())
        assert report["status"] == "success", day
    with duckdb.connect() as con:
        daily = gold_sql(con, data, "fct_device_daily")
        rows = con.execute(f"select distinct event_date from {daily}").fetchall()  # noqa: S608 - a tmp path
    dates = {r[0].isoformat() for r in rows}
    assert set(DAYS) <= dates
