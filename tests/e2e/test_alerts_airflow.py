"""Alerts through Airflow itself: `airflow dags test` of a probe DAG wired like appmetrica_lakehouse.

One task fails on both of its tries, one succeeds; the `lakehouse_alerts` connection (Telegram
flavour) points at a local receiver. Exactly one message must arrive, for the failed task after
its last try, naming the DAG, the task, the day and the log link; the success sends nothing
because success alerts are off; the bot token appears in no output and no log file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

AIRFLOW = str(Path(sys.executable).parent / "airflow")
TOKEN = "987654:probe-bot-token-must-not-leak"
PROBE = textwrap.dedent(
    """
    import datetime as dt

    from airflow.sdk import dag, task

    from lakehouse.alerts import LakehouseNotifier


    @dag(dag_id="alerts_probe", schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False,
         params={"date": None},
         default_args={"retries": 1, "retry_delay": dt.timedelta(seconds=0),
                       "on_failure_callback": LakehouseNotifier("failure")})
    def alerts_probe():
        @task(on_success_callback=LakehouseNotifier("success"))
        def fine():
            return 1

        @task
        def boom():
            raise RuntimeError("the probe failed on purpose")

        fine()
        boom()


    alerts_probe()
    """
)


def test_a_failing_task_sends_exactly_one_alert_and_no_secret_leaks(tmp_path, http_receiver):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "alerts_probe.py").write_text(PROBE)
    receiver = http_receiver
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LAKEHOUSE_"))}
    env |= {
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API__BASE_URL": "http://airflow.example:8080",
        "LAKEHOUSE_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "AIRFLOW_CONN_LAKEHOUSE_ALERTS": json.dumps(
            {"conn_type": "http", "host": receiver.url, "password": TOKEN,
             "extra": {"channel": "telegram", "chat_id": "-100200300"}}
        ),
    }  # fmt: skip
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    proc = subprocess.run([AIRFLOW, "dags", "test", "alerts_probe", "2026-11-01", "-c", '{"date": "2026-11-01"}'],
                          env=env, capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    output = proc.stdout + proc.stderr
    assert "the probe failed on purpose" in output, output[-4000:]

    assert len(receiver.requests) == 1, [r["json"] for r in receiver.requests]
    sent = receiver.requests[0]
    assert sent["path"] == f"/bot{TOKEN}/sendMessage" and sent["json"]["chat_id"] == "-100200300"
    text = sent["json"]["text"]
    assert text.startswith("FAILED: alerts_probe.boom (try 2 of 2)"), text
    assert "day: 2026-11-01" in text
    assert "log: http://airflow.example:8080/dags/alerts_probe/runs/" in text and "/tasks/boom" in text
    assert "error: RuntimeError: the probe failed on purpose" in text
    assert "success alerts are off" in output

    assert TOKEN not in output
    for path in (tmp_path / "airflow").rglob("*"):
        if path.is_file() and path.suffix != ".db":
            assert TOKEN.encode() not in path.read_bytes(), f"the bot token is in {path}"
