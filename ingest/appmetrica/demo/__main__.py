"""Run the demo AppMetrica Logs API in the foreground.

    python -m ingest.appmetrica.demo --port 8765 --application-id 1234567 [--devices N --seed S]

The token is ``$DEMO_APPMETRICA_TOKEN`` when set, else ``--token``, else ``demo-token``; it is never
printed. Stops on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

from ingest.appmetrica.demo.server import DemoLogsApiServer
from lakehouse.settings import DEFAULT_APP_TIMEZONE

TOKEN_ENV = "DEMO_APPMETRICA_TOKEN"  # noqa: S105 - an env var name, not a secret


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m ingest.appmetrica.demo``."""
    parser = argparse.ArgumentParser(prog="python -m ingest.appmetrica.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 = any free port; default 8765)")
    parser.add_argument("--token", default=None, help=f"OAuth token to accept (default ${TOKEN_ENV} or demo-token)")
    parser.add_argument("--application-id", default="1234567", help="the application id served")
    parser.add_argument("--tz", default=os.environ.get("LAKEHOUSE_APP_TIMEZONE", DEFAULT_APP_TIMEZONE))
    parser.add_argument("--devices", type=int, default=2000, help="device population size (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--polls-before-ready", type=int, default=1, help="202 polls before 200 (default 1)")
    parser.add_argument("--max-export-bytes", type=int, default=None, help="answer 'use more parts' above this")
    parser.add_argument("--anomaly-rate", type=float, default=0.0, help="share of deliberately bad event rows")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted; prints the base URL (never the token)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")
    token = os.environ.get(TOKEN_ENV) or args.token or "demo-token"
    server = DemoLogsApiServer(
        token=token,
        application_id=args.application_id,
        tz=args.tz,
        devices=args.devices,
        seed=args.seed,
        polls_before_ready=args.polls_before_ready,
        max_export_bytes=args.max_export_bytes,
        host=args.host,
        port=args.port,
        anomaly_rate=args.anomaly_rate,
    )
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    with server:
        print(
            f"AppMetrica demo Logs API listening on {server.url} (application_id={server.application_id}, "
            f"devices={server.devices}, seed={server.seed})",
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    print("AppMetrica demo Logs API stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
