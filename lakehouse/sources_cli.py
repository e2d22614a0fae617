"""``lakehouse sources ...``: declared sources from the command line (same steps as their DAGs).

lakehouse sources list
lakehouse sources run vacancies --date 2026-10-27        # extract -> silver -> gold -> report, no Airflow
lakehouse sources extract vacancies --date 2026-10-27 [--resource vacancies]
lakehouse sources silver vacancies --date 2026-10-27
lakehouse sources gold vacancies
lakehouse sources pick-up exchange_rates                  # the CSV inbox -> bronze / quarantine
lakehouse sources dbt-sources vacancies --write           # regenerate the dbt sources YAML
lakehouse sources dags-test vacancies --date 2026-10-27 --demo   # `airflow dags test source_vacancies`
lakehouse sources demo-server --port 8780                 # the demo vacancies API in the foreground
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lakehouse.console import result, result_json

DEMO_CONNECTION_SOURCE = "vacancies"


def add_parser(sub: Any) -> None:
    """Register ``sources`` and its subcommands on the ``lakehouse`` CLI's subparsers."""
    parser = sub.add_parser("sources", help="declared sources (ingest/sources/sources.yml): run, inspect, test")
    cmds = parser.add_subparsers(dest="sources_command", required=True)
    cmds.add_parser("list", help="the declared sources, their resources and DAG ids")
    run = cmds.add_parser("run", help="every step of one source in this process (no Airflow)")
    run.add_argument("source")
    run.add_argument("--date", help="day to pull (REST sources), YYYY-MM-DD")
    extract = cmds.add_parser("extract", help="pull a REST source's resource(s) for one day into bronze")
    extract.add_argument("source")
    extract.add_argument("--date", required=True)
    extract.add_argument("--resource", help="one resource (default: all)")
    silver = cmds.add_parser("silver", help="build a source's silver for one day from bronze")
    silver.add_argument("source")
    silver.add_argument("--date", required=True)
    gold = cmds.add_parser("gold", help="build and test a source's dbt selector")
    gold.add_argument("source")
    pick = cmds.add_parser("pick-up", help="move a CSV drop source's inbox into bronze (or quarantine)")
    pick.add_argument("source")
    dbt = cmds.add_parser("dbt-sources", help="print (or --write) the dbt sources YAML of a source")
    dbt.add_argument("source")
    dbt.add_argument("--write", action="store_true", help="write it to dbt_project/models/staging/<source>/")
    test = cmds.add_parser("dags-test", help="one `airflow dags test source_<name>` run for a day")
    test.add_argument("source")
    test.add_argument("--date", required=True)
    test.add_argument("--demo", action="store_true",
                      help="start the demo vacancies API and point the source's connection at it")  # fmt: skip
    server = cmds.add_parser(
        "demo-server", help="the demo vacancies API in the foreground (token: DEMO_VACANCIES_TOKEN)"
    )
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=8780)
    server.add_argument("--start", help="first publication day, YYYY-MM-DD")
    server.add_argument("--days", type=int, help="days of vacancies to generate")
    server.add_argument("--per-day", type=int, help="vacancies published per day")


def run(args: argparse.Namespace) -> int:
    """Run the ``sources`` subcommand parsed into ``args``; return the exit status (1 when a step failed)."""
    from ingest.sources.rest_api.helpers import RestSourceError
    from transforms.gold import GoldBuildError
    from transforms.sources.silver import SourceSilverError

    try:
        return _run(args)
    except (RestSourceError, SourceSilverError, GoldBuildError) as exc:
        print(f"lakehouse sources {args.sources_command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from lakehouse import sources

    cmd = args.sources_command
    if cmd == "list":
        from ingest.sources.config import load_declarations

        for spec in load_declarations().values():
            resources = ", ".join(f"{n} ({r.write_disposition}, key {', '.join(r.primary_key) or '-'})"
                                  for n, r in spec.resources.items())  # fmt: skip
            result(f"{spec.name:<20} {spec.kind:<9} DAG {spec.dag_id:<28} {resources}")
        return 0
    if cmd == "run":
        result_json(sources.run(args.source, args.date))
    elif cmd == "extract":
        spec = sources.spec(args.source)
        names = [args.resource] if args.resource else list(spec.resources)
        result_json([sources.extract(args.source, name, args.date) for name in names])
    elif cmd == "silver":
        result_json(sources.silver(args.source, args.date))
    elif cmd == "gold":
        result_json(sources.gold(args.source))
    elif cmd == "pick-up":
        result_json(sources.pick_up(args.source))
    elif cmd == "dbt-sources":
        from transforms.sources.dbt import dbt_sources_yaml, write_dbt_sources

        spec = sources.spec(args.source)
        if args.write:
            result(str(write_dbt_sources(spec)))
        else:
            result(dbt_sources_yaml(spec).rstrip("\n"))
    elif cmd == "dags-test":
        return dags_test(args.source, args.date, demo=args.demo)
    elif cmd == "demo-server":
        from ingest.sources.demo.vacancies import main as server_main

        argv = ["--host", args.host, "--port", str(args.port)]
        for flag, value in (("--start", args.start), ("--days", args.days), ("--per-day", args.per_day)):
            if value is not None:
                argv += [flag, str(value)]
        return server_main(argv)
    return 0


@contextlib.contextmanager
def demo_connection(env: dict[str, str], source: str) -> Iterator[str]:
    """Start the demo vacancies API with a fresh token and point ``source``'s connection at it (via ``env``)."""
    from ingest.sources.demo.vacancies import VacanciesApiServer
    from lakehouse.sources import spec as get_spec

    spec = get_spec(source)
    if spec.connection is None:
        raise SystemExit(f"source {source!r} declares no connection to point at the demo API")
    token = secrets.token_urlsafe(24)
    with VacanciesApiServer(token) as api:
        env[f"AIRFLOW_CONN_{spec.connection.upper()}"] = json.dumps(
            {"conn_type": "http", "host": api.url, "password": token}
        )
        yield f"the demo vacancies API at {api.url}"


def dags_test(source: str, day: str, *, demo: bool = False, env: dict[str, str] | None = None) -> int:
    """One ``airflow dags test source_<name> -c '{"date": DAY}'``; 0 only when the run reached its report."""
    from lakehouse.local_airflow import airflow, airflow_env
    from lakehouse.settings import Layout, parse_day
    from lakehouse.sources import spec as get_spec

    spec = get_spec(source)
    day = parse_day(day).isoformat()
    env = airflow_env(env)
    with contextlib.ExitStack() as stack:
        where = stack.enter_context(demo_connection(env, source)) if demo else "its connection from the environment"
        print(f"[lakehouse] {spec.dag_id} for {day}: {source} = {where}; AIRFLOW_HOME = {env['AIRFLOW_HOME']}")
        airflow("db", "migrate", env=env, quiet=True)
        layout = Layout(Path(env["LAKEHOUSE_DATA_DIR"]).resolve())
        report = layout.reports / spec.dag_id / f"date={day}" / "summary.json"
        before = report.stat().st_mtime_ns if report.exists() else None
        # The day as the Param only: the run's logical date (and start) is now, see local_airflow.dags_test.
        rc = airflow("dags", "test", spec.dag_id, "-c", json.dumps({"date": day}), env=env, check=False)
    if spec.kind == "rest_api" and rc == 0 and (not report.exists() or report.stat().st_mtime_ns == before):
        print(f"[lakehouse] the run did not reach its report task: no new {report}", file=sys.stderr)
        rc = 1
    print(f"[lakehouse] {spec.dag_id} {day}: {'succeeded' if rc == 0 else 'FAILED'}")
    return rc
