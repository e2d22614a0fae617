"""Fresh exports (``Cache-Control: no-cache`` on the request that starts one, never on its polls) and base URLs:
both documented hosts, and a redirect to another host that must not carry the OAuth token (local servers only)."""

from __future__ import annotations

import datetime as dt
import gzip
import random
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import pytest

from ingest.appmetrica import AppMetricaSettings, LogsApiClient, LogsApiError, extract_resource
from ingest.appmetrica.demo.server import DemoLogsApiServer
from ingest.appmetrica.resources import RESOURCES
from lakehouse.settings import Layout

pytestmark = pytest.mark.integration

TOKEN = "fresh-S3CRET-token-42"
DAY = dt.date(2026, 11, 1)
Reply = tuple[int, dict[str, str], bytes]


class Recorder:
    """A local HTTP server answering GETs with ``reply(path_and_query)`` and recording each request's headers."""

    def __init__(self, reply: Callable[[str], Reply]) -> None:
        self.reply = reply
        self.seen: list[tuple[str, dict[str, str]]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                recorder.seen.append((self.path, dict(self.headers.items())))
                status, headers, body = recorder.reply(self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _extract(base_url: str, tmp_path: Path, resource: str = "events", application_id: str = "1234567") -> dict:
    settings = AppMetricaSettings(
        base_url=base_url, token=TOKEN, application_id=application_id, poll_interval_seconds=0, retries=0
    )
    with LogsApiClient(settings, sleep=lambda _s: None, rng=random.Random(0)) as client:
        return extract_resource(resource, DAY, settings=settings, layout=Layout(tmp_path), client=client)


def test_only_the_request_that_starts_an_export_asks_for_a_fresh_one(tmp_path):
    header = ",".join(RESOURCES["events"].fields).encode() + b"\n"
    replies: Iterator[Reply] = iter(
        [(202, {}, b"Wait for result"), (202, {}, b"Progress is 50%"), (200, {"Content-Type": "text/csv"}, header)]
    )
    with Recorder(lambda _path: next(replies)) as api:
        _extract(api.url, tmp_path)
    cache = [headers.get("Cache-Control") for _path, headers in api.seen]
    assert cache == ["no-cache", None, None]  # polls repeat the request without it: no-cache would restart it
    assert len({path for path, _headers in api.seen}) == 1


def test_a_second_export_of_the_same_day_is_fresh_not_the_cached_file(tmp_path):
    """The demo server keeps the file it generated last for a request (24 h) and serves it to a request without
    no-cache; the client's second export of the day must get the rows that arrived since."""
    arrived = {"late": False}

    def hide_late(fields: list[str], rows: list[dict[str, str]]) -> tuple[list[str], list[dict[str, str]]]:
        return fields, rows if arrived["late"] else rows[: len(rows) // 2]

    with DemoLogsApiServer(token=TOKEN, devices=60, polls_before_ready=2) as server:
        server.tamper("events", rows=hide_late)
        first = _extract(server.url, tmp_path / "a")
        arrived["late"] = True
        second = _extract(server.url, tmp_path / "b")
        assert second["rows"] > first["rows"] > 0
        # a request without no-cache still gets the file generated last (the documented 24 h cache)
        query = urlencode(server.requests[-1][2])  # the request the client sent, now without Cache-Control
        stale = server._handle("GET", f"/logs/v1/export/events.csv?{query}", {"Authorization": f"OAuth {TOKEN}"})
        stored = Layout(tmp_path / "b").bronze("events", DAY) / second["parts"][0]["file"]
        assert stale.status == 200 and stale.body == gzip.decompress(stored.read_bytes())


def test_the_demo_cache_expires_after_24_hours():
    now = [0.0]
    with DemoLogsApiServer(token=TOKEN, devices=30, polls_before_ready=1, clock=lambda: now[0]) as server:
        path = "/logs/v1/export/installations.csv?application_id=1234567&date_since=2026-11-01&date_until=2026-11-01"
        path += "&fields=install_datetime"
        auth = {"Authorization": f"OAuth {TOKEN}"}
        assert [server._handle("GET", path, auth).status for _ in range(3)] == [202, 200, 200]
        now[0] += 24 * 3600 - 1
        assert server._handle("GET", path, auth).status == 200
        now[0] += 1
        assert server._handle("GET", path, auth).status == 202  # generated anew
        assert server._handle("GET", path, {**auth, "Cache-Control": "no-cache"}).status == 202


@pytest.mark.parametrize("host", ["https://api.appmetrica.yandex.ru", "https://api.appmetrica.yandex.com"])
def test_both_documented_hosts_are_base_urls(host):
    settings = AppMetricaSettings(base_url=host, token=TOKEN, application_id="1")
    with LogsApiClient(settings) as client:
        assert client.export_url("events") == f"{host}/logs/v1/export/events.csv"


def test_a_redirect_to_another_host_never_carries_the_token(tmp_path):
    with DemoLogsApiServer(token=TOKEN, devices=30, polls_before_ready=0) as target:
        other = target.url.replace("127.0.0.1", "localhost")  # the same server under another host name

        def moved(path: str) -> Reply:
            return 307, {"Location": other + path}, b""

        with Recorder(moved) as api, pytest.raises(LogsApiError) as err:
            _extract(api.url, tmp_path)
    assert api.seen[0][1]["Authorization"] == f"OAuth {TOKEN}"  # the configured host gets it
    assert target.statuses() == [401]  # the other host got the request without it (a wrong token would be 403)
    message = str(err.value)
    assert f"redirected to {other}" in message
    assert f"set the host field of the connection appmetrica_default to {other}" in message
    assert TOKEN not in message
