"""Fixtures shared by tests/unit, tests/integration and tests/e2e, and how `make test` spreads tests over workers.

`make test` runs pytest-xdist with ``--dist loadscope``: each test module goes whole to whichever worker is free,
so what a module builds once (a module-scoped fixture: a generated lake, a reference run, the demo's clone) is built
once. Every test writes under its own ``tmp_path`` and binds port 0, so workers never share a folder, a port or an
Airflow home.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pg_cluster import Cluster, pg_cluster


class HttpReceiver:
    """A webhook / Telegram Bot API stand-in on 127.0.0.1 (port 0): records every POST, answers ``status``.

    ``requests`` holds ``{"path", "headers", "json"}`` per POST, in arrival order.
    """

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        self.body = b'{"ok": true}'
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                payload = self.rfile.read(length)
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "json": json.loads(payload or b"null")}
                )
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(receiver.body)))
                self.end_headers()
                self.wfile.write(receiver.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    """A local HTTP receiver for alert tests (see :class:`HttpReceiver`)."""
    receiver = HttpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """One throw-away PostgreSQL cluster per test process (see pg_cluster.py); tests create their own databases."""
    with pg_cluster() as cluster:
        yield cluster
