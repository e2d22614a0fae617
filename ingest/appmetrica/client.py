"""AppMetrica Logs API client: one export (resource x day) downloaded to files, bytes exactly as sent.

Protocol (see docs/appmetrica-logs-api.md): the first request queues an export (202), the identical
request is repeated until the file is ready (200); 429/420 mean "quota, wait"; 5xx, refused or reset
connections, read timeouts and bodies that arrive incomplete (Content-Length not reached, a cut gzip
stream, a stall longer than ``read_timeout_seconds``) are retried with capped exponential backoff and
jitter; a 400 saying "Try to use more parts" restarts the export in ``parts_count`` = 2, 4, 8 ... parts;
400/401/403 fail at once (``LogsApiError.retryable`` is False) naming the cause.

Every wait of one part (202 polls, quota waits, backoff, and the time spent in the requests themselves)
is bounded by ``poll_timeout_seconds``; consecutive failures by ``retries``. A final failure raises
``LogsApiError`` naming the resource, the date window, the last problem and the number of attempts; the
part being written is only ever a hidden temporary file, removed on failure.

Fresh exports: the API serves the last file it generated for an identical request (kept 24 h) unless asked
otherwise, so a rerun would get a stale file without the late events. The request that starts an export of a part
sends ``Cache-Control: no-cache`` (a new file); once the server has accepted it (a 202 or the file) the polls go
without it, as the official loader does: ``no-cache`` on a poll would start the export anew every time.

The token travels only in the ``Authorization`` header; no log line or error message contains it. Redirects are
followed; one to another host or port, or from https to http, never carries the header (requests drops it there: a
test pins it), and an error after such a redirect says which host the connection should name instead.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import json
import logging
import random
import re
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from ingest.appmetrica.resources import RESOURCES, Resource, requested_fields
from ingest.appmetrica.settings import CONNECTION_ID, AppMetricaSettings
from lakehouse.fsutil import atomic_file
from lakehouse.settings import ConfigError, parse_day

log = logging.getLogger(__name__)

EXPORT_PATH = "/logs/v1/export/{resource}.{fmt}"
CSV_FIELD_SIZE_LIMIT = 1 << 24
STREAM_CHUNK = 1 << 20
MORE_PARTS_MARKER = "try to use more parts"
_PROGRESS_RE = re.compile(r"progress\s+is\s+(\d{1,3})\s*%", re.IGNORECASE)
_BODY_SNIPPET = 500
FRESH_EXPORT_HEADERS = {"Cache-Control": "no-cache"}


class LogsApiError(RuntimeError):
    """The Logs API export failed; the message says which export, what happened and what was tried.

    ``retryable`` is False when repeating the same request cannot help (bad parameters, a
    rejected token, no access): orchestrators should fail at once instead of retrying.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class _MorePartsNeeded(Exception):
    """Internal: the server asked for the export to be split into more parts."""


class _BrokenBody(Exception):
    """Internal: a 200 body arrived incomplete or undecodable (retryable)."""


@dataclass(frozen=True)
class PartResult:
    """One downloaded part of an export, as written to ``dest_dir``.

    ``file`` is the file name only; ``content_encoding`` is ``gzip`` or ``identity``; ``bytes`` and
    ``sha256`` describe the file exactly as stored (the bytes as received); ``rows`` counts data records.
    """

    file: str
    part_number: int
    parts_count: int
    http_status: int
    content_encoding: str
    bytes: int
    sha256: str
    rows: int

    def as_dict(self) -> dict[str, Any]:
        """The part as a JSON-ready dict (used in the bronze manifest)."""
        return asdict(self)


def part_file_name(resource: str, part_number: int, parts_count: int, fmt: str, content_encoding: str) -> str:
    """``<resource>.part-00000-of-00001.csv[.gz]``: the bronze name of one part."""
    suffix = ".gz" if content_encoding == "gzip" else ""
    return f"{resource}.part-{part_number:05d}-of-{parts_count:05d}.{fmt}{suffix}"


