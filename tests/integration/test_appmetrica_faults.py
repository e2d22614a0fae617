"""Every Logs API fault of the fake server against the client and the bronze writer, over real HTTP.

One test per fault. Each shows the recovery (a complete bronze partition) and, where retrying is allowed,
the final failure: a ``LogsApiError`` naming the resource, the date window, the last problem and the
number of attempts, the previous partition left byte for byte, and no partial or temporary file.
Sleeps and the clock are faked (``FakeTime``) except where a real read timeout or the real clock is the
point of the test; those use sub-second timeouts.
"""

from __future__ import annotations

import datetime as dt
import gzip
import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# Imported at collection: importing Airflow reconfigures logging, which would drop caplog's handler mid-test.
import airflow  # noqa: F401
import pytest
import requests

from ingest.appmetrica import AppMetricaSettings, LogsApiClient, LogsApiError, extract_resource
from ingest.appmetrica.demo.generator import generate_rows
from ingest.appmetrica.demo.server import DemoLogsApiServer
from ingest.appmetrica.resources import RESOURCES
from lakehouse.settings import Layout

pytestmark = pytest.mark.integration

TOKEN = "faults-S3CRET-token-5550123"
DAY = dt.date(2026, 11, 1)
WINDOW = "window 2026-11-01 00:00:00 .. 2026-11-01 23:59:59"
DEVICES = 200


class FakeTime:
    """A clock that only moves when the code under test sleeps; ``on_sleep`` runs before each sleep."""

    def __init__(self, on_sleep: Callable[[float], None] | None = None) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def sleep(self, seconds: float) -> None:
        if self.on_sleep is not None:
            self.on_sleep(seconds)
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


class ScriptedRandom:
    """Stands in for ``random.Random``: ``random()`` returns the scripted values in turn."""

    def __init__(self, values: list[float]) -> None:
        self._values: Iterator[float] = iter(values)

    def random(self) -> float:
        return next(self._values)


@pytest.fixture
def server() -> Iterator[DemoLogsApiServer]:
    with DemoLogsApiServer(token=TOKEN, devices=DEVICES) as srv:
        yield srv


def make_client(
    server: DemoLogsApiServer, fake: FakeTime | None = None, rng: object = None, token: str = TOKEN, **kw
) -> LogsApiClient:
    kw.setdefault("poll_interval_seconds", 5)
    settings = AppMetricaSettings(base_url=server.url, token=token, application_id=server.application_id, **kw)
    if fake is None:
        return LogsApiClient(settings, rng=rng or random.Random(0))
    return LogsApiClient(settings, sleep=fake.sleep, clock=fake.monotonic, rng=rng or random.Random(0))


def extract(server: DemoLogsApiServer, tmp_path: Path, fake: FakeTime | None = None, day: dt.date = DAY, **kw):
    """One bronze extraction of ``events`` (``fake=None`` with ``real_time=True`` uses the real clock)."""
    real_time = kw.pop("real_time", False)
    fake = None if real_time else (fake if fake is not None else FakeTime())
    with make_client(server, fake, **kw) as client:
        return extract_resource("events", day, settings=client.settings, layout=Layout(tmp_path), client=client)


def partition(tmp_path: Path, day: dt.date = DAY) -> Path:
    return Layout(tmp_path).bronze("events", day)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def whole_export(server: DemoLogsApiServer) -> bytes:
    """The gzip body the server sends for the day, fetched outside the client."""
    resource = RESOURCES["events"]
    params = {
        "application_id": server.application_id,
        "date_since": f"{DAY} 00:00:00",
        "date_until": f"{DAY} 23:59:59",
        "fields": ",".join(resource.fields),
    }
    headers = {"Authorization": f"OAuth {TOKEN}", "Accept-Encoding": "gzip"}
    for _ in range(server.polls_before_ready + 1):
        resp = requests.get(f"{server.url}/logs/v1/export/events.csv", params=params, headers=headers, timeout=30)
        if resp.status_code == 200:
            resp = requests.get(
                f"{server.url}/logs/v1/export/events.csv", params=params, headers=headers, stream=True, timeout=30
            )
            return resp.raw.read(decode_content=False)
    raise AssertionError("export never became ready")


def expected_rows(server: DemoLogsApiServer) -> int:
    return len(generate_rows("events", DAY, application_id=server.application_id, tz=server.tz, devices=DEVICES))


def leftovers(root: Path) -> list[Path]:
    """Temporary files or folders (``.tmp-*``) anywhere under ``root``."""
    return [p for p in root.rglob("*") if p.name.startswith(".tmp-")]


def assert_previous_partition_kept(tmp_path: Path, before: dict[str, bytes]) -> None:
    folder = partition(tmp_path)
    assert snapshot(folder) == before
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # no staging folder beside it
    assert leftovers(tmp_path) == []


