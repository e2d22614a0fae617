"""Run the DAG through Airflow on this machine: ``make dags-test``, ``make demo`` and ``make airflow``.

Airflow runs with SQLite metadata under ``AIRFLOW_HOME`` (default ``.airflow/``) and this repo's
dags/ and plugins/. When ``AIRFLOW_CONN_APPMETRICA_DEFAULT`` is not set, a local demo Logs API
server is started with generated data and a fresh random token, and the connection points at it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lakehouse.pipeline import DAG_ID
from lakehouse.settings import DEFAULT_AIRFLOW_HOME, DEFAULT_APP_TIMEZONE, REPO_ROOT, Layout, parse_day

log = logging.getLogger(__name__)
BIN = Path(sys.executable).parent
DEMO_APPLICATION_ID = "1234567"
# The demo export carries a few spoiled event rows (bad JSON, impossible datetimes, bad device
# ids) so the demo shows quarantine at work; real connections are never affected.
DEMO_ANOMALY_RATE = 0.002


def airflow_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for Airflow commands: the caller's, plus this repo's defaults where unset."""
    env = dict(os.environ if base is None else base)
    env.setdefault("AIRFLOW_HOME", str(DEFAULT_AIRFLOW_HOME))
    env.setdefault("LAKEHOUSE_DATA_DIR", str(REPO_ROOT / "data"))
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO_ROOT / "dags"))
    env.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(REPO_ROOT / "plugins"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env.setdefault("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "False")
    env.setdefault("PYTHONPATH", str(REPO_ROOT))
    # `airflow standalone` starts its components as `airflow ...` from PATH: make that this environment's.
    if str(BIN) not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = os.pathsep.join(p for p in (str(BIN), env.get("PATH", "")) if p)
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    return env


def airflow(*args: str, env: dict[str, str], check: bool = True, quiet: bool = False, out: Any = None) -> int:
    """Run the ``airflow`` CLI of this environment; secrets travel in ``env``, never in ``args``.

    Its output goes to the terminal, to ``out`` (an open file) when given, or nowhere when ``quiet``.
    """
    cmd = [str(BIN / "airflow"), *args]
    if quiet:
        out = subprocess.DEVNULL
    result = subprocess.run(cmd, env=env, check=False, stdout=out, stderr=subprocess.STDOUT if out else None)
    if check and result.returncode != 0:
        raise RuntimeError(f"`airflow {' '.join(args[:3])}` failed with exit status {result.returncode}")
    return result.returncode


@contextlib.contextmanager
def demo_api_if_needed(env: dict[str, str], devices: int = 2000) -> Iterator[str]:
    """Start the demo Logs API server unless ``AIRFLOW_CONN_APPMETRICA_DEFAULT`` is already set."""
    if env.get("AIRFLOW_CONN_APPMETRICA_DEFAULT"):
        yield "the appmetrica_default connection from the environment"
        return
    from ingest.appmetrica.demo.generator import PROFILE_ATTRIBUTES
    from ingest.appmetrica.demo.server import DemoLogsApiServer

    token = secrets.token_urlsafe(24)
    tz = env.get("LAKEHOUSE_APP_TIMEZONE", DEFAULT_APP_TIMEZONE)
    with DemoLogsApiServer(
        token=token, application_id=DEMO_APPLICATION_ID, tz=tz, devices=devices, anomaly_rate=DEMO_ANOMALY_RATE
    ) as server:
        env["AIRFLOW_CONN_APPMETRICA_DEFAULT"] = json.dumps(
            {
                "conn_type": "http",
                "host": server.url,
                "password": token,
                # The demo server answers 429 beyond 3 queued exports (as the real API limits them); the
                # eight extracts run in parallel under `make airflow`, so the demo waits 2 s, not 60 s.
                # profile_attributes: the custom profile attributes the demo app sets, exported by name.
                "extra": {"application_id": DEMO_APPLICATION_ID, "poll_interval_seconds": 0.2,
                          "poll_timeout_seconds": 120, "quota_wait_seconds": 2,
                          "profile_attributes": list(PROFILE_ATTRIBUTES)},
            }
        )  # fmt: skip
        yield f"the local demo Logs API server at {server.url}"


def dags_test(day: str, env: dict[str, str] | None = None, *, log_file: Path | None = None) -> int:
    """One ``airflow dags test appmetrica_lakehouse`` run for ``day``; 0 only when the run succeeded.

    Airflow's own output goes to the terminal, or to ``log_file`` (replaced) when one is given.
    """
    day = parse_day(day).isoformat()
    env = airflow_env(env)
    with contextlib.ExitStack() as stack:
        out = None
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            out = stack.enter_context(open(log_file, "wb"))
        source = stack.enter_context(demo_api_if_needed(env))
        print(f"[lakehouse] {DAG_ID} for {day}: AppMetrica = {source}; AIRFLOW_HOME = {env['AIRFLOW_HOME']}")
        if log_file is not None:
            print(f"[lakehouse] Airflow's output: {log_file}")
        airflow("db", "migrate", env=env, quiet=True)
        report = Layout(Path(env["LAKEHOUSE_DATA_DIR"]).resolve()).reports / DAG_ID / f"date={day}" / "summary.json"
        before = report.stat().st_mtime_ns if report.exists() else None
        # The day travels as the Param only: the run's logical date is now, so its start and duration are real
        # ones (a logical date of `day` would be its start too, and the DAG's charts would show a weeks-long run).
        rc = airflow("dags", "test", DAG_ID, "-c", json.dumps({"date": day}), env=env, check=False, out=out)
    # `dags test` can exit 0 when a task failed; the report is written by the last task only.
    if rc == 0 and (not report.exists() or report.stat().st_mtime_ns == before):
        print(f"[lakehouse] the run did not reach its report task: no new {report}", file=sys.stderr)
        rc = 1
    print(f"[lakehouse] {DAG_ID} {day}: {'succeeded' if rc == 0 else 'FAILED'}")
    return rc


def summary_lines(report: dict[str, Any]) -> list[str]:
    """Human-readable lines of a run report (for ``make demo``)."""
    lines = [f"Run {report['run_id']} for {report['date']}"]

    def block(title: str, rows: dict[str, Any]) -> None:
        lines.append(title)
        lines.extend(f"  {name:<28}{value:>12,}" for name, value in rows.items())

    block("bronze rows per resource", report["bronze_rows"])
    block("silver rows per table", report["silver_rows"])
    block("quarantined rows per resource", report["quarantined_rows"])
    block("duplicate rows removed", report["duplicates_removed"])
    for when, tables in sorted((report.get("empty_days") or {}).items()):
        lines.append(f"empty export on {when}: no rows in {', '.join(tables)} (reported, not failed)")
    marts = report["gold"].get("marts", {})
    block("gold rows per mart", {m: info["rows"] for m, info in marts.items()})
    published = report["published"]
    lines.append(f"gold published to {published.get('target')} ({published.get('objects')} objects, manifest last)")
    bi = report.get("published_bi") or {}
    if bi.get("skipped"):
        lines.append(f"gold to PostgreSQL skipped: {bi['skipped']}")
    elif bi.get("target"):
        lines.append(f"gold to PostgreSQL {bi['target']}: {len(bi.get('dates', []))} date(s) rewritten")
    if (report.get("docs") or {}).get("path"):
        lines.append(f"dbt docs regenerated in {report['docs']['path']}")
    return lines


def demo_summary(report: dict[str, Any], layout: Layout, *, seconds: float, log_file: Path) -> list[str]:
    """What ``make demo`` prints after a successful run: rows per layer, quarantine, where things are, what next.

    At most 40 lines whatever the report holds (each layer is one line).
    """

    def counts(rows: dict[str, Any]) -> str:
        text = ", ".join(f"{name} {value:,}" for name, value in rows.items()) or "none"
        return "\n".join(textwrap.wrap(text, 96, subsequent_indent=" " * 22))

    day = report["date"]
    marts = {m: info["rows"] for m, info in (report.get("gold") or {}).get("marts", {}).items()}
    published = report.get("published") or {}
    docs = layout.root / "docs"
    reasons = {
        reason: sum(by.get(reason, 0) for by in report.get("quarantined_by_reason", {}).values())
        for reason in sorted({r for by in report.get("quarantined_by_reason", {}).values() for r in by})
    }
    lines = [
        f"{DAG_ID} {day}: {report['status']} in {seconds:.0f} s (run {report['run_id']})",
        f"  bronze rows:        {counts(report.get('bronze_rows', {}))}",
        f"  silver rows:        {counts(report.get('silver_rows', {}))}",
        f"  quarantined rows:   {counts(report.get('quarantined_rows', {}))}",
        f"    by reason:        {counts(reasons)}",
        f"  duplicates removed: {counts(report.get('duplicates_removed', {}))}",
        f"  gold rows:          {counts(marts)}",
        "",
        f"The lake:     {layout.root}/ (bronze/, silver/, quarantine/, gold/, reports/)",
        f"Gold marts:   {layout.gold}/",
        f"Published:    {published.get('target')} ({published.get('objects')} objects, manifest last)",
        f"Run report:   {layout.reports / DAG_ID / f'date={day}' / 'index.html'} (and summary.json beside it)",
        f"dbt docs:     {docs / 'dbt' / 'index.html'} (make docs serves them)",
        f"GX Data Docs: {docs / 'gx' / 'index.html'}",
        f"Airflow log:  {log_file}",
        "",
        "Try next:",
        "  make airflow                        the Airflow UI: sign in, trigger a day (README, Quick start)",
        "  .venv/bin/lakehouse features list   the features gold offers",
        "  docs/features.md                    a training set in Python from labelled events",
    ]
    return "\n".join(lines).splitlines()[:40]


def demo(day: str) -> int:
    """``make demo``: one full daily run through Airflow on the demo server, then a short summary.

    Airflow's own output (task logs) goes to ``$AIRFLOW_HOME/logs/demo-<day>.log``; on failure its last lines
    are printed too.
    """
    import time

    start = time.monotonic()
    env = airflow_env()
    day = parse_day(day).isoformat()
    log_file = Path(env["AIRFLOW_HOME"]).resolve() / "logs" / f"demo-{day}.log"
    rc = dags_test(day, env, log_file=log_file)
    if rc != 0:
        tail = log_file.read_text(errors="replace").splitlines()[-40:] if log_file.exists() else []
        print("\n".join(["[lakehouse] the last lines of Airflow's output:", *tail]), file=sys.stderr)
        print(f"[lakehouse] the whole output: {log_file}", file=sys.stderr)
        return rc
    layout = Layout(Path(env["LAKEHOUSE_DATA_DIR"]).resolve())
    report = json.loads((layout.reports / DAG_ID / f"date={day}" / "summary.json").read_text())
    print("\n".join(demo_summary(report, layout, seconds=time.monotonic() - start, log_file=log_file)))
    return 0


def admin_password(env: dict[str, str]) -> str:
    """The ``admin`` password of the simple auth manager, creating its passwords file when missing.

    Airflow reads ``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE`` (default
    ``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``); an existing password is kept.
    """
    default = Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    path = Path(env.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(default)))
    passwords: dict[str, str] = {}
    if path.is_file():
        try:
            passwords = json.loads(path.read_text(encoding="utf-8") or "{}")
        except ValueError:
            raise RuntimeError(f"{path} is not valid JSON: fix or delete it (a new password is then made)") from None
    if not passwords.get("admin"):
        from lakehouse.fsutil import write_json

        passwords["admin"] = secrets.token_urlsafe(12)
        write_json(path, passwords)
        path.chmod(0o600)
    return passwords["admin"]


def declared_demo_sources(env: dict[str, str]) -> list[str]:
    """Declared REST sources with a local demo server whose connection the environment does not set."""
    from ingest.sources.config import load_declarations

    return [
        spec.name
        for spec in load_declarations().values()
        if spec.kind == "rest_api"
        and spec.name == "vacancies"  # the one source with a demo server (ingest/sources/demo/vacancies.py)
        and spec.connection
        and not env.get(f"AIRFLOW_CONN_{spec.connection.upper()}")
    ]


def standalone(port: int = 8080) -> int:
    """``make airflow``: Airflow standalone (api-server, scheduler, dag-processor, triggerer) on ``port``.

    Calm on a first start: AppMetrica and the vacancies source point at local demo servers unless their connections
    are set; only the runs a user triggers run (the daily schedules stay off unless
    ``AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=True``); the executor runs as many tasks at once as the machine has cores.
    """
    from lakehouse.sources_cli import demo_connection

    env = airflow_env()
    env.setdefault("AIRFLOW__API__PORT", str(port))
    port_text = env["AIRFLOW__API__PORT"]
    env.setdefault("AIRFLOW__API__HOST", "127.0.0.1")  # this machine only: set 0.0.0.0 to open it wider
    url = env.setdefault("AIRFLOW__API__BASE_URL", f"http://localhost:{port_text}")
    env.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    env.setdefault("AIRFLOW__CORE__PARALLELISM", str(os.cpu_count() or 2))
    env.setdefault("AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE", "False")
    scheduled = env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"].lower() == "true"
    password = admin_password(env)
    s3 = "lakehouse_s3 from the environment" if env.get("AIRFLOW_CONN_LAKEHOUSE_S3") else "none (gold kept local)"
    alerts = "lakehouse_alerts from the environment" if env.get("AIRFLOW_CONN_LAKEHOUSE_ALERTS") else "off"
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(demo_api_if_needed(env))
        sources = [f"{name} = {stack.enter_context(demo_connection(env, name))}" for name in declared_demo_sources(env)]
        print(f"[lakehouse] Airflow UI: {url}  login: admin / {password}")
        print(f"[lakehouse] AppMetrica = {source}; S3 = {s3}; alerts = {alerts}")
        for line in sources:
            print(f"[lakehouse] source {line}")
        print(f"[lakehouse] {env['AIRFLOW__CORE__PARALLELISM']} tasks at once; "
              + ("daily schedules on" if scheduled else "only the runs you trigger run (daily schedules off: "
                 "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=True turns them on)"))  # fmt: skip
        print(f"[lakehouse] trigger {DAG_ID} with a date (Trigger > Day to process), then browse the docs at "
              f"{url.rstrip('/')}/plugin/dbt-docs (Plugins > Lakehouse); Ctrl-C stops everything")  # fmt: skip
        try:
            return airflow("standalone", env=env, check=False)
        except KeyboardInterrupt:
            return 0


def docs(serve: bool = False, port: int = 8081) -> int:
    """``make docs``: generate dbt docs for the gold project, and serve them on ``port`` if asked."""
    import functools
    import http.server

    from lakehouse.docs import refresh_dbt_docs

    target = refresh_dbt_docs(Layout.from_env())["path"]
    print(f"[lakehouse] dbt docs generated in {target}")
    if serve:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(target))
        with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as httpd:
            print(f"[lakehouse] serving dbt docs on http://127.0.0.1:{port} (Ctrl-C to stop)")
            with contextlib.suppress(KeyboardInterrupt):
                httpd.serve_forever()
    return 0
