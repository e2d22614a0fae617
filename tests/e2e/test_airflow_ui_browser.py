"""The path a person takes, in a real browser: trigger a day in Airflow, watch it succeed, read the gold docs.

Airflow's API server, scheduler and DAG processor run as separate processes on a temporary
SQLite home (LocalExecutor), with this repo's DAGs and plugins, the demo Logs API server and a
local alert receiver. The run is triggered through the REST API v2 with a JWT from
``/auth/token``; after it succeeds the outputs are checked, then headless Chromium (signed in with
the same JWT as Airflow's ``_token`` cookie) opens the DAG's grid page, the trigger form, and the
dbt docs and GX Data Docs served by ``plugins/lakehouse_docs_plugin.py`` inside the Airflow UI.
Screenshots and page texts land in ``tests/artifacts/browser/`` (ignored by git; override with
``LAKEHOUSE_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
from chromium import Chromium

from ingest.appmetrica.demo.server import DemoLogsApiServer
from lakehouse.assets import GOLD_MART_NAMES, SILVER_TABLE_NAMES
from lakehouse.local_airflow import airflow_env

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAG_ID = "appmetrica_lakehouse"
DAY = "2026-11-01"
ARTIFACTS = Path(os.environ.get("LAKEHOUSE_TEST_ARTIFACTS", REPO / "tests" / "artifacts")) / "browser"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stack_env(tmp_path: Path, port: int, passwords: Path, data: Path) -> dict[str, str]:
    """The environment of an Airflow stack on a temporary SQLite home: this process's variables without any
    AIRFLOW*/LAKEHOUSE_* ones, plus the API on 127.0.0.1:port, LocalExecutor, simple auth from ``passwords``,
    and no scheduled runs (only the runs a test creates)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LAKEHOUSE_"))}
    env |= {
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "LAKEHOUSE_DATA_DIR": str(data),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(16),
        # Only the runs a test creates: no scheduled run of "yesterday" competing for max_active_runs.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
    }
    return env


