"""A newcomer's first hour, as the README tells it: `make demo`, every command and Python snippet of README.md and
docs/*.md run as written against the demo's lake, then `make airflow` in headless Chromium: sign in with the
printed password, trigger a day with the date form, see the run succeed, open the dbt docs and the GX Data Docs.

Everything runs in a folder laid out like a fresh clone (the repo's files linked in, its own empty ``data/`` and
``.airflow/``), with ``.venv/bin`` on ``PATH`` and ``HOME`` pointing at an empty folder. Fenced ``bash`` and
``python`` blocks run in page order (README first); a block marked ``norun: <reason>`` is skipped, and the reason
must be given. Screenshots and page texts land in ``tests/artifacts/first-hour/`` (override the parent folder with
``LAKEHOUSE_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from airflow_stack import free_port, wait_for
from chromium import Chromium
from pipeline_env import gold_sql

from lakehouse.pipeline import RESOURCES

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("LAKEHOUSE_TEST_ARTIFACTS", REPO / "tests" / "artifacts")) / "first-hour"
PAGES = ["README.md", *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md"))]
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>bash|python)(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
DAY = "2026-11-01"
TRIGGERED_DAY = "2026-11-02"
# How many blocks may be marked norun, over all pages: the exceptions stay few.
MAX_NORUN = 9


@dataclass(frozen=True)
class Snippet:
    page: str
    line: int
    lang: str
    info: str
    code: str

    @property
    def norun(self) -> str | None:
        """The reason given after ``norun:``, or None for a block that runs."""
        match = re.match(r"\s*norun(?::\s*(.*))?$", self.info)
        if not match:
            return None
        return (match.group(1) or "").strip()

    def __str__(self) -> str:
        return f"{self.page}:{self.line} ({self.lang})"


def snippets(page: str) -> list[Snippet]:
    text = (REPO / page).read_text()
    found = []
    for m in FENCE.finditer(text):
        indent = len(m.group("indent"))
        code = "\n".join(line[indent:] for line in m.group("body").splitlines())
        found.append(Snippet(page, text[: m.start()].count("\n") + 1, m.group("lang"), m.group("info"), code))
    return found


ALL = [s for page in PAGES for s in snippets(page)]


@dataclass
class Clone:
    """A folder laid out like a fresh clone, and the environment a newcomer's shell has in it."""

    root: Path
    env: dict[str, str]

    def run(self, snippet: Snippet, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        if snippet.lang == "bash":
            cmd = ["bash", "-euo", "pipefail", "-c", snippet.code]
        else:
            cmd = [str(REPO / ".venv/bin/python"), "-c", snippet.code]
        proc = subprocess.Popen(cmd, cwd=self.root, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)  # fmt: skip
        try:
            out, _ = proc.communicate(timeout=timeout)
        finally:
            _kill_tree(proc.pid)
        return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


def _kill_tree(pid: int) -> None:
    """Stop a process group and everything it started (servers a snippet left in the background)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    for child in children:
        if child.is_running():
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=20)
    for child in alive:
        child.kill()


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Clone:
    # The clone links the repo's .venv: bring it up to date here, so make in the clone never reinstalls it
    # through the link (scripts would then name the clone's path).
    subprocess.run(["make", "-s", "-C", str(REPO), "venv"], check=True, capture_output=True, timeout=900)
    root = tmp_path_factory.mktemp("clone")
    for entry in REPO.iterdir():
        if entry.name not in {"data", ".airflow", ".git", "tests", "logs"} and not entry.name.endswith(".duckdb"):
            (root / entry.name).symlink_to(entry)
    (root / "data").mkdir()
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LAKEHOUSE_", "AWS_", "DEMO_"))}
    env |= {
        "HOME": str(home),
        "PATH": f"{REPO / '.venv/bin'}{os.pathsep}{env.get('PATH', '')}",
        # What make and the lakehouse command default to in a clone (the package itself lives in the repo).
        "AIRFLOW_HOME": str(root / ".airflow"),
        "LAKEHOUSE_DATA_DIR": str(root / "data"),
    }
    return Clone(root, env)


@pytest.fixture(scope="module")
def demo(clone: Clone) -> str:
    """README step 1, `make demo`, as written: its whole output."""
    first = next(s for s in ALL if s.norun is None)
    assert (first.page, first.code.strip()) == ("README.md", "make demo"), "the README starts with make demo"
    done = clone.run(first)
    assert done.returncode == 0, done.stdout[-6000:]
    return done.stdout


def test_make_demo_prints_a_short_summary(demo: str, clone: Clone) -> None:
    lines = demo.splitlines()
    assert len(lines) <= 45, demo  # the summary's 40 lines at most, and make's and the server's few
    log = re.search(r"Airflow's output: (\S+)", demo)
    assert log and Path(log.group(1)).is_file() and "dags test" not in demo
    assert Path(log.group(1)).stat().st_size > 10_000, "Airflow's task logs went to the log file"
    for needle in ("bronze rows:", "silver rows:", "quarantined rows:", "gold rows:", "Published:", "dbt docs:",
                   "GX Data Docs:", "Try next:", "make airflow"):  # fmt: skip
        assert needle in demo, needle
    assert not (Path(clone.env["HOME"]) / "airflow").exists()


def test_the_exceptions_are_few_and_say_why() -> None:
    skipped = [s for s in ALL if s.norun is not None]
    assert all(s.norun for s in skipped), [str(s) for s in skipped if not s.norun]
    assert len(skipped) <= MAX_NORUN, [f"{s}: {s.norun}" for s in skipped]
    assert len(ALL) - len(skipped) >= 7


@pytest.mark.parametrize("page", PAGES)
def test_every_snippet_runs_as_written(page: str, demo: str, clone: Clone) -> None:
    for snippet in snippets(page):
        if snippet.norun is not None or snippet.code.strip() == "make demo":
            continue
        done = clone.run(snippet)
        assert done.returncode == 0, f"{snippet} failed:\n{snippet.code}\n---\n{done.stdout[-5000:]}"
        if snippet.lang == "python":
            assert "NaN" not in done.stdout and "None" not in done.stdout, (
                f"{snippet} printed empty values:\n{done.stdout}"
            )
    assert not (Path(clone.env["HOME"]) / "airflow").exists(), "a command created ~/airflow"


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def test_the_quick_start_in_the_browser(demo: str, clone: Clone, http_receiver: Any) -> None:
    """README step 3: `make airflow PORT=...`, sign in with the printed password, trigger a day with the form; the
    run succeeds, says what it made (task logs, Asset events, one success alert), the docs open styled and the run
    report shows its plots."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    port = free_port()
    base = f"http://localhost:{port}"
    log = ARTIFACTS / "make-airflow.log"
    with open(log, "wb") as out:
        alerts = {"conn_type": "http", "host": f"{http_receiver.url}/hook", "extra": {"notify_on_success": True}}
        env = clone.env | {"AIRFLOW_CONN_LAKEHOUSE_ALERTS": json.dumps(alerts)}
        proc = subprocess.Popen(["make", "airflow", f"PORT={port}"], cwd=clone.root, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        printed = wait_for("the sign-in line", lambda: re.search(r"login: admin / (\S+)", log.read_text()), 120)
        password = printed.group(1)
        assert f"Airflow UI: {base}" in log.read_text()
        wait_for("the API server", lambda: proc.poll() is None and _answers(f"{base}/api/v2/monitor/health"), 300, 2)
        jwt = requests.post(f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=30)
        assert jwt.status_code == 201, jwt.text
        headers = {"Authorization": f"Bearer {jwt.json()['access_token']}"}

        def api(path: str, **params: object) -> dict:
            answer = requests.get(f"{base}/api/v2{path}", headers=headers, params=params, timeout=30)
            assert answer.ok, answer.text
            return answer.json()

        # The docs plugin is there, and only for signed-in users.
        assert requests.get(f"{base}/lakehouse-docs/", timeout=30).status_code == 401
        views = {v["name"]: v for p in api("/plugins")["plugins"] for v in p["external_views"]}
        assert views["dbt docs"]["href"] == "lakehouse-docs/dbt/" and views["dbt docs"]["destination"] == "nav"
        dags = wait_for("every DAG parsed", lambda: (d := api("/dags")["dags"]) and len(d) >= 3 and d, 180, 2)
        # Calm: a while after start nothing ran by itself; every DAG is unpaused or shown paused, none failed.
        time.sleep(20)
        runs = api("/dags/~/dagRuns", limit=100)["dag_runs"]
        assert [r for r in runs if r["run_type"] == "scheduled"] == [], "a scheduled run started by itself"
        assert [r for r in runs if r["state"] == "failed"] == []
        assert {r["run_type"] for r in runs} <= {"manual"}, "only the runs of make demo and the docs' commands"
        assert all(isinstance(d["is_paused"], bool) for d in dags)

        with Chromium(ARTIFACTS.parent / "first-hour-chromium") as browser:
            browser.open(base)
            browser.wait_for_text(["Sign"], timeout=90)
            browser.screenshot(ARTIFACTS / "1-sign-in.png")
            browser.fill("input[name=username], input[type=text]", "admin")
            browser.fill("input[type=password]", password)
            browser.evaluate("document.querySelector('input[type=password]').form.requestSubmit()")
            wait_for("the signed-in UI", lambda: "/auth/login" not in browser.location(), 60)

            browser.open(f"{base}/dags/appmetrica_lakehouse")
            browser.wait_for_text(["appmetrica_lakehouse", "build_gold"], timeout=90)
            browser.screenshot(ARTIFACTS / "2-dag.png")
            browser.click_text("Trigger")
            browser.wait_for_text(["Day to process"], timeout=60)
            browser.fill("input[type=date]", TRIGGERED_DAY)
            browser.screenshot(ARTIFACTS / "3-trigger-form.png")
            browser.click_text("Trigger")

            def triggered() -> dict | None:
                found = [r for r in api("/dags/appmetrica_lakehouse/dagRuns", limit=50)["dag_runs"]
                         if (r.get("conf") or {}).get("date") == TRIGGERED_DAY]  # fmt: skip
                return found[0] if found and found[0]["state"] in ("success", "failed") else None

            run = wait_for(f"the triggered run of {TRIGGERED_DAY}", triggered, 900, 3)
            run_id = run["dag_run_id"]
            tis = api(f"/dags/appmetrica_lakehouse/dagRuns/{run_id}/taskInstances")["task_instances"]
            assert run["state"] == "success", [(t["task_id"], t["map_index"], t["state"]) for t in tis]
            labels = {t["rendered_map_index"] for t in tis if t["task_id"] == "extract"}
            assert labels == set(RESOURCES), labels
            check_outputs(api, run_id, Path(clone.env["LAKEHOUSE_DATA_DIR"]), http_receiver, base)
            browser.open(f"{base}/dags/appmetrica_lakehouse/runs/{run_id}")
            browser.wait_for_text(["build_gold", "events"], timeout=60)
            browser.screenshot(ARTIFACTS / "4-run-succeeded.png")

            browser.open(f"{base}/plugin/dbt-docs")
            browser.wait_for_text(["auto-generated documentation for your dbt project"], timeout=90)
            browser.screenshot(ARTIFACTS / "5-dbt-docs.png")

            browser.open(f"{base}/plugin/gx-docs")
            browser.wait_for_text(["Validation Results"], timeout=90)
            styled = """(() => { const d = document.querySelector('iframe').contentDocument;
              return [...d.styleSheets].filter(s => (s.href || '').includes('/vendor/') && s.cssRules.length > 50)
                .length; })()"""
            wait_for("the GX Data Docs' stylesheets", lambda: (browser.evaluate(styled) or 0) >= 3, 60)
            assert browser.evaluate("typeof document.querySelector('iframe').contentWindow.jQuery") == "function"
            browser.screenshot(ARTIFACTS / "6-gx-docs.png")

            browser.open(f"{base}/plugin/run-report")  # the newest run's report: the day just triggered
            browser.wait_for_text([f"Run report {TRIGGERED_DAY}"], timeout=90)
            plots = f"""(() => {{ const d = document.querySelector('iframe').contentDocument;
              return d && d.body.innerText.includes('Run report {TRIGGERED_DAY}')
                ? [...d.querySelectorAll('svg.plot')].filter(p => p.getBoundingClientRect().width > 100).length
                : 0; }})()"""
            wait_for("the run report's plots", lambda: (browser.evaluate(plots) or 0) >= 3, 60)
            browser.screenshot(ARTIFACTS / "7-run-report.png")
    finally:
        _kill_tree(proc.pid)


def check_outputs(api: Callable[..., Any], run_id: str, data: Path, receiver: Any, base: str) -> None:
    """What the triggered run made: its summary and gold, the dbt docs of that gold, its Asset events, task logs
    that say what was produced, and exactly one success alert."""
    import duckdb

    from lakehouse.assets import GOLD_MART_NAMES, SILVER_TABLE_NAMES

    report = json.loads((data / f"reports/appmetrica_lakehouse/date={TRIGGERED_DAY}/summary.json").read_text())
    assert report["status"] == "success" and report["run_id"] == run_id
    assert all(n > 0 for n in report["bronze_rows"].values())
    with duckdb.connect() as con:
        for mart in GOLD_MART_NAMES:
            rows = con.execute(f"select count(*) from {gold_sql(con, data, mart)}").fetchone()[0]  # noqa: S608
            assert rows == report["gold"]["marts"][mart]["rows"] > 0, mart
    docs = data / "docs" / "dbt"
    assert report["docs"]["path"] == str(docs) and set(GOLD_MART_NAMES) <= set(report["docs"]["gold_marts"])
    manifest = json.loads((docs / "manifest.json").read_text())
    assert {f"model.appmetrica_lakehouse.{m}" for m in GOLD_MART_NAMES} <= set(manifest["nodes"])

    events = api("/assets/events", source_run_id=run_id, limit=100)["asset_events"]
    expected = {f"x-lakehouse://silver/{t}" for t in SILVER_TABLE_NAMES} | {
        f"x-lakehouse://gold/{m}" for m in GOLD_MART_NAMES
    }
    assert {e["uri"] for e in events} == expected

    def log(task: str) -> str:
        content = api(f"/dags/appmetrica_lakehouse/dagRuns/{run_id}/taskInstances/{task}/logs/1")["content"]
        return "\n".join(str(line.get("event", line)) if isinstance(line, dict) else str(line) for line in content)

    text = log("report")
    assert "run summary" in text and "gold rows per mart" in text and "fct_device_daily" in text, text[-3000:]
    text = log("build_silver")
    assert str(report["silver_rows"]["events_part"]) in text and "events_part" in text, text[-3000:]
    text = log("build_gold")
    assert str(report["gold"]["marts"]["fct_device_daily"]["rows"]) in text, text[-3000:]

    wait_for("the success alert", lambda: receiver.requests, 30, 0.2)
    time.sleep(1)
    assert len(receiver.requests) == 1, [r["json"] for r in receiver.requests]
    alert = receiver.requests[0]["json"]
    assert alert["event"] == "success" and alert["dag_id"] == "appmetrica_lakehouse" and alert["day"] == TRIGGERED_DAY
    assert alert["log_url"].startswith(f"{base}/dags/appmetrica_lakehouse/runs/") and "SUCCEEDED" in alert["text"]
