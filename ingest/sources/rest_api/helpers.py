"""HTTP for declared API sources: auth, retries with ``Retry-After``, rate limits, pagination.

- Auth: the connection's secret goes into the ``Authorization: Bearer`` header, a named header, a
  named query parameter, or HTTP basic auth. It never appears in a log line, an error message or a
  manifest: URLs are reported without their query (and with the key parameter removed where a
  query is kept), and response snippets are scrubbed of it.
- Retries: 408/425/429/5xx and connection errors are retried up to ``retry.max_attempts`` times
  per request. A ``Retry-After`` header (seconds or an HTTP date) is honoured as given when it is
  at most ``retry.max_retry_after_seconds``, otherwise the request fails (retryable, for the
  orchestrator); without it the wait is capped exponential backoff with jitter. Any other 4xx
  fails at once and is marked not retryable.
- Rate limits: ``rate_limit.requests_per_second`` spaces requests out; ``X-RateLimit-Remaining: 0``
  with ``X-RateLimit-Reset`` (seconds to wait, or a Unix time) holds the next request until the reset.
- Pagination: :func:`iter_pages` drives the declared style (page, offset, cursor, next_link, none).
"""

from __future__ import annotations

import email.utils
import json
import logging
import posixpath
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

import requests

from ingest.sources.config import ResourceSpec, SourceSpec
from ingest.sources.connection import Credentials
from ingest.sources.rest_api.settings import BODY_SNIPPET, RETRY_STATUSES, USER_AGENT
from ingest.sources.values import MISSING, get_path

log = logging.getLogger(__name__)

REDIRECT_STATUSES = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5


class RestSourceError(RuntimeError):
    """A request or a response of a declared API source failed; the message says which and why.

    ``retryable`` is False when repeating the run cannot help (a rejected secret, a bad
    parameter, a response that does not have the declared shape).
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Response:
    """One successful response: what was asked (URL without secrets, params without secrets) and the body."""

    url: str
    params: dict[str, str]
    status: int
    body: bytes
    content_type: str
    payload: Any
    link_next: str | None


def public_url(url: str, secret_param: str | None = None) -> str:
    """``url`` without credentials, and without the ``secret_param`` query parameter."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = parts.query
    if secret_param and query:
        query = urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != secret_param])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _server_path(url: str) -> str:
    """The path of ``url`` as a lenient server may read it: %XX decoded, backslashes as '/', dot segments resolved."""
    path = unquote(urlsplit(url).path).replace("\\", "/") or "/"
    return posixpath.normpath("/" + path.lstrip("/"))


def within_base(url: str, base: str) -> bool:
    """Whether ``url`` is on ``base``'s origin and under its path (where the source's credentials may go)."""
    if _origin(url) != _origin(base):
        return False
    base_path = _server_path(base)
    path = _server_path(url)
    return base_path == "/" or path == base_path or path.startswith(base_path + "/")


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or an HTTP date); None if unusable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


