"""A local job-vacancies API with generated data: the worked example of a declared REST source.

Data (:func:`generate_versions`): vacancies published over a range of days, each with an
employer, an area, a salary (from/to/currency, sometimes open-ended or absent), key skills and
``published_at``; about a third are updated later (salary raised, a skill added), a few twice on
the same day. The API behaves like a change feed: a request for a window returns the *versions*
whose ``updated_at`` falls in it, so a daily run sees each vacancy as it was that day. Timestamps
carry the +03:00 offset, as Russian job boards send them.

Endpoints (JSON; every one takes ``date_from`` (required) and ``date_to``, ISO 8601):

- ``GET /v1/vacancies?page=0&per_page=20``: ``{"items", "found", "pages", "page", "per_page"}`` (page numbers from 0)
- ``GET /v1/vacancies/by-offset?offset=0&limit=20``: ``{"items", "total"}``
- ``GET /v1/vacancies/by-cursor?cursor=...&limit=20``: ``{"data", "next_cursor"}`` (null on the last page)
- ``GET /v1/vacancies/by-link?page_token=...``: ``{"items", "links": {"next"}}`` and a ``Link: rel="next"`` header

Auth: the token as ``Authorization: Bearer``, ``X-Api-Key``, the ``api_key`` query parameter or
basic auth (any user name); none -> 401, a wrong one -> 403. ``server.inject(status=429,
headers={"Retry-After": "1"})`` scripts the next responses. ``server.requests`` logs
``(path, params without the key, status)``.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import hmac
import json
import logging
import random
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

log = logging.getLogger(__name__)

MSK = dt.timezone(dt.timedelta(hours=3))
DEFAULT_START = dt.date(2026, 10, 26)
MAX_PER_PAGE = 100

_TITLES = ("Python Developer", "Data Engineer", "Backend Developer", "Data Analyst", "DevOps Engineer",
           "ML Engineer", "Frontend Developer", "QA Engineer", "Go Developer", "Java Developer")  # fmt: skip
_SKILLS = ("Python", "SQL", "Docker", "Kubernetes", "Java", "Go", "Machine Learning", "Airflow", "Spark", "Git",
           "Linux", "PostgreSQL", "React", "TypeScript", "Data Analysis", "English")  # fmt: skip
_AREAS = (("1", "Moscow"), ("2", "Saint Petersburg"), ("88", "Kazan"), ("4", "Novosibirsk"), ("113", "Remote"))
_CURRENCIES = (("RUR", 0.7, 60_000, 450_000, 5_000), ("USD", 0.2, 1_500, 8_000, 100), ("EUR", 0.1, 1_500, 7_000, 100))


def _fmt(ts: dt.datetime) -> str:
    return ts.astimezone(MSK).strftime("%Y-%m-%dT%H:%M:%S%z")


def _salary(rng: random.Random) -> dict[str, Any] | None:
    if rng.random() < 0.25:
        return None
    pick = rng.random()
    chosen = _CURRENCIES[-1]
    for option in _CURRENCIES:
        if pick < option[1]:
            chosen = option
            break
        pick -= option[1]
    currency, _, low, high, step = chosen
    base = rng.randrange(low, high, step)
    shape = rng.random()
    lower = base if shape < 0.8 else None
    upper = base + rng.randrange(step, (high - low) // 2, step) if shape > 0.2 else None
    return {"from": lower, "to": upper, "currency": currency, "gross": rng.random() < 0.5}


def _skills(rng: random.Random) -> list[dict[str, str]]:
    names = rng.sample(_SKILLS, rng.randint(0, 5))
    if names and rng.random() < 0.15:
        names.append(f" {names[0].lower()} ")  # the same skill again, spelt differently
    return [{"name": n} for n in names]


def generate_versions(
    start: dt.date = DEFAULT_START, days: int = 14, per_day: int = 30, seed: int = 0, anomaly_rate: float = 0.0
) -> list[dict[str, Any]]:
    """Every version of every vacancy, ordered by (``updated_at``, ``id``); deterministic for a seed.

    Version 1 of a vacancy has ``updated_at == published_at``; about a third get a later version
    (1 hour to 4 days later), and some of those a third version on the same day as the second.
    With ``anomaly_rate`` > 0 that share of versions is spoiled (a salary "from" that is not a
    number, a ``published_at`` that is not a time, or no ``id``), for the quarantine.
    """
    rng = random.Random(seed)
    employers = [(f"e{100 + i}", f"Employer {i:02d}") for i in range(25)]
    versions: list[dict[str, Any]] = []
    serial = 1_000_000
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        for _ in range(per_day):
            serial += 1
            published = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(
                seconds=rng.randrange(86_400)
            )
            employer = rng.choice(employers)
            area = rng.choice(_AREAS)
            record: dict[str, Any] = {
                "id": str(serial),
                "name": rng.choice(_TITLES),
                "employer": {"id": employer[0], "name": employer[1]},
                "area": {"id": area[0], "name": area[1]},
                "salary": _salary(rng),
                "key_skills": _skills(rng),
                "published_at": _fmt(published),
                "updated_at": _fmt(published),
                "archived": False,
            }
            versions.append(record)
            if rng.random() < 0.33:
                updated = published + dt.timedelta(seconds=rng.randrange(3_600, 4 * 86_400))
                second = json.loads(json.dumps(record))
                second["updated_at"] = _fmt(updated)
                if second["salary"] and second["salary"]["from"] is not None:
                    second["salary"]["from"] += 10_000 if second["salary"]["currency"] == "RUR" else 200
                second["key_skills"].append({"name": rng.choice(_SKILLS)})
                versions.append(second)
                same_day_end = dt.datetime.combine(updated.date(), dt.time(23, 59, 59), tzinfo=dt.UTC)
                if rng.random() < 0.2 and updated < same_day_end - dt.timedelta(minutes=2):
                    third = json.loads(json.dumps(second))
                    third["updated_at"] = _fmt(updated + dt.timedelta(seconds=60))
                    third["archived"] = True
                    versions.append(third)
    if anomaly_rate > 0:
        spoil = random.Random(seed + 1)
        for record in versions:
            if spoil.random() < anomaly_rate:
                kind = spoil.randrange(3)
                if kind == 0:
                    record["salary"] = {"from": "negotiable", "to": None, "currency": "RUR", "gross": True}
                elif kind == 1:
                    record["published_at"] = "yesterday"
                else:
                    record.pop("id")
    versions.sort(key=lambda r: (_parse(r["updated_at"]), r.get("id", "")))
    return versions


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


class _HttpError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class _Fault:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


class VacanciesApiServer:
    """The demo API on ``ThreadingHTTPServer`` in a daemon thread (``port=0`` picks a free port).

    Use as a context manager: ``with VacanciesApiServer(token="t") as api: api.url``. ``versions``
    is the whole data set (see :func:`generate_versions`); tests compute their oracle from it.
    """

    def __init__(
        self,
        token: str = "demo-vacancies-token",  # noqa: S107 - the documented demo token
        *,
        versions: list[dict[str, Any]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        **generate: Any,
    ) -> None:
        if not token:
            raise ValueError("the demo server needs a non-empty token")
        self._token = token
        self.versions = versions if versions is not None else generate_versions(**generate)
        self.host = host
        self.port = port
        self.requests: list[tuple[str, dict[str, str], int]] = []
        self._faults: collections.deque[_Fault] = collections.deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"VacanciesApiServer(url={self.url if self._httpd else None!r}, versions={len(self.versions)})"

    def start(self) -> VacanciesApiServer:
        """Bind and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            return self
        httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        httpd.daemon_threads = True
        httpd.api = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"vacancies-api-{self.port}", daemon=True)  # fmt: skip
        self._thread.start()
        log.info("demo vacancies API serving on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> VacanciesApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8780``."""
        return f"http://{self.host}:{self.port}"

    def inject(self, status: int, body: str = "", *, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """The next ``times`` API requests get ``status`` with ``body`` and ``headers`` (e.g. Retry-After)."""
        with self._lock:
            for _ in range(times):
                self._faults.append(_Fault(status, body or f"injected {status}", dict(headers or {})))

    def statuses(self) -> list[int]:
        """HTTP statuses of the logged requests, in order."""
        with self._lock:
            return [r[2] for r in self.requests]

    # -- request handling ------------------------------------------------------------------------

    def _check_auth(self, headers: Any, params: dict[str, str]) -> None:
        offered = []
        auth = headers.get("Authorization") or ""
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer":
            offered.append(value.strip())
        elif scheme.lower() == "basic":
            try:
                offered.append(base64.b64decode(value.strip()).decode().partition(":")[2])
            except (ValueError, UnicodeDecodeError):
                offered.append("")
        if headers.get("X-Api-Key") is not None:
            offered.append(headers.get("X-Api-Key"))
        if "api_key" in params:
            offered.append(params["api_key"])
        if not offered:
            raise _HttpError(401, "no credentials: send Authorization: Bearer <token>, X-Api-Key or api_key")
        if not any(hmac.compare_digest(o.encode(), self._token.encode()) for o in offered):
            raise _HttpError(403, "invalid token")

    def _window(self, params: dict[str, str]) -> list[dict[str, Any]]:
        def parse(name: str) -> dt.datetime | None:
            raw = params.get(name)
            if raw is None:
                return None
            try:
                value = dt.datetime.fromisoformat(raw)
            except ValueError:
                raise _HttpError(400, f"{name} must be an ISO 8601 date-time, got {raw!r}") from None
            if value.tzinfo is None:
                raise _HttpError(400, f"{name} must carry a UTC offset, got {raw!r}")
            return value

        start, end = parse("date_from"), parse("date_to")
        if start is None:
            raise _HttpError(400, "date_from is required")
        out = []
        for record in self.versions:
            updated = _parse(record["updated_at"])
            if updated >= start and (end is None or updated < end):
                out.append(record)
        return out

    @staticmethod
    def _int(params: dict[str, str], name: str, default: int, low: int, high: int | None = None) -> int:
        raw = params.get(name, str(default))
        if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
            raise _HttpError(400, f"{name} must be an integer in [{low}, {high or 'inf'}], got {raw!r}")
        return int(raw)

    def handle(self, raw_path: str, headers: Any) -> tuple[int, dict[str, str], bytes]:
        """Answer one GET: (status, headers, body). Called from the handler threads."""
        split = urlsplit(raw_path)
        path, params = split.path, dict(parse_qsl(split.query, keep_blank_values=True))
        status, extra, body = 500, {}, b""
        try:
            with self._lock:
                fault = self._faults.popleft() if self._faults else None
            if fault is not None:
                raise _HttpError(fault.status, fault.body, fault.headers)
            self._check_auth(headers, params)
            items = self._window(params)
            if path == "/v1/vacancies":
                per_page = self._int(params, "per_page", 20, 1, MAX_PER_PAGE)
                page = self._int(params, "page", 0, 0)
                pages = (len(items) + per_page - 1) // per_page
                chunk = items[page * per_page : (page + 1) * per_page]
                payload: dict[str, Any] = {"items": chunk, "found": len(items), "pages": pages, "page": page,
                                           "per_page": per_page}  # fmt: skip
            elif path == "/v1/vacancies/by-offset":
                offset, limit = self._int(params, "offset", 0, 0), self._int(params, "limit", 20, 1, MAX_PER_PAGE)
                payload = {"items": items[offset : offset + limit], "total": len(items)}
            elif path == "/v1/vacancies/by-cursor":
                limit = self._int(params, "limit", 20, 1, MAX_PER_PAGE)
                start = _decode_cursor(params.get("cursor"))
                nxt = start + limit
                payload = {"data": items[start:nxt], "next_cursor": _encode_cursor(nxt) if nxt < len(items) else None}
            elif path == "/v1/vacancies/by-link":
                start = self._int(params, "page_token", 0, 0)
                chunk = items[start : start + 20]
                link = None
                if start + 20 < len(items):
                    query = {k: v for k, v in params.items() if k != "api_key"} | {"page_token": str(start + 20)}
                    link = f"/v1/vacancies/by-link?{urlencode(query)}"
                    extra["Link"] = f'<{link}>; rel="next"'
                payload = {"items": chunk, "links": {"next": link}}
            else:
                raise _HttpError(404, f"not found: {path}")
            status, body = 200, json.dumps(payload, ensure_ascii=False).encode()
            extra["Content-Type"] = "application/json; charset=utf-8"
        except _HttpError as exc:
            status, body = exc.status, json.dumps({"error": exc.message}).encode()
            extra.update(exc.headers)
            extra.setdefault("Content-Type", "application/json; charset=utf-8")
        with self._lock:
            self.requests.append((path, {k: v for k, v in params.items() if k != "api_key"}, status))
        return status, extra, body


def _encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"i:{index}".encode()).decode()


def _decode_cursor(raw: str | None) -> int:
    if raw is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(raw.encode()).decode()
        if not text.startswith("i:") or not text[2:].isdigit():
            raise ValueError(text)
        return int(text[2:])
    except (ValueError, UnicodeDecodeError):
        raise _HttpError(400, "cursor is not one this API issued") from None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "DemoVacanciesApi/1.0"

    def do_GET(self) -> None:
        api: VacanciesApiServer = self.server.api  # type: ignore[attr-defined]
        status, headers, body = api.handle(self.path, self.headers)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # The default would print request lines (query strings may carry an api_key) to stderr.
        log.debug("demo vacancies API: %s", self.command)


def main(argv: list[str] | None = None) -> int:
    """Run the demo API in the foreground: ``python -m ingest.sources.demo.vacancies --port 8780``."""
    import argparse
    import os

    parser = argparse.ArgumentParser(description="The demo job-vacancies API (token from DEMO_VACANCIES_TOKEN).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8780)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--per-day", type=int, default=30)
    parser.add_argument("--start", default=DEFAULT_START.isoformat(), help="first publication day, YYYY-MM-DD")
    args = parser.parse_args(argv)
    token = os.environ.get("DEMO_VACANCIES_TOKEN", "demo-vacancies-token")
    server = VacanciesApiServer(token, host=args.host, port=args.port, start=dt.date.fromisoformat(args.start),
                                days=args.days, per_day=args.per_day)  # fmt: skip
    server.start()
    print(f"demo vacancies API on {server.url} ({len(server.versions)} versions); Ctrl-C to stop", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
