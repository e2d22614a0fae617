"""``lakehouse``: the command line over the same steps and settings the DAG uses.

Connections come from the same places as in Airflow: ``AIRFLOW_CONN_APPMETRICA_DEFAULT``,
``AIRFLOW_CONN_LAKEHOUSE_S3`` and ``AIRFLOW_CONN_LAKEHOUSE_BI`` (JSON), or the Airflow home's metadata database, which
is the one ``make`` uses (the repo's ``.airflow/``) unless ``AIRFLOW_HOME`` names another; data from
``LAKEHOUSE_DATA_DIR``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from lakehouse import s3tools, sources_cli
from lakehouse.console import result_json, results_apart
from lakehouse.features import cli as features_cli
from lakehouse.settings import DEFAULT_AIRFLOW_HOME, ConfigError, data_dir_problem

BAD_INPUT = 2  # a refused argument, setting or declaration
FAILED = 1  # the work itself failed (an API, the disk, a quality gate)


def report_error(command: str, exc: BaseException, *, debug: bool = False) -> int:
    """Print why ``command`` failed as one line on stderr (the traceback too with ``--debug``); return the exit
    status: 2 for bad input (ConfigError, ValueError), 1 for a failure while working."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    try:
        problem = data_dir_problem(exc)
    except ConfigError as setting:
        problem = str(setting)
    bad_input = isinstance(exc, ConfigError | ValueError) and problem is None
    message = problem or (str(exc) if bad_input else f"{type(exc).__name__}: {exc}")
    hint = "" if debug else " (--debug shows the traceback)"
    print(f"lakehouse {command}: {message}{'' if bad_input else hint}", file=sys.stderr)
    return BAD_INPUT if bad_input else FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lakehouse`` command."""
    # Before anything imports Airflow: the same home as `make` (connections set in the UI are seen), not ~/airflow.
    os.environ.setdefault("AIRFLOW_HOME", str(DEFAULT_AIRFLOW_HOME))
    parser = argparse.ArgumentParser(prog="lakehouse", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    def dated(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.add_argument("--date", required=True, help="day to process, YYYY-MM-DD (the app's local day)")
        return p

    dated("run", "run every step for one day in this process (no Airflow)")
    backfill = sub.add_parser("backfill", help="run every day of a date range, several at a time (no Airflow)")
    backfill.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD")
    backfill.add_argument("--to", dest="last", required=True, help="last day, YYYY-MM-DD (inclusive)")
    backfill.add_argument("--parallel", type=int, default=2, help="days in flight at once (default 2)")
    extract = dated("extract", "export one resource for one day into bronze")
    extract.add_argument("--resource", required=True)
    dated("silver", "build the day's silver tables from bronze")
    gold = sub.add_parser("gold", help="build and test the gold marts (dbt build; incremental unless --full-refresh)")
    gold.add_argument("--date", action="append", default=[], help="a silver date rebuilt since the last build "
                      "(repeatable; partitions changed on disk are found anyway)")  # fmt: skip
    gold.add_argument("--full-refresh", action="store_true", help="rebuild every mart from all of silver")
    dated("publish", "publish gold to lakehouse_s3 (or locally)")
    dated("publish-bi", "write gold's changed dates into PostgreSQL through lakehouse_bi (skipped without it)")
    dated("dags-test", "one `airflow dags test appmetrica_lakehouse` run for a day")
    dated("demo", "one full daily run through Airflow on the demo Logs API, then a summary")
    maintain = sub.add_parser("maintain", help="compact, vacuum and checkpoint the lake's Delta tables")
    maintain.add_argument("--dry-run", action="store_true", help="change nothing: list what would be compacted "
                          "and removed")  # fmt: skip
    maintain.add_argument("--retention-hours", help="keep removed and orphan files this long (default "
                          "$LAKEHOUSE_DELTA_RETENTION_HOURS, else 168; at least 24)")  # fmt: skip
    maintain.add_argument("--table", action="extend", nargs="+", metavar="LAYER/NAME",
                          help="only these tables, e.g. silver/events_part (default: every Delta table)")  # fmt: skip
    standalone = sub.add_parser("airflow", help="Airflow standalone on http://localhost:8080 with this repo's DAGs")
    standalone.add_argument("--port", type=int, default=8080, help="the UI's port (default 8080)")
    docs = sub.add_parser("docs", help="generate dbt docs (and serve them with --serve)")
    docs.add_argument("--serve", action="store_true")
    docs.add_argument("--port", type=int, default=8081)
    features_cli.add_parser(sub)
    server = sub.add_parser("demo-server", help="run the demo AppMetrica Logs API server in the foreground")
    server.add_argument("args", nargs=argparse.REMAINDER)
    s3tools.add_parser(sub)
    sources_cli.add_parser(sub)

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo-server"]:  # its options belong to the server's own parser (argparse's REMAINDER
        from ingest.appmetrica.demo.__main__ import main as server_main  # rejects a leading --option)

        return server_main(argv[1:])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    # Commands with a result print it alone on stdout; the ones that drive Airflow or a server talk as they go.
    talkative = args.command in ("dags-test", "demo", "airflow", "docs", "demo-server") or (
        args.command == "sources" and args.sources_command == "demo-server"
    )
    try:
        with contextlib.nullcontext() if talkative else results_apart():
            return _dispatch(args)
    except Exception as exc:
        return report_error(args.command, exc, debug=args.debug)


def _dispatch(args: argparse.Namespace) -> int:
    from lakehouse import local_airflow, pipeline

    if args.command == "run":
        result_json(pipeline.run_day(args.date))
    elif args.command == "backfill":
        results = pipeline.backfill(args.first, args.last, parallel=args.parallel)
        result_json(results)
        return 0 if all(r["status"] == "success" for r in results) else 1
    elif args.command == "extract":
        result_json(pipeline.extract(args.resource, args.date))
    elif args.command == "silver":
        result_json(pipeline.silver(args.date))
    elif args.command == "gold":
        result_json(pipeline.gold(args.date, full_refresh=args.full_refresh))
    elif args.command == "publish":
        result_json(pipeline.publish(args.date, run_id="cli"))
    elif args.command == "publish-bi":
        result_json(pipeline.publish_bi(args.date, run_id="cli"))
    elif args.command == "maintain":
        from lakehouse.maintenance import maintain

        result_json(maintain(args.table, retention=args.retention_hours, dry_run=args.dry_run))
    elif args.command == "dags-test":
        return local_airflow.dags_test(args.date)
    elif args.command == "demo":
        return local_airflow.demo(args.date)
    elif args.command == "airflow":
        return local_airflow.standalone(port=args.port)
    elif args.command == "docs":
        return local_airflow.docs(serve=args.serve, port=args.port)
    elif args.command == "features":
        return features_cli.run(args)
    elif args.command == "demo-server":
        from ingest.appmetrica.demo.__main__ import main as server_main

        return server_main(args.args)
    elif args.command == "s3":
        return s3tools.run(args)
    elif args.command == "sources":
        return sources_cli.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
