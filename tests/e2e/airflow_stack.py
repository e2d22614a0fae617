"""An Airflow stack for the end-to-end tests: api-server, scheduler and dag-processor of one temporary home.

Airflow's components run as separate processes on a temporary SQLite home (LocalExecutor) with this repo's DAGs
and plugins; tests talk to it through the REST API v2 with a JWT from ``/auth/token``.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

AIRFLOW = str(Path(sys.executable).parent / "airflow")
DAG_ID = "appmetrica_lakehouse"


def wait_for(
    what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0, detail: Callable[[], str] = str
) -> Any:
    """The first truthy value of ``check()``, polled every ``interval`` s; after ``timeout`` s an AssertionError
    naming ``what`` (and ``detail()``, e.g. a log tail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n{detail()}")


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
        """SIGTERM each component; one still up after 5 s gets a second SIGTERM (the scheduler's LocalExecutor
        waits for its workers until signalled again), then SIGKILL after 30 s."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            for grace, sig in ((5, signal.SIGTERM), (30, signal.SIGKILL)):
                try:
                    proc.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, sig)
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
        return wait_for(what, check, timeout, interval, detail=lambda: self.log_tail("scheduler"))


def task_states(stack: AirflowStack, run_id: str) -> dict[str, str]:
    tis = stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
    return {f"{t['task_id']}[{t['map_index']}]" if t["map_index"] >= 0 else t["task_id"]: t["state"] for t in tis}


def task_log(stack: AirflowStack, run_id: str, task_id: str) -> str:
    """The text of a task's first-try log, as the UI's log view shows it."""
    response = stack.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1")
    assert response.ok, response.text
    return "\n".join(str(line.get("event", line)) if isinstance(line, dict) else str(line)
                     for line in response.json()["content"])  # fmt: skip