class AirflowStack:
    """api-server, scheduler and dag-processor of one AIRFLOW_HOME, each in its own process group."""

    COMPONENTS = ("api-server", "scheduler", "dag-processor")

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.base = env["AIRFLOW__API__BASE_URL"]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.token = ""

    def start(self) -> None:
        subprocess.run([AIRFLOW, "db", "migrate"], env=self.env, check=True, capture_output=True, timeout=300)
        self.logs.mkdir(parents=True, exist_ok=True)
        for name in self.COMPONENTS:
            with open(self.logs / f"{name}.log", "wb") as out:
                self.procs[name] = subprocess.Popen([AIRFLOW, name], env=self.env, stdout=out,
                                                    stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)

    def log_tail(self, name: str, lines: int = 40) -> str:
        text = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def wait_until_up(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                assert proc.poll() is None, f"airflow {name} exited:\n{self.log_tail(name)}"
            try:
                if requests.get(f"{self.base}/api/v2/monitor/health", timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(1)
        raise AssertionError(f"the API server did not answer in {timeout} s:\n{self.log_tail('api-server')}")

    def login(self, username: str, password: str) -> str:
        response = requests.post(f"{self.base}/auth/token", json={"username": username, "password": password},
                                 timeout=30)  # fmt: skip
        assert response.status_code == 201, response.text
        self.token = response.json()["access_token"]
        return self.token

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.base}/api/v2{path}", headers=headers, timeout=30, **kwargs)

    def wait_for(self, what: str, check: Any, timeout: float, interval: float = 1.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n{self.log_tail('scheduler')}")


def task_states(stack: AirflowStack, run_id: str) -> dict[str, str]:
    tis = stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
    return {f"{t['task_id']}[{t['map_index']}]" if t["map_index"] >= 0 else t["task_id"]: t["state"] for t in tis}


def task_log(stack: AirflowStack, run_id: str, task_id: str) -> str:
    """The text of a task's first-try log, as the UI's log view shows it."""
    response = stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1")
    assert response.ok, response.text
    return "\n".join(str(line.get("event", line)) if isinstance(line, dict) else str(line)
                     for line in response.json()["content"])  # fmt: skip


def test_trigger_in_airflow_then_browse_the_dag_and_the_gold_docs(tmp_path, http_receiver):
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    port = free_port()
    password = secrets.token_urlsafe(12)
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"admin": password}))
    token = "tok-" + secrets.token_hex(12)
    data = tmp_path / "data"

    with DemoLogsApiServer(token=token, application_id="1234567", devices=400, anomaly_rate=0.004) as logs_api:
        base = stack_env(tmp_path, port, passwords, data)
        base |= {
            "AIRFLOW_CONN_APPMETRICA_DEFAULT": json.dumps(
                {"conn_type": "http", "host": logs_api.url, "password": token,
                 "extra": {"application_id": "1234567", "poll_interval_seconds": 0.1, "poll_timeout_seconds": 60,
                           "quota_wait_seconds": 0.5}}
            ),
            "AIRFLOW_CONN_LAKEHOUSE_ALERTS": json.dumps(
                {"conn_type": "http", "host": f"{http_receiver.url}/hook", "extra": {"notify_on_success": True}}
            ),
        }  # fmt: skip
        stack = AirflowStack(airflow_env(base), tmp_path / "logs")
        try:
            stack.start()
            stack.wait_until_up()
            jwt = stack.login("admin", password)
            stack.wait_for("the DAG to be parsed", lambda: stack.api("GET", f"/dags/{DAG_ID}").status_code == 200, 120)

            # The plugin is there, and only for signed-in users.
            assert requests.get(f"{stack.base}/lakehouse-docs/", timeout=30).status_code == 401
            assert stack.api("GET", "/plugins").ok
            views = {v["name"]: v for p in stack.api("GET", "/plugins").json()["plugins"] for v in p["external_views"]}
            assert views["dbt docs"]["href"] == "lakehouse-docs/dbt/" and views["dbt docs"]["destination"] == "nav"

            started = time.monotonic()
            response = stack.api("POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {"date": DAY}})
            assert response.status_code == 200, response.text
            run_id = response.json()["dag_run_id"]

            def finished() -> str | None:
                state = stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}").json()["state"]
                return state if state in ("success", "failed") else None

            state = stack.wait_for("the triggered run to finish", finished, 300, interval=2)
            run_seconds = time.monotonic() - started
            assert state == "success", f"run {run_id} {state}: {task_states(stack, run_id)}"
            check_outputs(stack, run_id, data, http_receiver)
            browse(stack, jwt, tmp_path / "chromium-profile")
            (ARTIFACTS / "timings.json").write_text(json.dumps({"run_seconds": round(run_seconds, 1)}))
        finally:
            stack.stop()
            for name in stack.COMPONENTS:
                shutil.copy(stack.logs / f"{name}.log", ARTIFACTS / f"airflow-{name}.log")
    for path in ARTIFACTS.rglob("*"):
        assert token.encode() not in path.read_bytes(), f"the AppMetrica token leaked into {path}"


def check_outputs(stack: AirflowStack, run_id: str, data: Path, receiver: Any) -> None:
    report = json.loads((data / "reports" / DAG_ID / f"date={DAY}" / "summary.json").read_text())
    assert report["run_id"] == run_id and all(n > 0 for n in report["bronze_rows"].values())
    con = duckdb.connect()
    for mart in GOLD_MART_NAMES:
        rows = con.execute("select count(*) from read_parquet(?, hive_partitioning=true)",
                           [f"{data}/gold/{mart}/**/*.parquet"]).fetchone()[0]  # fmt: skip
        assert rows == report["gold"]["marts"][mart]["rows"] > 0, mart
    assert report["published"]["objects"] >= len(GOLD_MART_NAMES)

    # dbt docs regenerated by this run describe the gold marts; GX Data Docs were written.
    docs = data / "docs" / "dbt"
    # The docs describe the whole dbt project: these marts and a declared source's (vacancies) too.
    assert report["docs"]["path"] == str(docs) and set(GOLD_MART_NAMES) <= set(report["docs"]["gold_marts"])
    manifest = json.loads((docs / "manifest.json").read_text())
    assert {f"model.appmetrica_lakehouse.{m}" for m in GOLD_MART_NAMES} <= set(manifest["nodes"])
    assert {p.name for p in docs.iterdir()} == {"catalog.json", "index.html", "manifest.json", "static_index.html"}
    assert (data / "docs" / "gx" / "index.html").is_file()

    # The run emitted an event for every silver and gold Asset.
    events = stack.api("GET", "/assets/events", params={"source_run_id": run_id, "limit": 100}).json()
    uris = {e["uri"] for e in events["asset_events"]}
    expected = {f"x-lakehouse://silver/{t}" for t in SILVER_TABLE_NAMES} | {
        f"x-lakehouse://gold/{m}" for m in GOLD_MART_NAMES
    }
    assert uris == expected

    # The task logs say what was produced, not just "done".
    log = task_log(stack, run_id, "report")
    assert "run summary" in log and "gold rows per mart" in log and "fct_device_daily" in log, log[-3000:]
    silver_log = task_log(stack, run_id, "build_silver")
    assert "events_part" in silver_log and str(report["silver_rows"]["events_part"]) in silver_log, silver_log[-3000:]
    gold_log = task_log(stack, run_id, "build_gold")
    assert str(report["gold"]["marts"]["fct_device_daily"]["rows"]) in gold_log and "fct_device_daily" in gold_log

    # Success alerts are on for this test: exactly one, for the run's last task.
    stack.wait_for("the success alert", lambda: receiver.requests, 20, interval=0.2)
    time.sleep(1)
    assert len(receiver.requests) == 1, [r["json"] for r in receiver.requests]
    alert = receiver.requests[0]["json"]
    assert alert["event"] == "success" and alert["dag_id"] == DAG_ID and alert["day"] == DAY
    assert alert["log_url"].startswith(f"{stack.base}/dags/{DAG_ID}/runs/") and "SUCCEEDED" in alert["text"]


