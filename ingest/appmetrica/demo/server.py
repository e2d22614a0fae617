"""A local fake of the AppMetrica Logs API (docs/appmetrica-logs-api.md), serving generated data.

Behaviour:
- ``GET /logs/v1/export/<resource>.<csv|json>`` with ``Authorization: OAuth <token>``: no header -> 401,
  wrong token -> 403, token in the query string -> 400; bad or missing parameters -> 400 naming the
  parameter; another ``application_id`` -> 403 (no access).
- Strict about fields: the resource and every name in ``fields`` (and every ``<field>=<value>`` filter) must be
  documented for it in the field catalogue (``ingest/appmetrica/fields.yml``, transcribed from the docs), else 400
  naming the unknown field. profiles_v2 also takes custom attributes by their own names (plain identifiers).
  The catalogue is what the docs say, never the client's own lists. A documented field the demo data does not
  have comes out empty; a documented resource the demo does not generate exports no rows.
- The first request of an export (identity: resource, format and every query parameter) queues it:
  202 ``Wait for result``; identical requests poll (202 ``Progress is N%``) until ``polls_before_ready``
  polls happened, then 200 with the whole file.
- The documented cache: an identical request without ``Cache-Control: no-cache`` gets the export generated last for
  it (queued or ready) while it is younger than ``cache_seconds`` (24 h), data that arrived since included or not;
  with ``no-cache`` the export is generated anew (202 again), so a client that repeats ``no-cache`` on its polls
  never gets a file.
  ``polls_before_ready`` large gives a long 202 sequence; ``progress_bodies=False`` makes every 202
  body empty (no ``Wait for result``, no ``Progress is N%``: the client must not depend on the text).
  More than ``max_queued`` exports waiting -> 429 with the documented text.
- ``max_export_bytes``: a (part) body above it -> 400 ``Export is too big. Try to use more parts.``;
  ``parts_count``/``part_number`` split rows by a hash of ``appmetrica_device_id`` (profiles without a
  device by ``profile_id``), so the parts are disjoint and their union is the unsplit export.
- gzip when the request accepts it (``Content-Encoding: gzip``, ``Content-Length`` always set).
- ``GET /management/v1/logsapi/status`` -> ``{"logs_api_availability_status": "enabled"}``.

Fault hooks for tests (consumed in order by the next export requests)::

    server.inject(status=503)                  # the next request gets a 503 (no effect on the export)
    server.inject(status=429, times=2)         # the next two get the documented 429
    server.inject(status=500, body="boom", headers={"Retry-After": "1"})  # any status, body, headers

A body fault waits for the next response that would be a 200 (202s, 429s and 400s pass it by) and
spoils that one response; the export stays ready and the next request gets it whole::

    server.inject(truncate=True)               # Content-Length of the whole body, half of it sent, then
                                               # a clean close: "Content-Length not reached"
    server.inject(truncate=True, content_length=False)  # same, without a Content-Length header: the
                                               # gzip stream ends early and only decompression shows it
    server.inject(truncate_gzip=True)          # a well-framed response (Content-Length matches what is
                                               # sent) whose body is the first half of the file: a cut
                                               # gzip stream with nothing wrong on the HTTP level
    server.inject(reset=True)                  # half the body, then an abrupt TCP reset (SO_LINGER 0
                                               # close: RST, not FIN): "connection reset by peer"
    server.inject(stall=2.0)                   # half the body, then silence for 2 s (so a client read
                                               # timeout below 2 s fires), then the rest; stop() ends
                                               # the silence early

Data hooks for tests (applied when an export is first rendered, CSV only)::

    server.tamper("events", rows=fn)   # fn(fields, rows) -> (fields, rows): edit values, add/drop columns
    server.tamper("events", body=fn)   # fn(csv_bytes) -> bytes: byte-level damage (bad quotes, non-UTF-8)

The request log ``server.requests`` holds ``(method, path, params, status)``; it never holds a token.
"""

from __future__ import annotations

import collections
import datetime as dt
import gzip
import hmac
import io
import json
import logging
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from ingest.appmetrica.catalogue import ResourceDoc, is_custom_attribute_name, load_catalogue
from ingest.appmetrica.demo.generator import generate_rows, write_csv
from ingest.appmetrica.resources import RESOURCES
from lakehouse.settings import DEFAULT_APP_TIMEZONE

log = logging.getLogger(__name__)