def first_good_run(server: DemoLogsApiServer, tmp_path: Path) -> dict[str, bytes]:
    """A successful extraction to have a previous partition; the server then forgets everything."""
    extract(server, tmp_path)
    before = snapshot(partition(tmp_path))
    server.reset()
    return before


def attempts_in(message: str) -> int:
    match = re.search(r"(\d+) attempt\(s\)", message)
    assert match, f"no attempt count in {message!r}"
    return int(match.group(1))


# -- long 202 sequences -------------------------------------------------------------------------


@pytest.mark.parametrize("progress_bodies", [True, False], ids=["progress-bodies", "empty-bodies"])
def test_long_202_sequence_is_polled_to_the_end(server, tmp_path, caplog, progress_bodies):
    caplog.set_level(logging.INFO, logger="ingest.appmetrica.client")
    server.polls_before_ready = 40
    server.progress_bodies = progress_bodies
    fake = FakeTime()
    manifest = extract(server, tmp_path, fake=fake, poll_interval_seconds=0.25, poll_timeout_seconds=60)

    assert server.statuses() == [202] * 40 + [200]
    assert fake.sleeps == [0.25] * 40
    assert manifest["rows"] == expected_rows(server)
    messages = [r.getMessage() for r in caplog.records if r.name == "ingest.appmetrica.client"]
    progress = [m for m in messages if "polling, progress" in m]
    silent = [m for m in messages if "polling, not ready yet" in m]
    if progress_bodies:
        assert (len(progress), len(silent)) == (39, 0)
        assert progress[0].endswith("progress 2%") and progress[-1].endswith("progress 97%")
    else:
        assert (len(progress), len(silent)) == (0, 39)
    assert any("queued" in m for m in messages)


@pytest.mark.parametrize("progress_bodies", [True, False], ids=["progress-bodies", "empty-bodies"])
def test_202_sequence_longer_than_the_poll_timeout_fails_naming_it(server, tmp_path, progress_bodies):
    before = first_good_run(server, tmp_path)
    server.polls_before_ready = 10**6
    server.progress_bodies = progress_bodies
    fake = FakeTime()
    with pytest.raises(LogsApiError) as err:
        extract(server, tmp_path, fake=fake, poll_interval_seconds=0.25, poll_timeout_seconds=2)

    message = str(err.value)
    assert f"AppMetrica export events for 2026-11-01 ({WINDOW})" in message
    assert "gave up after waiting 2 s (poll_timeout_seconds is 2)" in message
    assert "last problem: 202 not ready" in message
    assert attempts_in(message) == 9 and "9 poll(s)" in message  # at 0, 0.25, ... 2.0 s
    assert err.value.retryable
    assert server.statuses() == [202] * 9
    assert sum(fake.sleeps) == 2
    assert TOKEN not in message
    assert_previous_partition_kept(tmp_path, before)


# -- 429: the application's queue is full ---------------------------------------------------------


def test_queue_full_429_is_waited_on_until_the_poll_timeout(server, tmp_path):
    """Three other exports hold the queue and nobody finishes them: 429 on every try, then a clear failure."""
    before = first_good_run(server, tmp_path)
    server.polls_before_ready = 10**6
    headers = {"Authorization": f"OAuth {TOKEN}"}
    for i in range(1, 4):
        day = (DAY - dt.timedelta(days=i)).isoformat()
        params = {
            "application_id": server.application_id,
            "date_since": day,
            "date_until": day,
            "fields": "event_name",
        }
        other = requests.get(f"{server.url}/logs/v1/export/events.csv", params=params, headers=headers, timeout=30)
        assert other.status_code == 202
    fake = FakeTime()
    with pytest.raises(LogsApiError) as err:
        extract(server, tmp_path, fake=fake, quota_wait_seconds=10, poll_timeout_seconds=35)

    message = str(err.value)
    assert f"events for 2026-11-01 ({WINDOW})" in message
    assert "poll_timeout_seconds is 35" in message
    assert "HTTP 429 quota: There are already 3 enqueued queries for given application_id" in message
    assert attempts_in(message) == 5  # at 0, 10, 20, 30 and 35 s
    assert server.statuses()[3:] == [429] * 5
    assert fake.sleeps == [10, 10, 10, 5]
    assert_previous_partition_kept(tmp_path, before)