def get_resource_checked(resource: str) -> Resource:
    """The resource called ``resource``; a ConfigError naming the supported ones otherwise."""
    try:
        return RESOURCES[resource]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown AppMetrica resource {resource!r}; supported: {', '.join(sorted(RESOURCES))}"
        ) from None


def count_rows(path: Path, fmt: str, *, gzipped: bool) -> int:
    """Count the data records of an export file (header excluded), decompressing as a stream.

    Raises ``EOFError``/``gzip.BadGzipFile``/``zlib.error`` for broken gzip data, ``csv.Error`` or
    ``ValueError`` for an unreadable body.
    """
    opener = gzip.open if gzipped else open
    if fmt == "csv":
        csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_SIZE_LIMIT))
        with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                return 0
            return sum(1 for _ in reader)
    if fmt == "json":
        with opener(path, "rb") as fh:
            raw = fh.read()
        payload = json.loads(raw.decode("utf-8-sig", errors="replace")) if raw.strip() else {"data": []}
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise ValueError('JSON export has no "data" list')
        return len(data)
    raise ConfigError(f"unsupported export format {fmt!r}")


class LogsApiClient:
    """Downloads Logs API exports. ``sleep`` and ``clock`` are injectable so tests run instantly."""

    def __init__(
        self,
        settings: AppMetricaSettings,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.session = session if session is not None else requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._headers = {
            "Authorization": f"OAuth {settings.token}",
            "Accept-Encoding": "gzip",
            "User-Agent": "appmetrica-lakehouse/0.1",
        }

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    def __enter__(self) -> LogsApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- request description -------------------------------------------------------------------

    def export_path(self, resource: str) -> str:
        """The URL path of an export, e.g. ``/logs/v1/export/events.csv``."""
        res = get_resource_checked(resource)
        return EXPORT_PATH.format(resource=res.name, fmt=self.settings.format)

    def export_url(self, resource: str) -> str:
        """The full export URL (base URL + path; the base URL never holds credentials)."""
        return self.settings.base_url + self.export_path(resource)

    def requested_fields(self, resource: str) -> tuple[str, ...]:
        """The fields requested for ``resource``: its documented fields, plus the configured custom profile
        attributes for profiles_v2."""
        return requested_fields(get_resource_checked(resource), self.settings.profile_attributes)

    def request_params(self, resource: str, day: dt.date | str) -> dict[str, str]:
        """Query parameters of the unsplit export of ``resource`` for ``day`` (no token: it is a header)."""
        res = get_resource_checked(resource)
        day = parse_day(day)
        params = {"application_id": self.settings.application_id}
        if res.takes_dates:
            params["date_since"] = f"{day.isoformat()} 00:00:00"
            params["date_until"] = f"{day.isoformat()} 23:59:59"
        params["fields"] = ",".join(self.requested_fields(res.name))
        params["date_dimension"] = "default"
        params["use_utf8_bom"] = "false"
        return params

    # -- export --------------------------------------------------------------------------------

    def export(self, resource: str, day: dt.date | str, dest_dir: Path) -> list[PartResult]:
        """Export ``resource`` for ``day`` into ``dest_dir``; one file per part, returned in part order.

        Starts unsplit; when the server answers "Try to use more parts" the export restarts with
        2, 4, 8 ... parts (up to ``max_parts``), removing the files of the abandoned attempt. Each part
        is fetched in turn; ``poll_timeout_seconds`` bounds the 202/429 waiting of each part and
        ``retries`` the consecutive 5xx/connection/broken-body failures. Files are written under a
        temporary name and renamed only once complete and verified (length, gzip, parseable).
        Raises ``LogsApiError`` when the export cannot be completed, ``ConfigError`` for a bad
        resource or day (before any request).
        """
        res = get_resource_checked(resource)
        day = parse_day(day)
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        parts_count = 1
        while True:
            written: list[PartResult] = []
            try:
                for part_number in range(parts_count):
                    written.append(self._export_part(res, day, dest_dir, part_number, parts_count))
            except _MorePartsNeeded:
                for part in written:
                    (dest_dir / part.file).unlink(missing_ok=True)
                next_count = parts_count * 2
                if next_count > self.settings.max_parts:
                    raise LogsApiError(
                        f"AppMetrica export {res.name} for {day}: the server still says the export is too big "
                        f"at parts_count={parts_count}, and max_parts is {self.settings.max_parts}"
                    ) from None
                log.info(
                    "export %s %s: server says too big for %d part(s); restarting with parts_count=%d",
                    res.name,
                    day,
                    parts_count,
                    next_count,
                )
                parts_count = next_count
                continue
            total_bytes = sum(p.bytes for p in written)
            total_rows = sum(p.rows for p in written)
            log.info(
                "export %s %s: done, %d part(s), %d bytes, %d rows", res.name, day, parts_count, total_bytes, total_rows
            )
            return written

    def _export_part(
        self, res: Resource, day: dt.date, dest_dir: Path, part_number: int, parts_count: int
    ) -> PartResult:
        s = self.settings
        url = self.export_url(res.name)
        params = self.request_params(res.name, day)
        if parts_count > 1:
            params["parts_count"] = str(parts_count)
            params["part_number"] = str(part_number)
        window = (
            f"window {params['date_since']} .. {params['date_until']}" if "date_since" in params else "no date window"
        )
        what = f"AppMetrica export {res.name} for {day} ({window}" + (
            f", part {part_number + 1}/{parts_count})" if parts_count > 1 else ")"
        )
        started = self._clock()
        failures = 0
        polls = 0
        attempts = 0

        def elapsed() -> float:
            return max(0.0, self._clock() - started)

        def fail_on_deadline(problem: str) -> float:
            """The time left before poll_timeout_seconds; LogsApiError when none is left."""
            waited = elapsed()
            if waited >= s.poll_timeout_seconds:
                raise LogsApiError(
                    f"{what}: gave up after waiting {_secs(waited)} s (poll_timeout_seconds is "
                    f"{s.poll_timeout_seconds:g}): {attempts} attempt(s), {polls} poll(s); last problem: {problem}"
                )
            return s.poll_timeout_seconds - waited

        def backoff_or_fail(problem: str) -> None:
            nonlocal failures
            failures += 1
            if failures > s.retries:
                raise LogsApiError(
                    f"{what} failed after {s.retries} retries; last problem: {problem}; "
                    f"{attempts} attempt(s) in {_secs(elapsed())} s"
                )
            left = fail_on_deadline(problem)
            delay = min(self._backoff(failures), left)
            log.warning("%s: %s; retry %d/%d in %.2f s", what, problem, failures, s.retries, delay)
            self._sleep(delay)

        def wait_bounded(delay: float, reason: str) -> None:
            left = fail_on_deadline(reason)
            self._sleep(max(0.0, min(delay, left)))

        log.info("%s: requesting %s", what, url)
        accepted = False  # True once the server queued the export (202): polls must not ask for a new one
        while True:
            attempts += 1
            headers = self._headers if accepted else {**self._headers, **FRESH_EXPORT_HEADERS}
            try:
                resp = self.session.get(
                    url,
                    params=params,
                    headers=headers,
                    stream=True,
                    timeout=(s.connect_timeout_seconds, s.read_timeout_seconds),
                    allow_redirects=True,
                )
            except requests.TooManyRedirects:
                raise LogsApiError(
                    f"{what}: too many redirects from {url}; check the host field of the connection {CONNECTION_ID}",
                    retryable=False,
                ) from None
            except requests.ReadTimeout:
                backoff_or_fail(f"no response within read_timeout_seconds ({s.read_timeout_seconds:g} s)")
                continue
            except (requests.ConnectionError, requests.Timeout) as exc:
                backoff_or_fail(f"{type(exc).__name__}: {self._scrub(_short(exc))}")
                continue
            with resp:
                status = resp.status_code
                if status == 200:
                    try:
                        result = self._download(resp, res, dest_dir, part_number, parts_count)
                    except _BrokenBody as exc:
                        backoff_or_fail(f"broken body: {self._scrub(str(exc))}")
                        continue
                    log.info(
                        "%s: ready, stored %s (%d bytes, %s, %d rows)",
                        what,
                        result.file,
                        result.bytes,
                        result.content_encoding,
                        result.rows,
                    )
                    return result
                body = self._scrub(_read_text(resp))
                moved = _other_origin(url, resp)
            if status == 202:
                accepted = True
                failures = 0
                polls += 1
                progress = _PROGRESS_RE.search(body)
                if polls == 1:
                    log.info("%s: queued (%s)", what, body.strip()[:80] or "202 Accepted")
                elif progress:
                    log.info("%s: polling, progress %s%%", what, progress.group(1))
                else:
                    log.info("%s: polling, not ready yet", what)
                wait_bounded(s.poll_interval_seconds, "202 not ready")
                continue
            if status in (420, 429):
                failures = 0
                log.warning(
                    "%s: quota (HTTP %d: %s); waiting %g s", what, status, body.strip()[:200], s.quota_wait_seconds
                )
                wait_bounded(s.quota_wait_seconds, f"HTTP {status} quota: {body.strip()[:200]}")
                continue
            if status >= 500:
                backoff_or_fail(f"HTTP {status}: {body.strip()[:200]}")
                continue
            if status == 400 and MORE_PARTS_MARKER in body.lower():
                raise _MorePartsNeeded()
            if moved is not None and status in (401, 403):
                raise LogsApiError(
                    f"{what}: the server at {s.base_url} redirected to {moved}, which answered HTTP {status} "
                    f"(the OAuth token is never sent to another host): if {moved} is the Logs API, set the host "
                    f"field of the connection {CONNECTION_ID} to {moved}",
                    retryable=False,
                )
            if status == 400:
                raise LogsApiError(f"{what}: bad request (HTTP 400): {body.strip()}", retryable=False)
            if status == 401:
                raise LogsApiError(
                    f"{what}: the OAuth token was rejected (HTTP 401): {body.strip()} "
                    "(check the password of the appmetrica_default connection)",
                    retryable=False,
                )
            if status == 403:
                raise LogsApiError(
                    f"{what}: access denied (HTTP 403): the token was rejected or has no access to "
                    f"application_id {s.application_id}: {body.strip()}",
                    retryable=False,
                )
            if 300 <= status < 400:
                raise LogsApiError(
                    f"{what}: HTTP {status} redirect the client could not follow (Location "
                    f"{resp.headers.get('Location')!r}); check the host field of the connection {CONNECTION_ID}",
                    retryable=False,
                )
            raise LogsApiError(f"{what}: unexpected HTTP {status}: {body.strip()}")

    def _backoff(self, attempt: int) -> float:
        """Delay before retry ``attempt`` (1, 2, ...): ``min(cap, base * 2**(attempt-1))`` times a
        uniform factor in [0.5, 1] (jitter from the injectable ``rng``), so never above the cap."""
        s = self.settings
        ceiling = min(s.backoff_cap_seconds, s.backoff_base_seconds * (2 ** min(attempt - 1, 64)))
        return ceiling * (0.5 + 0.5 * self._rng.random())

    def _scrub(self, text: str) -> str:
        """``text`` with the token masked, should a server or proxy ever echo it back."""
        token = self.settings.token
        return text.replace(token, "***") if token and token in text else text

    def _download(
        self, resp: requests.Response, res: Resource, dest_dir: Path, part_number: int, parts_count: int
    ) -> PartResult:
        fmt = self.settings.format
        encoding = resp.headers.get("Content-Encoding", "").strip().lower() or "identity"
        if encoding not in ("gzip", "identity"):
            raise LogsApiError(f"export {res.name}: unsupported Content-Encoding {encoding!r}")
        expected = _content_length(resp)
        name = part_file_name(res.name, part_number, parts_count, fmt, encoding)
        digest = hashlib.sha256()
        size = 0
        try:
            with atomic_file(dest_dir / name) as fh:
                for chunk in _raw_chunks(resp):
                    fh.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                if expected is not None and size != expected:
                    raise _BrokenBody(f"Content-Length not reached: got {size} of {expected} bytes")
                fh.flush()
                try:
                    rows = count_rows(Path(fh.name), fmt, gzipped=encoding == "gzip")
                except (EOFError, OSError, zlib.error) as exc:
                    raise _BrokenBody(f"body does not decompress fully after {size} bytes: {_short(exc)}") from None
                except (csv.Error, ValueError) as exc:
                    raise _BrokenBody(f"body is not a readable {fmt} export: {_short(exc)}") from None
        except (urllib3.exceptions.HTTPError, requests.RequestException) as exc:
            raise _BrokenBody(self._stream_problem(exc, size, expected)) from None
        return PartResult(
            file=name,
            part_number=part_number,
            parts_count=parts_count,
            http_status=resp.status_code,
            content_encoding=encoding,
            bytes=size,
            sha256=digest.hexdigest(),
            rows=rows,
        )

    def _stream_problem(self, exc: BaseException, size: int, expected: int | None) -> str:
        """Name what broke a 200 body: a stall, a reset, a short body, or another connection error."""
        text = _short(exc)
        if isinstance(exc, urllib3.exceptions.ReadTimeoutError | requests.Timeout | TimeoutError):
            return (
                f"body stalled: no data for read_timeout_seconds ({self.settings.read_timeout_seconds:g} s) "
                f"after {size} bytes"
            )
        if "ConnectionResetError" in text or isinstance(exc, ConnectionResetError):
            return f"connection reset by the server after {size} bytes"
        if "IncompleteRead" in text and expected is not None:
            return f"Content-Length not reached: got {size} of {expected} bytes"
        return f"connection broke after {size} bytes: {text}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def _other_origin(requested: str, resp: requests.Response) -> str | None:
    """The origin (scheme://host[:port]) a redirect led to, when it differs from the requested one."""
    if not resp.history:
        return None
    final = _origin(resp.url)
    return final if final != _origin(requested) else None


def _secs(seconds: float) -> str:
    """Seconds for messages: ``30``, ``1.3``."""
    return f"{round(seconds, 1):g}"


def _raw_chunks(resp: requests.Response) -> Iterator[bytes]:
    """The body exactly as received (no content decoding), in chunks of at most 1 MiB.

    ``read1`` hands over whatever has arrived, so bytes received before a stall or a reset are
    written and counted rather than held in a buffer that the error discards.
    """
    while chunk := resp.raw.read1(STREAM_CHUNK, decode_content=False):
        yield chunk


def _content_length(resp: requests.Response) -> int | None:
    value = resp.headers.get("Content-Length")
    if value is None:
        return None
    try:
        length = int(value.strip())
    except ValueError:
        return None
    return length if length >= 0 else None


def _read_text(resp: requests.Response, limit: int = 64 * 1024) -> str:
    """A small non-200 body as text (bounded; decoded from gzip if needed)."""
    try:
        data = resp.raw.read(limit, decode_content=True) or b""
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError):
        return ""
    for encoding in ("utf-8", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return ""


def _short(exc: BaseException, limit: int = _BODY_SNIPPET) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


__all__ = ["LogsApiClient", "LogsApiError", "PartResult", "count_rows", "get_resource_checked", "part_file_name"]