EXPORT_PREFIX = "/logs/v1/export/"
STATUS_PATH = "/management/v1/logsapi/status"
WAIT_BODY = "Wait for result"
TOO_BIG_BODY = "Export is too big. Try to use more parts."
QUOTA_BODY = "There are already {n} enqueued queries for given application_id. Wait until they are completed."
TOKEN_PARAMS = frozenset({"oauth_token", "token", "access_token", "authorization"})
MAX_WINDOW_DAYS = 31
MAX_KEPT_EXPORTS = 64  # ready exports kept for re-download (the real API keeps them 24 h)
CACHE_SECONDS = 24 * 3600  # how long the API serves the export it generated last for a request
_CONTROL_PARAMS = frozenset(
    {
        "application_id",
        "date_since",
        "date_until",
        "fields",
        "date_dimension",
        "limit",
        "use_utf8_bom",
        "skip_unavailable_shards",
        "parts_count",
        "part_number",
    }
)
_DEFAULT_BODIES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    420: QUOTA_BODY,
    429: QUOTA_BODY,
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service temporarily unavailable",
    504: "Gateway timeout",
}


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


RowsHook = Callable[[list[str], list[dict[str, str]]], tuple[list[str], list[dict[str, str]]]]
BodyHook = Callable[[bytes], bytes]


@dataclass
class _Fault:
    status: int | None
    body: str | None
    truncate: bool
    content_length: bool
    headers: dict[str, str]
    truncate_gzip: bool = False
    reset: bool = False
    stall: float | None = None


@dataclass
class _Export:
    body: bytes
    rows: int
    created: float
    polls: int = 0
    ready: bool = False
    gz: bytes | None = field(default=None, repr=False)


@dataclass
class _Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    truncate: bool = False
    content_length: bool = True
    reset: bool = False
    stall: float | None = None