# -- 5xx -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retried_then_recovers_and_when_it_persists_fails_keeping_the_old_partition(server, tmp_path, status):
    server.inject(status=status, times=2)
    fake = FakeTime()
    manifest = extract(server, tmp_path, fake=fake)
    assert server.statuses() == [status, status, 202, 200]
    first, second, poll = fake.sleeps
    assert 0.5 <= first <= 1 and 1 <= second <= 2 and poll == 5
    assert manifest["rows"] == expected_rows(server)
    before = snapshot(partition(tmp_path))

    server.reset()
    server.inject(status=status, times=100)
    fake = FakeTime()
    with pytest.raises(LogsApiError) as err:
        extract(server, tmp_path, fake=fake, retries=3)
    message = str(err.value)
    assert f"events for 2026-11-01 ({WINDOW}) failed after 3 retries" in message
    assert f"last problem: HTTP {status}: " in message
    assert attempts_in(message) == 4
    assert err.value.retryable
    assert server.statuses() == [status] * 4
    assert len(fake.sleeps) == 3
    assert_previous_partition_kept(tmp_path, before)


# -- bodies that break: reset, cut short, stalled ------------------------------------------------------


BODY_FAULTS = {
    "reset-mid-body": ({"reset": True}, r"(?i)connection reset"),
    "gzip-truncated": ({"truncate_gzip": True}, r"broken body: body does not decompress fully after \d+ bytes"),
    "gzip-truncated-no-length": (
        {"truncate": True, "content_length": False},
        r"broken body: body does not decompress fully after \d+ bytes",
    ),
    "content-length-not-reached": (
        {"truncate": True},
        r"broken body: Content-Length not reached: got (\d+) of (\d+) bytes",
    ),
    "stalled-body": (
        {"stall": 30.0},
        r"broken body: body stalled: no data for read_timeout_seconds \(0\.5 s\) after (\d+) bytes",
    ),
}


@pytest.mark.parametrize("fault", list(BODY_FAULTS))
def test_broken_body_is_retried_then_recovers_and_when_it_persists_fails_keeping_the_old_partition(
    server, tmp_path, fault
):
    kwargs, cause = BODY_FAULTS[fault]
    whole = whole_export(server)
    server.reset()

    server.inject(**kwargs)
    fake = FakeTime()
    manifest = extract(server, tmp_path, fake=fake, read_timeout_seconds=0.5)
    assert server.statuses() == [202, 200, 200]
    poll, backoff = fake.sleeps
    assert poll == 5 and 0.5 <= backoff <= 1
    (part,) = manifest["parts"]
    assert (partition(tmp_path) / part["file"]).read_bytes() == whole  # the good copy, not the broken one
    assert part["bytes"] == len(whole) and manifest["rows"] == expected_rows(server)
    before = snapshot(partition(tmp_path))

    server.reset()
    server.inject(**kwargs, times=10)
    fake = FakeTime()
    with pytest.raises(LogsApiError) as err:
        extract(server, tmp_path, fake=fake, retries=2, read_timeout_seconds=0.5)
    message = str(err.value)
    assert f"events for 2026-11-01 ({WINDOW}) failed after 2 retries" in message
    match = re.search(cause, message)
    assert match, message
    if fault == "content-length-not-reached":
        assert (int(match.group(1)), int(match.group(2))) == (len(whole) // 2, len(whole))
    if fault == "stalled-body":
        assert int(match.group(1)) == len(whole) // 2  # what came before the silence was counted
    assert attempts_in(message) == 4  # the 202 that queued the export, then three broken 200s
    assert server.statuses() == [202, 200, 200, 200]
    assert TOKEN not in message
    assert_previous_partition_kept(tmp_path, before)


def test_stalled_bodies_are_retried_only_until_the_poll_timeout_in_real_time(server, tmp_path):
    """Real clock and sleeps: each stall costs a real read timeout, and the deadline counts that time too."""
    server.polls_before_ready = 0
    server.inject(stall=30.0, times=50)
    started = time.monotonic()
    with pytest.raises(LogsApiError) as err:
        extract(
            server,
            tmp_path,
            real_time=True,
            read_timeout_seconds=0.3,
            poll_timeout_seconds=1.0,
            retries=50,
            backoff_base_seconds=0.05,
            backoff_cap_seconds=0.1,
        )
    took = time.monotonic() - started
    message = str(err.value)
    assert "(poll_timeout_seconds is 1)" in message
    assert "last problem: broken body: body stalled" in message
    # Each attempt waits out a 0.3 s read timeout, so about 1 s allows 3 or 4; the retry budget (50) is not
    # what stopped it.
    assert 2 <= attempts_in(message) <= 5
    assert len(server.statuses()) == attempts_in(message)
    assert took >= 1.0
    assert not partition(tmp_path).exists()
    assert leftovers(tmp_path) == []


# -- "Try to use more parts" --------------------------------------------------------------------------


def test_more_parts_with_a_part_that_keeps_failing_leaves_no_part_behind(server, tmp_path):
    before = first_good_run(server, tmp_path)
    size = len(gzip.decompress(whole_export(server)))
    server.reset()
    server.max_export_bytes = size - 1  # one part is too big; every half fits

    def spoil_second_part(_seconds: float) -> None:
        """Once part 1 of 2 is stored, every later 200 breaks."""
        done = any(p.get("part_number") == "0" and s == 200 for _, _, p, s in server.requests)
        if done and not spoiled:
            server.inject(reset=True, times=10)
            spoiled.append(True)

    spoiled: list[bool] = []
    fake = FakeTime(on_sleep=spoil_second_part)
    with pytest.raises(LogsApiError) as err:
        extract(server, tmp_path, fake=fake, retries=2)
    message = str(err.value)
    assert f"events for 2026-11-01 ({WINDOW}, part 2/2) failed after 2 retries" in message
    parts = [(p.get("parts_count"), p.get("part_number"), s) for _, _, p, s in server.requests]
    assert parts[:3] == [(None, None, 400), ("2", "0", 202), ("2", "0", 200)]  # part 1 of 2 was downloaded ...
    assert parts[3:] == [("2", "1", 202)] + [("2", "1", 200)] * 3  # ... and part 2 never came whole
    assert not list(tmp_path.rglob("*of-00002*"))  # the stored part 1 went with the staging folder
    assert_previous_partition_kept(tmp_path, before)


# -- fail fast: 400, 401, 403 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cause"),
    [
        (400, r"bad request \(HTTP 400\): Wrong parameter: date_since"),
        (401, r"the OAuth token was rejected \(HTTP 401\): Unauthorized"),
        (403, r"access denied \(HTTP 403\): the token was rejected or has no access to application_id 1234567: "),
    ],
)
def test_client_errors_fail_at_once_naming_the_cause(server, tmp_path, status, cause):
    before = first_good_run(server, tmp_path)
    wrong = "wrong-S3CRET-token-424242"
    kw: dict = {}
    if status == 400:
        server.inject(status=400, body="Wrong parameter: date_since")
    elif status == 401:
        server.inject(status=401, body="Unauthorized")
    else:
        kw["token"] = wrong  # the server itself refuses the token
    fake = FakeTime()
    with pytest.raises(LogsApiError) as err:
        extract(server, tmp_path, fake=fake, **kw)
    message = str(err.value)
    assert re.search(cause, message), message
    assert f"events for 2026-11-01 ({WINDOW})" in message
    assert not err.value.retryable
    assert server.statuses() == [status]  # one request, no retry
    assert fake.sleeps == []
    assert TOKEN not in message and wrong not in message
    assert_previous_partition_kept(tmp_path, before)