class _Redact(logging.Filter):
    """Replaces a secret in the log records of a library logger (urllib3 logs request URLs at DEBUG)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, "***"), None
        return True


_URLLIB3_LOGGER = "urllib3.connectionpool"


class HttpClient:
    """GETs JSON for one source with its auth, retry and rate-limit rules.

    ``sleep``, ``clock`` (monotonic, for spacing requests), ``wall`` (Unix time, for HTTP dates and
    reset times) and ``rng`` are injectable so tests run instantly and deterministically.
    """

    def __init__(
        self,
        source: SourceSpec,
        credentials: Credentials,
        session: requests.Session | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.source = source
        self.credentials = credentials
        self.session = session if session is not None else requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._wall = wall
        self._rng = rng if rng is not None else random.Random()
        self._next_allowed = 0.0
        self.requests_made = 0
        self.waited_seconds = 0.0
        self._headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        self._auth: tuple[str, str] | None = None
        self._query: dict[str, str] = {}
        self._redact: _Redact | None = None
        secret = credentials.secret
        auth = source.auth
        if auth.type == "bearer":
            self._headers["Authorization"] = f"Bearer {secret}"
        elif auth.type == "header":
            assert auth.name is not None
            self._headers[auth.name] = str(secret)
        elif auth.type == "query":
            assert auth.name is not None
            self._query[auth.name] = str(secret)
            # The key is part of the URL, which urllib3 logs at DEBUG: keep it out of those lines.
            self._redact = _Redact(str(secret))
            logging.getLogger(_URLLIB3_LOGGER).addFilter(self._redact)
        elif auth.type == "basic":
            self._auth = (str(credentials.login), str(secret))

    @property
    def secret_param(self) -> str | None:
        """The query parameter that carries the secret (query auth), else None."""
        return self.source.auth.name if self.source.auth.type == "query" else None

    def close(self) -> None:
        """Close the HTTP session (and stop redacting urllib3's log lines)."""
        self.session.close()
        if self._redact is not None:
            logging.getLogger(_URLLIB3_LOGGER).removeFilter(self._redact)
            self._redact = None

    def scrub(self, text: str) -> str:
        """``text`` with the secret (and the basic-auth login) replaced by ``***``."""
        for value in (self.credentials.secret, self.credentials.login if self._auth else None):
            if value:
                text = text.replace(value, "***")
        return text

    def _wait(self, seconds: float, why: str, what: str) -> None:
        if seconds <= 0:
            return
        log.info("%s: waiting %.1f s (%s)", what, seconds, why)
        self.waited_seconds += seconds
        self._sleep(seconds)

    def _space_out(self) -> None:
        # Not logged: at a few requests per second that would flood the task log.
        delay = self._next_allowed - self._clock()
        if delay > 0:
            self.waited_seconds += delay
            self._sleep(delay)

    def _after(self, resp: requests.Response, what: str) -> None:
        now = self._clock()
        if self.source.requests_per_second:
            self._next_allowed = max(self._next_allowed, now + 1.0 / self.source.requests_per_second)
        remaining = resp.headers.get("X-RateLimit-Remaining")
        reset = resp.headers.get("X-RateLimit-Reset")
        if remaining is not None and remaining.strip() == "0" and reset:
            try:
                value = float(reset)
            except ValueError:
                return
            # Large values are Unix times, small ones seconds to wait.
            delay = value - self._wall() if value > 1e9 else value
            delay = max(0.0, min(delay, self.source.retry.max_retry_after_seconds))
            if delay > 0:
                log.info("%s: rate limit exhausted, next request in %.1f s (X-RateLimit-Reset)", what, delay)
                self._next_allowed = max(self._next_allowed, now + delay)

    def _backoff(self, attempt: int) -> float:
        retry = self.source.retry
        delay = min(retry.backoff_cap_seconds, retry.backoff_seconds * 2 ** (attempt - 1))
        return delay * self._rng.uniform(0.5, 1.0)

    def _check_within_base(self, url: str, what: str, kind: str) -> None:
        base = self.credentials.base_url
        if not within_base(url, base):
            raise RestSourceError(
                f"{what}: {kind} goes to {public_url(url, self.secret_param)}, outside the source's base URL "
                f"{public_url(base)}; refusing to send the credentials there",
                retryable=False,
            )

    def _send(self, url: str, params: dict[str, str], what: str) -> requests.Response:
        """One GET (plus the auth), following at most MAX_REDIRECTS redirects that stay under the base URL."""
        for _ in range(MAX_REDIRECTS + 1):
            self._space_out()
            self.requests_made += 1
            resp = self.session.get(
                url,
                params={**params, **self._query},
                headers=self._headers,
                auth=self._auth,
                timeout=self.source.timeout_seconds,
                allow_redirects=False,
            )
            location = resp.headers.get("Location")
            if resp.status_code not in REDIRECT_STATUSES or not location:
                return resp
            url = urljoin(resp.url or url, location)
            self._check_within_base(url, what, f"a redirect (HTTP {resp.status_code})")
            params = {}  # the Location carries its own query
        raise RestSourceError(f"{what}: more than {MAX_REDIRECTS} redirects", retryable=False)

    def get(self, url: str, params: dict[str, str], what: str) -> Response:
        """GET ``url`` with ``params`` (plus the auth); return the parsed JSON response or raise RestSourceError."""
        shown = public_url(url, self.secret_param)
        self._check_within_base(url, what, "the request")
        retry = self.source.retry
        problem = ""
        for attempt in range(1, retry.max_attempts + 1):
            try:
                resp = self._send(url, params, what)
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = f"{type(exc).__name__} (connection failed or timed out)"
                if attempt < retry.max_attempts:
                    delay = self._backoff(attempt)
                    self._wait(delay, f"{problem}; attempt {attempt} of {retry.max_attempts}", what)
                continue
            self._after(resp, what)
            status = resp.status_code
            if status == 200:
                try:
                    payload = json.loads(resp.content.decode("utf-8-sig"))
                except (UnicodeDecodeError, ValueError) as exc:
                    problem = f"HTTP 200 but the body is not JSON ({type(exc).__name__})"
                    if attempt < retry.max_attempts:
                        self._wait(self._backoff(attempt), problem, what)
                    continue
                link_next = (resp.links.get("next") or {}).get("url")
                return Response(
                    url=public_url(resp.url or url, self.secret_param),
                    params=dict(params),
                    status=status,
                    body=resp.content,
                    content_type=resp.headers.get("Content-Type", ""),
                    payload=payload,
                    link_next=link_next,
                )
            snippet = self.scrub(resp.text[:BODY_SNIPPET].strip())
            if status not in RETRY_STATUSES:
                hint = " (check the connection's secret)" if status in (401, 403) else ""
                raise RestSourceError(f"{what}: GET {shown} answered HTTP {status}{hint}: {snippet}", retryable=False)
            problem = f"HTTP {status}: {snippet}"
            if attempt >= retry.max_attempts:
                break
            retry_after = parse_retry_after(resp.headers.get("Retry-After"), self._wall())
            if retry_after is not None:
                if retry_after > retry.max_retry_after_seconds:
                    raise RestSourceError(
                        f"{what}: GET {shown} answered HTTP {status} with Retry-After {retry_after:.0f} s, more "
                        f"than retry.max_retry_after_seconds ({retry.max_retry_after_seconds:.0f} s)"
                    )
                self._wait(retry_after, f"HTTP {status}, Retry-After", what)
            else:
                self._wait(self._backoff(attempt), f"HTTP {status}; attempt {attempt} of {retry.max_attempts}", what)
        raise RestSourceError(f"{what}: GET {shown} failed after {retry.max_attempts} attempt(s): {problem}")


# --------------------------------------------------------------------------------------------
# Pagination


def records_of(payload: Any, resource: ResourceSpec, what: str) -> list[Any]:
    """The list of records at ``records_path`` of a response body; RestSourceError when it is not a list."""
    records = get_path(payload, resource.records_path) if resource.records_path else payload
    if records is MISSING or records is None:
        keys = sorted(payload)[:10] if isinstance(payload, dict) else type(payload).__name__
        raise RestSourceError(
            f"{what}: records_path {resource.records_path!r} is not in the response (top-level keys: {keys})",
            retryable=False,
        )
    if not isinstance(records, list):
        raise RestSourceError(
            f"{what}: records_path {resource.records_path or '(body)'!r} holds a {type(records).__name__}, not a list",
            retryable=False,
        )
    return records


def _int_at(payload: Any, path: str, what: str) -> int | None:
    value = get_path(payload, path)
    if value is MISSING or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise RestSourceError(f"{what}: {path!r} should be a whole number, got {value!r}", retryable=False)
    return int(value)


@dataclass(frozen=True)
class Page:
    """One page of a resource: its number (1-based), the response and its records."""

    number: int
    response: Response
    records: list[Any]


def iter_pages(http: HttpClient, resource: ResourceSpec, params: dict[str, str], *, label: str) -> Iterator[Page]:
    """Request every page of ``resource`` (static and window ``params`` included) and yield it.

    Stops as the declared pagination says; raises RestSourceError past ``max_pages`` pages or when
    a cursor or next link repeats (the API would loop forever).
    """
    p = resource.pagination
    source = http.source
    base = http.credentials.base_url
    url = base + resource.path
    page_value = p.first_page
    offset = 0
    cursor: str | None = None
    seen: set[str] = set()
    number = 0
    while True:
        number += 1
        what = f"{label} page {number}"
        if number > source.max_pages:
            raise RestSourceError(
                f"{label}: more than max_pages={source.max_pages} pages; raise max_pages if that is expected",
                retryable=False,
            )
        request = dict(params)
        if p.type == "page":
            request[p.page_param] = str(page_value)
            if p.size_param and p.page_size:
                request[p.size_param] = str(p.page_size)
        elif p.type == "offset":
            request[p.offset_param] = str(offset)
            request[p.limit_param] = str(p.limit)
        elif p.type == "cursor":
            if p.size_param and p.page_size:
                request[p.size_param] = str(p.page_size)
            if cursor is not None:
                request[p.cursor_param] = cursor
        elif p.type == "next_link" and number > 1:
            request = {}  # the link carries its own query
        response = http.get(url, request, what)
        records = records_of(response.payload, resource, what)
        yield Page(number, response, records)

        if p.type == "page":
            if not records or (p.page_size and len(records) < p.page_size):
                return
            if p.total_pages_path:
                total = _int_at(response.payload, p.total_pages_path, what)
                if total is not None and page_value - p.first_page + 1 >= total:
                    return
            page_value += 1
        elif p.type == "offset":
            offset += len(records)
            if not records or (p.limit and len(records) < p.limit):
                return
            if p.total_path:
                total = _int_at(response.payload, p.total_path, what)
                if total is not None and offset >= total:
                    return
        elif p.type == "cursor":
            assert p.cursor_path is not None
            value = get_path(response.payload, p.cursor_path)
            if value is MISSING or value is None or value == "":
                return
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise RestSourceError(f"{what}: cursor at {p.cursor_path!r} is not a string: {value!r}",
                                      retryable=False)  # fmt: skip
            cursor = str(value)
            if cursor in seen:
                raise RestSourceError(f"{what}: the API returned a cursor it had returned before", retryable=False)
            seen.add(cursor)
        elif p.type == "next_link":
            link = get_path(response.payload, p.next_path) if p.next_path else response.link_next
            if link is MISSING or link is None or link == "":
                return
            if not isinstance(link, str):
                raise RestSourceError(f"{what}: next link at {p.next_path!r} is not a URL: {link!r}", retryable=False)
            next_url = urljoin(url, link)
            if not within_base(next_url, base):
                raise RestSourceError(
                    f"{what}: the next link points to {public_url(next_url, http.secret_param)}, outside the "
                    f"source's base URL; refusing to send the credentials there",
                    retryable=False,
                )
            key = public_url(next_url, http.secret_param)
            if key in seen:
                raise RestSourceError(f"{what}: the next link repeats a page already fetched", retryable=False)
            seen.add(key)
            url = next_url
        else:
            return
