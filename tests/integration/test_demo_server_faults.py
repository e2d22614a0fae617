"""The demo Logs API's fault modes, checked on the wire: empty 202 bodies, long 202 sequences, a TCP reset
mid-body, a stalled body, a well-framed but cut gzip body, and the validation of ``inject()``."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from urllib.parse import urlencode

import pytest
import requests
import urllib3.exceptions

from ingest.appmetrica.demo.server import DemoLogsApiServer
from ingest.appmetrica.resources import RESOURCES

pytestmark = pytest.mark.integration

TOKEN = "server-fault-token-7"
PARAMS = {
    "application_id": "1234567",
    "date_since": "2026-11-01 00:00:00",
    "date_until": "2026-11-01 23:59:59",
    "fields": ",".join(RESOURCES["events"].fields),
}
HEADERS = {"Authorization": f"OAuth {TOKEN}", "Accept-Encoding": "gzip"}


@pytest.fixture
def server():
    with DemoLogsApiServer(token=TOKEN, devices=200, polls_before_ready=0) as srv:
        yield srv


def url(server: DemoLogsApiServer) -> str:
    return f"{server.url}/logs/v1/export/events.csv"


def get(server: DemoLogsApiServer, timeout: float | tuple[float, float] = 30) -> requests.Response:
    """One export request; the body is left unread (``stream=True``)."""
    return requests.get(url(server), params=PARAMS, headers=HEADERS, stream=True, timeout=timeout)


def full_gzip(server: DemoLogsApiServer) -> bytes:
    resp = get(server)
    assert resp.status_code == 200 and resp.headers["Content-Encoding"] == "gzip"
    return resp.raw.read(decode_content=False)


def raw_exchange(server: DemoLogsApiServer) -> tuple[bytes, BaseException | None]:
    """Send the export request on a plain socket and read until EOF or an error: (bytes read, error)."""
    path = "/logs/v1/export/events.csv?" + urlencode(PARAMS)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: OAuth {TOKEN}\r\n"
        "Accept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    )
    received = bytearray()
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(request.encode())
        try:
            while chunk := sock.recv(1 << 16):
                received += chunk
        except OSError as exc:
            return bytes(received), exc
    return bytes(received), None


def test_long_202_sequence_reports_rising_progress(server):
    server.polls_before_ready = 25
    answers = [(r.status_code, r.text) for r in (get(server) for _ in range(25))]
    assert answers[0] == (202, "Wait for result")
    percents = [int(text.removeprefix("Progress is ").removesuffix("%")) for _, text in answers[1:]]
    assert all(status == 202 for status, _ in answers)
    assert percents == sorted(percents) and percents[0] > 0 and percents[-1] < 100
    assert get(server).status_code == 200
    assert server.statuses() == [202] * 25 + [200]


def test_202_bodies_can_be_empty(server):
    server.polls_before_ready = 4
    server.progress_bodies = False
    answers = [get(server) for _ in range(4)]
    assert [(r.status_code, r.content) for r in answers] == [(202, b"")] * 4
    assert all(r.headers["Content-Length"] == "0" for r in answers)
    ready = get(server)
    assert ready.status_code == 200
    assert gzip.decompress(ready.raw.read(decode_content=False)).startswith(PARAMS["fields"].encode())


def test_reset_sends_half_the_body_then_a_tcp_reset(server):
    whole = full_gzip(server)
    server.inject(truncate=True)  # for contrast: a clean close (FIN) after half the body
    truncated, error = raw_exchange(server)
    assert error is None and b"200 OK" in truncated

    server.inject(reset=True)
    received, error = raw_exchange(server)
    assert isinstance(error, ConnectionResetError)  # RST, not an orderly end of stream
    assert received.startswith(b"HTTP/1.1 200") or received == b""  # unread data may be dropped with the RST
    assert server.statuses() == [200, 200, 200]
    assert full_gzip(server) == whole  # the export is untouched: the next request gets it whole


def test_reset_seen_by_requests_is_a_connection_reset(server):
    server.inject(reset=True)
    # urllib3's error while reading the body; requests' own if the RST came before the headers were read
    with pytest.raises((urllib3.exceptions.ProtocolError, requests.ConnectionError), match="Connection reset by peer"):
        resp = get(server)
        resp.raw.read(decode_content=False)


def test_stall_trips_a_short_read_timeout_after_half_the_body(server):
    whole = full_gzip(server)
    server.inject(stall=2.0)
    resp = get(server, timeout=(5, 0.3))
    assert resp.status_code == 200 and int(resp.headers["Content-Length"]) == len(whole)
    received = bytearray()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        for chunk in resp.raw.stream(1 << 12, decode_content=False):
            received += chunk
    resp.close()
    assert 0 < len(received) < len(whole)


def test_stall_shorter_than_the_read_timeout_only_delays_the_body(server):
    whole = full_gzip(server)
    server.inject(stall=0.3)
    started = time.monotonic()
    resp = get(server, timeout=(5, 10))
    assert resp.raw.read(decode_content=False) == whole
    assert time.monotonic() - started >= 0.3


def test_stop_ends_a_stall_early(server):
    whole = full_gzip(server)
    server.inject(stall=600)
    timer = threading.Timer(0.3, server.stop)
    timer.start()
    try:
        resp = get(server, timeout=(5, 60))
        assert resp.raw.read(decode_content=False) == whole  # the rest came once stop() ended the silence
    finally:
        timer.cancel()


def test_truncate_gzip_is_well_framed_but_the_stream_is_cut(server):
    whole = full_gzip(server)
    server.inject(truncate_gzip=True)
    resp = get(server)
    body = resp.raw.read(decode_content=False)
    assert int(resp.headers["Content-Length"]) == len(body) == len(whole) // 2  # nothing wrong on the HTTP level
    assert whole.startswith(body)
    with pytest.raises(EOFError):
        gzip.decompress(body)
    assert full_gzip(server) == whole


def test_body_faults_wait_for_a_200_and_queued_faults_keep_their_order(server):
    whole = full_gzip(server)
    server.reset()  # forget the export: the next request queues it again
    server.polls_before_ready = 2
    server.inject(truncate_gzip=True)
    server.inject(status=503)
    assert [get(server).status_code for _ in range(2)] == [202, 202]  # the body fault lets 202s pass ...
    cut = get(server)  # ... and spoils the first 200
    assert cut.status_code == 200 and cut.raw.read(decode_content=False) == whole[: len(whole) // 2]
    assert get(server).status_code == 503  # the fault queued behind it comes next
    assert get(server).raw.read(decode_content=False) == whole
    assert server.statuses() == [202, 202, 200, 503, 200]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"status": 500, "reset": True},
        {"truncate": True, "stall": 1.0},
        {"truncate_gzip": True, "reset": True},
        {"stall": 0},
        {"stall": -1.0},
        {"stall": True},
        {"reset": True, "times": 0},
    ],
)
def test_inject_refuses_ambiguous_or_bad_faults(server, kwargs):
    with pytest.raises(ValueError):
        server.inject(**kwargs)
    assert get(server).status_code == 200  # nothing was queued