# -- backoff ------------------------------------------------------------------------------------------


def test_backoff_is_exponential_capped_and_jittered(server, tmp_path):
    server.polls_before_ready = 0
    server.inject(status=503, times=8)
    factors = [0.0, 1.0, 0.5, 0.0, 1.0, 0.25, 0.75, 0.0]
    fake = FakeTime()
    extract(
        server,
        tmp_path,
        fake=fake,
        rng=ScriptedRandom(factors),
        retries=8,
        backoff_base_seconds=1,
        backoff_cap_seconds=4,
    )
    ceilings = [1, 2, 4, 4, 4, 4, 4, 4]  # base * 2**(n-1), capped at 4
    assert fake.sleeps == [c * (0.5 + 0.5 * f) for c, f in zip(ceilings, factors, strict=True)]
    assert server.statuses() == [503] * 8 + [200]

    delays = []
    for seed in (1, 2):  # with a real random source the same failures give different, bounded delays
        server.reset()
        server.inject(status=503, times=8)
        fake = FakeTime()
        extract(
            server,
            tmp_path,
            fake=fake,
            rng=random.Random(seed),
            retries=8,
            backoff_base_seconds=1,
            backoff_cap_seconds=4,
        )
        assert all(c / 2 <= d <= c for c, d in zip(ceilings, fake.sleeps, strict=True))
        delays.append(fake.sleeps)
    assert delays[0] != delays[1]
    assert len(set(delays[0][2:])) > 1  # capped, yet still spread


def test_backoff_is_cut_short_by_the_poll_timeout(server, tmp_path):
    before = first_good_run(server, tmp_path)
    server.inject(status=502, times=100)
    fake = FakeTime()
    with pytest.raises(LogsApiError) as err:
        extract(
            server,
            tmp_path,
            fake=fake,
            rng=ScriptedRandom([1.0] * 10),
            retries=10,
            backoff_base_seconds=1,
            backoff_cap_seconds=4,
            poll_timeout_seconds=6,
        )
    assert fake.sleeps == [1, 2, 3]  # the third backoff (4 s) is cut to the 3 s left
    message = str(err.value)
    assert "gave up after waiting 6 s (poll_timeout_seconds is 6)" in message
    assert "last problem: HTTP 502" in message and attempts_in(message) == 4
    assert_previous_partition_kept(tmp_path, before)