def browse(stack: AirflowStack, jwt: str, profile: Path) -> None:
    with Chromium(profile) as browser:
        browser.set_cookie("_token", jwt, stack.base)

        # The DAG's grid: the DAG id and its tasks, not a login wall.
        browser.open(f"{stack.base}/dags/{DAG_ID}")
        text = browser.wait_for_text([DAG_ID, "build_gold", "dbt_docs", "report"], timeout=90)
        assert "/auth/login" not in browser.location() and "Sign in" not in text
        browser.screenshot(ARTIFACTS / "airflow-dag-grid.png")
        (ARTIFACTS / "airflow-dag-grid.txt").write_text(text)

        # The trigger form: the date Param as a described date picker.
        browser.evaluate("[...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Trigger').click()")
        browser.wait_for_text(["Trigger Dag", "Day to process", "YYYY-MM-DD"], timeout=30)
        assert browser.evaluate("document.querySelectorAll('input[type=date]').length") >= 1
        browser.screenshot(ARTIFACTS / "airflow-trigger-form.png")

        # The navigation: Plugins > Lakehouse lists both docs sites; "dbt docs" opens them inside the UI.
        browser.open(f"{stack.base}/dags/{DAG_ID}")
        browser.wait_for_text([DAG_ID, "build_gold"], timeout=60)
        click = "[...document.querySelectorAll('button, a, [role=menuitem]')].find(e => e.innerText.trim() === {!r})"
        browser.evaluate(click.format("Plugins") + ".click()")
        browser.wait_for_text(["Lakehouse"], timeout=30)
        browser.evaluate(click.format("Lakehouse") + ".click()")
        browser.wait_for_text(["dbt docs", "GX Data Docs"], timeout=30)
        browser.screenshot(ARTIFACTS / "airflow-plugins-menu.png")
        browser.evaluate(click.format("dbt docs") + ".click()")

        # The dbt docs inside the Airflow UI, on a gold mart's page.
        browser.wait_for_text(["auto-generated documentation for your dbt project"], timeout=60)
        browser.evaluate("document.querySelector('iframe').contentWindow.location.hash ="
                         " '#!/model/model.appmetrica_lakehouse.fct_device_daily'")  # fmt: skip
        text = browser.wait_for_text(["fct_device_daily", "events_count", "sessions_count", "Dags"], timeout=60)
        browser.screenshot(ARTIFACTS / "dbt-docs-in-airflow.png")
        (ARTIFACTS / "dbt-docs-in-airflow.txt").write_text(text)

        # The GX Data Docs of the quality gate, the same way. (Their tables are drawn by scripts GX loads
        # from a CDN, which this machine cannot reach: the site's own frame is what can be checked here.)
        browser.open(f"{stack.base}/plugin/gx-docs")
        browser.wait_for_text(["Data Docs | lakehouse_local", "Validation Results", "Dags"], timeout=60)
        browser.screenshot(ARTIFACTS / "gx-docs-in-airflow.png")