class DemoLogsApiServer:
    """The fake Logs API on ``http.server.ThreadingHTTPServer`` in a daemon thread.

    Use as a context manager (``with DemoLogsApiServer() as server: server.url``) or call
    :meth:`start`/:meth:`stop`. ``port=0`` picks a free port. ``compress=False`` never gzips (as if
    the client had not asked). ``progress_bodies=False`` sends every 202 with an empty body. Attributes
    ``polls_before_ready``, ``progress_bodies``, ``max_export_bytes``, ``max_queued``, ``compress`` and
    ``availability`` may be changed while it runs.
    """

    def __init__(
        self,
        token: str = "demo-token",  # noqa: S107 - the documented demo token
        application_id: str = "1234567",
        tz: str = DEFAULT_APP_TIMEZONE,
        devices: int = 2000,
        seed: int = 0,
        polls_before_ready: int = 1,
        max_export_bytes: int | None = None,
        max_queued: int = 3,
        host: str = "127.0.0.1",
        port: int = 0,
        anomaly_rate: float = 0.0,
        compress: bool = True,
        progress_bodies: bool = True,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not token:
            raise ValueError("the demo server needs a non-empty token")
        if not str(application_id).isdigit():
            raise ValueError(f"application_id must be digits, got {application_id!r}")
        self._token = token
        self.application_id = str(application_id)
        self.tz = ZoneInfo(tz)
        self.devices = devices
        self.seed = seed
        self.polls_before_ready = polls_before_ready
        self.max_export_bytes = max_export_bytes
        self.max_queued = max_queued
        self.anomaly_rate = anomaly_rate
        self.compress = compress
        self.progress_bodies = progress_bodies
        self.cache_seconds = cache_seconds
        self._clock = clock
        self.availability = "enabled"
        self.host = host
        self.port = port
        self.requests: list[tuple[str, str, dict[str, str], int]] = []
        self._exports: collections.OrderedDict[tuple[Any, ...], _Export] = collections.OrderedDict()
        self._faults: collections.deque[_Fault] = collections.deque()
        self._tampers: dict[str, tuple[RowsHook | None, BodyHook | None]] = {}
        self._lock = threading.RLock()
        self._stopping = threading.Event()  # set by stop(): ends injected stalls early
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"DemoLogsApiServer(url={self.url if self._httpd else None!r}, application_id={self.application_id!r})"

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> DemoLogsApiServer:
        """Bind and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        httpd.daemon_threads = True
        httpd.demo = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"demo-logs-api-{self.port}", daemon=True
        )
        self._thread.start()
        log.info("demo Logs API serving on %s (application_id=%s)", self.url, self.application_id)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def serve_forever(self) -> None:
        """Block until :meth:`stop` is called from another thread (or the process ends)."""
        self.start()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> DemoLogsApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8765`` (the port is known once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- test hooks ----------------------------------------------------------------------------

    def inject(
        self,
        status: int | None = None,
        body: str | None = None,
        *,
        times: int = 1,
        truncate: bool = False,
        content_length: bool = True,
        headers: dict[str, str] | None = None,
        truncate_gzip: bool = False,
        reset: bool = False,
        stall: float | None = None,
    ) -> None:
        """Script the next ``times`` export responses (the module docstring shows each fault).

        With ``status``: the next request gets that status and ``body`` (a sensible default per status,
        the documented text for 429/420) without touching the export's state. The body faults spoil
        the next response that would be a 200: ``truncate=True`` sends only half its body and closes
        the connection (``content_length=False`` also leaves out the Content-Length header);
        ``truncate_gzip=True`` sends a complete response of half the body (Content-Length matching);
        ``reset=True`` sends half the body, then resets the TCP connection; ``stall=seconds`` sends
        half the body, goes silent for that long, then sends the rest. ``headers`` are added to the
        scripted response. Exactly one of these modes per call.
        """
        if stall is not None and (isinstance(stall, bool) or not stall > 0):
            raise ValueError(f"inject(stall=...) needs a number of seconds > 0, got {stall!r}")
        modes = [status is not None, truncate, truncate_gzip, reset, stall is not None]
        if sum(modes) != 1:
            raise ValueError(
                "inject() needs exactly one of status=..., truncate=True, truncate_gzip=True, reset=True, stall=..."
            )
        if times < 1:
            raise ValueError(f"inject(times=...) must be >= 1, got {times!r}")
        with self._lock:
            for _ in range(times):
                self._faults.append(
                    _Fault(
                        status,
                        body,
                        truncate,
                        content_length,
                        dict(headers or {}),
                        truncate_gzip=truncate_gzip,
                        reset=reset,
                        stall=float(stall) if stall is not None else None,
                    )
                )

    def tamper(self, resource: str, *, rows: RowsHook | None = None, body: BodyHook | None = None) -> None:
        """Damage the CSV exports of ``resource`` rendered from now on (tests of the quarantine and drift).

        ``rows(fields, rows)`` gets the export's field names and row dicts and returns the (possibly
        changed) pair that is written as CSV; ``body(data)`` then gets the CSV bytes and returns the
        bytes served. Exports already rendered keep their bytes; :meth:`reset` removes every hook.
        """
        if resource not in RESOURCES:
            raise ValueError(f"unknown resource {resource!r}; known: {', '.join(RESOURCES)}")
        if rows is None and body is None:
            raise ValueError("tamper() needs rows=... and/or body=...")
        with self._lock:
            self._tampers[resource] = (rows, body)

    def expire_exports(self) -> None:
        """Forget the rendered exports (as the real API does after a while): the next request renders anew,
        so data that arrived late, or a changed :meth:`tamper` hook, shows up in it."""
        with self._lock:
            self._exports.clear()

    def clear_faults(self) -> None:
        """Drop every scripted response not yet used."""
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """Forget every export, scripted fault and logged request."""
        with self._lock:
            self._exports.clear()
            self._faults.clear()
            self._tampers.clear()
            self.requests.clear()

    def statuses(self) -> list[int]:
        """HTTP statuses of the logged requests, in order."""
        with self._lock:
            return [r[3] for r in self.requests]

    # -- request handling (called from handler threads) ----------------------------------------

    def _log_request(self, method: str, path: str, params: dict[str, str], status: int) -> None:
        safe = {k: v for k, v in params.items() if k.lower() not in TOKEN_PARAMS}
        with self._lock:
            self.requests.append((method, path, safe, status))

    def _check_auth(self, authorization: str | None, params: dict[str, str]) -> None:
        if any(k.lower() in TOKEN_PARAMS for k in params):
            raise _BadRequest(400, "Pass the OAuth token in the Authorization header, never in the URL.")
        if not authorization:
            raise _BadRequest(401, "Unauthorized: no OAuth token. Send the header 'Authorization: OAuth <token>'.")
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "oauth" or not hmac.compare_digest(value.strip().encode(), self._token.encode()):
            raise _BadRequest(403, "Forbidden: invalid OAuth token.")

    def _handle(self, method: str, raw_path: str, headers: Any) -> _Response:
        split = urlsplit(raw_path)
        path = split.path
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        try:
            if method != "GET":
                raise _BadRequest(405, f"Method {method} is not allowed")
            if path == STATUS_PATH:
                self._check_auth(headers.get("Authorization"), params)
                body = json.dumps({"logs_api_availability_status": self.availability}).encode()
                response = _Response(200, body, "application/json; charset=utf-8")
            elif path.startswith(EXPORT_PREFIX):
                self._check_auth(headers.get("Authorization"), params)
                response = self._export(path[len(EXPORT_PREFIX) :], params, headers)
            else:
                raise _BadRequest(404, f"Not found: {path}")
        except _BadRequest as exc:
            response = _Response(exc.status, exc.message.encode())
        self._log_request(method, path, params, response.status)
        return response

    def _export(self, name: str, params: dict[str, str], headers: Any) -> _Response:
        resource_name, dot, fmt = name.rpartition(".")
        if not dot or fmt not in ("csv", "json"):
            raise _BadRequest(400, f"Unsupported export format in {name!r}: use .csv or .json")
        documented = load_catalogue()
        resource = documented.get(resource_name)
        if resource is None:
            raise _BadRequest(400, f"Unknown resource: {resource_name!r}. Known: {', '.join(documented)}")
        with self._lock:
            fault = self._faults[0] if self._faults else None
            if fault is not None and fault.status is not None:
                self._faults.popleft()
                text = fault.body if fault.body is not None else _DEFAULT_BODIES.get(fault.status, "Injected")
                return _Response(fault.status, text.format(n=self.max_queued).encode(), headers=fault.headers)
        query = _parse_export_params(resource, params, self.application_id)
        key = (resource.name, fmt, tuple(sorted(params.items())))
        fresh = "no-cache" in (headers.get("Cache-Control") or "").lower()
        with self._lock:
            export = self._exports.get(key)
            if export is not None and (fresh or self._clock() - export.created >= self.cache_seconds):
                del self._exports[key]  # a new file is generated, with whatever data has arrived since
                export = None
            if export is None:
                body, rows = self._render(resource, fmt, query)
                if self.max_export_bytes is not None and len(body) > self.max_export_bytes:
                    return _Response(400, TOO_BIG_BODY.encode())
                waiting = sum(1 for e in self._exports.values() if not e.ready)
                if waiting >= self.max_queued:
                    return _Response(429, QUOTA_BODY.format(n=self.max_queued).encode())
                export = _Export(body=body, rows=rows, created=self._clock())
                self._exports[key] = export
                if self.polls_before_ready > 0:
                    return _Response(202, WAIT_BODY.encode() if self.progress_bodies else b"")
                export.ready = True
                self._forget_old_exports()
            elif not export.ready:
                export.polls += 1
                if export.polls < self.polls_before_ready:
                    percent = min(99, 100 * export.polls // max(1, self.polls_before_ready))
                    text = f"Progress is {percent}%" if self.progress_bodies else ""
                    return _Response(202, text.encode())
                export.ready = True
                self._forget_old_exports()
            payload = export.body
            extra: dict[str, str] = {}
            if self.compress and "gzip" in (headers.get("Accept-Encoding") or "").lower():
                if export.gz is None:
                    export.gz = gzip.compress(export.body, compresslevel=6, mtime=0)
                payload = export.gz
                extra["Content-Encoding"] = "gzip"
            truncate = reset = False
            content_length = True
            stall = None
            fault = self._faults[0] if self._faults and self._faults[0].status is None else None
            if fault is not None:  # a body fault waiting for a 200
                self._faults.popleft()
                extra.update(fault.headers)
                truncate, content_length = fault.truncate, fault.content_length
                reset, stall = fault.reset, fault.stall
                if fault.truncate_gzip:
                    payload = payload[: len(payload) // 2]
        ctype = "text/csv; charset=utf-8" if fmt == "csv" else "application/json; charset=utf-8"
        return _Response(
            200, payload, ctype, extra, truncate=truncate, content_length=content_length, reset=reset, stall=stall
        )

    def _forget_old_exports(self) -> None:
        """Bound memory: drop the oldest ready exports beyond MAX_KEPT_EXPORTS (queued ones stay)."""
        ready = [k for k, e in self._exports.items() if e.ready]
        for key in ready[: max(0, len(ready) - MAX_KEPT_EXPORTS)]:
            del self._exports[key]

    def _render(self, resource: ResourceDoc, fmt: str, query: _Query) -> tuple[bytes, int]:
        rows = self._select_rows(resource, query)
        if fmt == "csv":
            rows_hook, body_hook = self._tampers.get(resource.name, (None, None))
            fields: list[str] = list(query.fields)
            if rows_hook is not None:
                fields, rows = rows_hook(fields, [dict(r) for r in rows])
            buf = io.StringIO(newline="")
            write_csv(([row.get(f, "") for f in fields] for row in rows), fields, buf, bom=query.bom)
            data = buf.getvalue().encode("utf-8")
            if body_hook is not None:
                data = body_hook(data)
            return data, len(rows)
        data = [{f: row.get(f, "") for f in query.fields} for row in rows]
        text = json.dumps({"data": data}, ensure_ascii=False)
        return (("\ufeff" if query.bom else "") + text).encode("utf-8"), len(rows)

    def _select_rows(self, doc: ResourceDoc, query: _Query) -> list[dict[str, str]]:
        resource = RESOURCES.get(doc.name)
        if resource is None:
            return []  # documented, but the demo app generates none of it
        first, last = query.since.date(), query.until.date()
        receive = query.date_dimension == "receive" and resource.date_field is not None
        if receive:
            first -= dt.timedelta(days=2)  # late deliveries of earlier days arrive inside the window
        days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        since_s = query.since.strftime("%Y-%m-%d %H:%M:%S")
        until_s = query.until.strftime("%Y-%m-%d %H:%M:%S")
        selected: list[dict[str, str]] = []
        by_profile: dict[str, dict[str, str]] = {}
        for day in days:
            rows = generate_rows(
                resource.name,
                day,
                application_id=self.application_id,
                tz=self.tz,
                devices=self.devices,
                seed=self.seed,
                anomaly_rate=self.anomaly_rate,
            )
            whole_day = since_s <= f"{day} 00:00:00" and f"{day} 23:59:59" <= until_s
            for row in rows:
                if resource.date_field is None:
                    by_profile[row["profile_id"]] = row  # a later day's row replaces the earlier one
                    continue
                if receive:
                    value = row[resource.date_field.replace("_datetime", "_receive_datetime")]
                    if not since_s <= value <= until_s:
                        continue
                elif not whole_day and not since_s <= row[resource.date_field] <= until_s:
                    continue
                selected.append(row)
        if resource.date_field is None:
            selected = list(by_profile.values())
        out = []
        for row in selected:
            if query.filters and any(row.get(k) != v for k, v in query.filters.items()):
                continue
            if query.parts_count > 1 and part_of(row, query.parts_count) != query.part_number:
                continue
            out.append(row)
            if query.limit is not None and len(out) >= query.limit:
                break
        return out


def part_of(row: dict[str, str], parts_count: int) -> int:
    """The part (0..parts_count-1) a row belongs to: crc32 of its device id (else profile id)."""
    key = row.get("appmetrica_device_id") or row.get("profile_id") or ""
    return zlib.crc32(key.encode("utf-8")) % parts_count


@dataclass(frozen=True)
class _Query:
    fields: tuple[str, ...]
    since: dt.datetime
    until: dt.datetime
    date_dimension: str
    limit: int | None
    bom: bool
    parts_count: int
    part_number: int
    filters: dict[str, str]


def _parse_when(params: dict[str, str], name: str, *, end: bool) -> dt.datetime:
    raw = params.get(name)
    if raw is None or not raw.strip():
        raise _BadRequest(400, f"Parameter {name} is required (yyyy-mm-dd hh:mm:ss)")
    text = raw.strip()
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            value = dt.datetime.strptime(text, pattern)
        except ValueError:
            continue
        if pattern == "%Y-%m-%d" and end:
            value = value.replace(hour=23, minute=59, second=59)
        return value
    raise _BadRequest(400, f"Parameter {name} has a bad value {raw!r}: expected yyyy-mm-dd hh:mm:ss")


def _parse_bool(params: dict[str, str], name: str) -> bool:
    raw = params.get(name, "false").strip().lower()
    if raw not in ("true", "false", "1", "0"):
        raise _BadRequest(400, f"Parameter {name} must be true or false, got {raw!r}")
    return raw in ("true", "1")


def _parse_int(params: dict[str, str], name: str, low: int, high: int) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.strip().isdigit() or not low <= int(raw) <= high:
        raise _BadRequest(400, f"Parameter {name} must be an integer in [{low}, {high}], got {raw!r}")
    return int(raw)


def _is_field(resource: ResourceDoc, name: str) -> bool:
    """True when the docs let ``name`` be requested from ``resource`` (a documented field or, where the docs
    allow them, a custom attribute's own name)."""
    return resource.is_documented(name) or (resource.allows_custom_attributes and is_custom_attribute_name(name))


def _parse_export_params(resource: ResourceDoc, params: dict[str, str], application_id: str) -> _Query:
    app = params.get("application_id")
    if app is None or not app.strip():
        raise _BadRequest(400, "Parameter application_id is required")
    if not app.strip().isdigit():
        raise _BadRequest(400, f"Parameter application_id must be a number, got {app!r}")
    if app.strip() != application_id:
        raise _BadRequest(403, f"Forbidden: no access to application_id {app.strip()}")
    unknown = [k for k in params if k not in _CONTROL_PARAMS and not resource.is_documented(k)]
    if unknown:
        raise _BadRequest(400, f"Unknown parameter(s) for {resource.name}: {', '.join(sorted(unknown))}")
    raw_fields = params.get("fields")
    if raw_fields is None or not raw_fields.strip():
        raise _BadRequest(400, "Parameter fields is required (comma-separated field names)")
    fields = tuple(f.strip() for f in raw_fields.split(","))
    bad = [f for f in fields if not _is_field(resource, f)]
    if bad:
        raise _BadRequest(400, f"Parameter fields has unknown field(s) for {resource.name}: {', '.join(bad)}")
    twice = sorted({f for f in fields if fields.count(f) > 1})
    if twice:
        raise _BadRequest(400, f"Parameter fields lists field(s) twice: {', '.join(twice)}")
    if resource.takes_dates:
        since = _parse_when(params, "date_since", end=False)
        until = _parse_when(params, "date_until", end=True)
    else:
        since = _parse_when({"d": "2000-01-01 00:00:00"}, "d", end=False)
        until = since
    if since > until:
        raise _BadRequest(400, "Parameter date_since must not be later than date_until")
    if (until.date() - since.date()).days >= MAX_WINDOW_DAYS:
        raise _BadRequest(400, f"Parameters date_since..date_until span more than {MAX_WINDOW_DAYS} days")
    dimension = params.get("date_dimension", "default")
    if dimension not in ("default", "receive"):
        raise _BadRequest(400, f"Parameter date_dimension must be default or receive, got {dimension!r}")
    limit = _parse_int(params, "limit", 1, 10**9)
    parts_count = _parse_int(params, "parts_count", 1, 1024)
    part_number = _parse_int(params, "part_number", 0, 1023)
    if (parts_count is None) != (part_number is None):
        raise _BadRequest(400, "Parameters parts_count and part_number go together")
    if parts_count is not None and part_number is not None and part_number >= parts_count:
        raise _BadRequest(400, f"Parameter part_number must be below parts_count ({parts_count})")
    _parse_bool(params, "skip_unavailable_shards")
    return _Query(
        fields=fields,
        since=since,
        until=until,
        date_dimension=dimension,
        limit=limit,
        bom=_parse_bool(params, "use_utf8_bom"),
        parts_count=parts_count or 1,
        part_number=part_number or 0,
        filters={k: v for k, v in params.items() if resource.is_documented(k)},
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "DemoAppMetricaLogsAPI/1.0"

    def _dispatch(self) -> None:
        demo: DemoLogsApiServer = self.server.demo  # type: ignore[attr-defined]
        response = demo._handle(self.command, self.path, self.headers)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        body = response.body
        if response.content_length:
            self.send_header("Content-Length", str(len(body)))
        if response.truncate or response.reset or response.stall or not response.content_length:
            self.send_header("Connection", "close")
            self.close_connection = True
        if self.command != "GET":
            self.close_connection = True  # a request body, if any, was not read
        self.end_headers()
        if self.command == "HEAD":
            return
        half = len(body) // 2
        try:
            if response.truncate:
                self._write(body[:half])
            elif response.reset:
                self._write(body[:half])
                self._reset_connection()
            elif response.stall:
                self._write(body[:half])
                demo._stopping.wait(response.stall)
                self._write(body[half:])
            else:
                self._write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _write(self, body: bytes) -> None:
        view = memoryview(body)
        for start in range(0, len(view), 1 << 16):
            self.wfile.write(view[start : start + (1 << 16)])
        self.wfile.flush()

    def _reset_connection(self) -> None:
        """Close the socket at once with SO_LINGER 0, so the peer gets a TCP RST instead of a FIN."""
        sock = self.connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        os.close(sock.detach())  # the server's later shutdown()/close() of the detached socket are no-ops
        self.close_connection = True

    do_GET = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_DELETE = _dispatch
    do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        # The default writes the request line (with its query) to stderr; keep it out of the way.
        log.debug("%s %s", self.address_string(), urlsplit(self.path).path)
