"""The Logs API client and the bronze writer against the demo server, over real HTTP on 127.0.0.1.

Sleeps and the clock are faked (``FakeTime``), so polling, quota waits and backoff cost no time.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import logging
import random
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from lake_tables import silver_table

from ingest.appmetrica import AppMetricaSettings, LogsApiClient, LogsApiError, extract_resource
from ingest.appmetrica.demo.generator import generate_rows, write_csv
from ingest.appmetrica.demo.server import DemoLogsApiServer, part_of
from ingest.appmetrica.resources import RESOURCES
from lakehouse.fsutil import sha256_file
from lakehouse.settings import Layout

pytestmark = pytest.mark.integration


def http_get(url: str, **kw) -> requests.Response:
    """``requests.get`` with a timeout, so a hung server fails the test instead of blocking it."""
    timeout = kw.pop("timeout", 30)
    return requests.get(url, timeout=timeout, **kw)


TOKEN = "itest-S3CRET-token-0123456789"
DAY = dt.date(2026, 11, 1)
DEVICES = 300


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


@pytest.fixture
def server():
    with DemoLogsApiServer(token=TOKEN, devices=DEVICES) as srv:
        yield srv


def settings_for(server: DemoLogsApiServer, **kw) -> AppMetricaSettings:
    kw.setdefault("poll_interval_seconds", 5)
    return AppMetricaSettings(base_url=server.url, token=TOKEN, application_id=server.application_id, **kw)


def extract(
    server, tmp_path: Path, resource: str = "events", fake: FakeTime | None = None, day: dt.date = DAY, **kw
) -> dict:
    fake = fake if fake is not None else FakeTime()
    settings = settings_for(server, **kw)
    client = LogsApiClient(settings, sleep=fake.sleep, clock=fake.monotonic, rng=random.Random(0))
    with client:
        return extract_resource(resource, day, settings=settings, layout=Layout(tmp_path), client=client)


def partition(tmp_path: Path, resource: str = "events", day: dt.date = DAY) -> Path:
    return Layout(tmp_path).bronze(resource, day)


def expected_rows(server, resource: str = "events", day: dt.date = DAY) -> list[dict[str, str]]:
    return generate_rows(
        resource, day, application_id=server.application_id, tz=server.tz, devices=server.devices, seed=server.seed
    )


@pytest.fixture
def even_day(server) -> dt.date:
    """A day without the demo's occasional 150000-character event (which no split can make small)."""
    for i in range(30):
        day = DAY + dt.timedelta(days=i)
        if max(len(r["event_json"]) for r in expected_rows(server, day=day)) < 10_000:
            return day
    raise AssertionError("no day without a huge field")


def csv_bytes(rows, resource: str = "events") -> bytes:
    buf = io.StringIO(newline="")
    write_csv(rows, RESOURCES[resource].fields, buf)
    return buf.getvalue().encode("utf-8")


def read_csv_rows(data: bytes) -> list[tuple[str, ...]]:
    csv.field_size_limit(1 << 24)
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header = next(reader)
    assert tuple(header) == RESOURCES["events"].fields
    return [tuple(r) for r in reader]


def temp_leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".tmp-")]


def test_happy_path_202_then_200_gzip_bytes_stored_exactly(server, tmp_path):
    server.polls_before_ready = 2
    fake = FakeTime()
    manifest = extract(server, tmp_path, fake=fake)

    folder = partition(tmp_path)
    name = "events.part-00000-of-00001.csv.gz"
    assert sorted(p.name for p in folder.iterdir()) == ["_manifest.json", name]
    assert server.statuses() == [202, 202, 200]
    assert fake.sleeps == [5, 5]

    data = (folder / name).read_bytes()
    rows = expected_rows(server)
    assert gzip.decompress(data) == csv_bytes(rows)  # the bytes the server sent, untouched
    (part,) = manifest["parts"]
    assert part == {
        "file": name,
        "part_number": 0,
        "parts_count": 1,
        "http_status": 200,
        "content_encoding": "gzip",
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "rows": len(rows),
    }
    assert part["sha256"] == sha256_file(folder / name)
    assert (manifest["rows"], manifest["bytes"], manifest["parts_count"]) == (len(rows), len(data), 1)
    assert manifest["source"] == "appmetrica"
    assert (manifest["resource"], manifest["date"], manifest["format"]) == ("events", "2026-11-01", "csv")
    assert manifest["application_id"] == server.application_id
    assert manifest["request"]["path"] == "/logs/v1/export/events.csv"
    assert manifest["request"]["params"]["date_since"] == "2026-11-01 00:00:00"
    assert manifest["request"]["params"]["fields"] == ",".join(RESOURCES["events"].fields)
    assert dt.datetime.fromisoformat(manifest["extracted_at"]).tzinfo is not None
    assert json.loads((folder / "_manifest.json").read_text()) == manifest
    assert TOKEN not in (folder / "_manifest.json").read_text()
    assert temp_leftovers(tmp_path) == []


def test_request_carries_documented_params(server, tmp_path):
    extract(server, tmp_path)
    method, path, params, status = server.requests[0]
    assert (method, path, status) == ("GET", "/logs/v1/export/events.csv", 202)
    assert params == {
        "application_id": server.application_id,
        "date_since": "2026-11-01 00:00:00",
        "date_until": "2026-11-01 23:59:59",
        "fields": ",".join(RESOURCES["events"].fields),
        "date_dimension": "default",
        "use_utf8_bom": "false",
    }


@pytest.mark.parametrize("resource", ["sessions_starts", "installations", "profiles_v2"])
def test_other_resources(server, tmp_path, resource):
    manifest = extract(server, tmp_path, resource=resource)
    assert manifest["rows"] == len(expected_rows(server, resource))
    assert manifest["parts"][0]["file"] == f"{resource}.part-00000-of-00001.csv.gz"


def test_configured_profile_attributes_are_requested_by_name_and_land_in_silver(server, tmp_path):
    manifest = extract(server, tmp_path, resource="profiles_v2", profile_attributes=("plan", "level"))
    fields = (*RESOURCES["profiles_v2"].fields, "plan", "level")
    assert manifest["fields"] == list(fields)
    assert manifest["request"]["params"]["fields"] == ",".join(fields)
    assert server.requests[-1][2]["fields"] == ",".join(fields)
    for resource in sorted(set(RESOURCES) - {"profiles_v2"}):
        assert "plan" not in extract(server, tmp_path, resource=resource, profile_attributes=("plan",))["fields"]

    from transforms.silver.job import build_silver

    build_silver(DAY, Layout(tmp_path))
    attrs = silver_table(Layout(tmp_path), "tmp_user_properties", DAY).to_pylist()
    profiles = expected_rows(server, "profiles_v2")
    expected = {(p["profile_id"], name, p[name]) for p in profiles for name in ("plan", "level") if p[name]}
    assert expected and {(a["profile_id"], a["attribute_name"], a["value_text"]) for a in attrs} == expected


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_the_strict_server_accepts_every_request_of_a_daily_run(server, tmp_path, fmt):
    """The demo server knows only the documented fields (the catalogue): a day of every resource, with custom
    profile attributes configured, gets no 400."""
    for resource in RESOURCES:
        manifest = extract(server, tmp_path, resource=resource, format=fmt, profile_attributes=("plan", "level"))
        assert manifest["rows"] > 0, resource
    assert 400 not in server.statuses()
    assert {path.rsplit("/", 1)[-1] for _m, path, _p, status in server.requests if status == 200} == {
        f"{r}.{fmt}" for r in RESOURCES
    }


def test_uncompressed_body_is_stored_as_csv(server, tmp_path):
    server.compress = False
    manifest = extract(server, tmp_path)
    (part,) = manifest["parts"]
    assert (part["file"], part["content_encoding"]) == ("events.part-00000-of-00001.csv", "identity")
    assert (partition(tmp_path) / part["file"]).read_bytes() == csv_bytes(expected_rows(server))


def test_json_format(server, tmp_path):
    manifest = extract(server, tmp_path, format="json")
    (part,) = manifest["parts"]
    assert part["file"] == "events.part-00000-of-00001.json.gz"
    payload = json.loads(gzip.decompress((partition(tmp_path) / part["file"]).read_bytes()))
    assert payload["data"] == expected_rows(server)
    assert part["rows"] == len(payload["data"])


def test_injected_429_is_waited_out(server, tmp_path):
    server.inject(status=429)
    fake = FakeTime()
    manifest = extract(server, tmp_path, fake=fake, quota_wait_seconds=60)
    assert server.statuses() == [429, 202, 200]
    assert fake.sleeps == [60, 5]
    assert manifest["rows"] == len(expected_rows(server))


def test_420_counts_as_quota_too(server, tmp_path):
    server.inject(status=420)
    fake = FakeTime()
    extract(server, tmp_path, fake=fake, quota_wait_seconds=30)
    assert fake.sleeps[0] == 30


def test_full_queue_is_waited_out_until_it_drains(server, tmp_path):
    """Three other exports fill the application's queue; the client waits (429) until they finish."""
    headers = {"Authorization": f"OAuth {TOKEN}"}
    fields = ",".join(RESOURCES["events"].fields)
    others = []
    for i in range(1, 4):
        day = (DAY - dt.timedelta(days=i)).isoformat()
        params = {"application_id": server.application_id, "date_since": day, "date_until": day, "fields": fields}
        others.append(params)
        assert http_get(f"{server.url}/logs/v1/export/events.csv", params=params, headers=headers).status_code == 202

    def drain(_seconds: float) -> None:
        if len(fake.sleeps) == 2:  # after two quota waits, somebody polls the other exports to completion
            for params in others:
                http_get(f"{server.url}/logs/v1/export/events.csv", params=params, headers=headers)

    fake = FakeTime(on_sleep=drain)
    manifest = extract(server, tmp_path, fake=fake, quota_wait_seconds=60)
    ours = [r[3] for r in server.requests if r[2].get("date_since") == "2026-11-01 00:00:00"]
    assert ours == [429, 429, 429, 202, 200]
    assert fake.sleeps == [60, 60, 60, 5]
    assert manifest["rows"] == len(expected_rows(server))


def test_quota_waits_are_bounded_by_the_poll_timeout(server, tmp_path):
    server.inject(status=429, times=50)
    fake = FakeTime()
    with pytest.raises(LogsApiError, match=r"events for 2026-11-01.*waiting 120 s"):
        extract(server, tmp_path, fake=fake, quota_wait_seconds=60, poll_timeout_seconds=120)
    assert sum(fake.sleeps) == 120
    assert not partition(tmp_path).exists()


def test_5xx_is_retried_with_backoff_then_succeeds(server, tmp_path):
    server.inject(status=503, times=2)
    server.inject(status=500)
    fake = FakeTime()
    manifest = extract(server, tmp_path, fake=fake)
    assert server.statuses() == [503, 503, 500, 202, 200]
    b1, b2, b3, poll = fake.sleeps
    assert 0.5 <= b1 <= 1 and 1 <= b2 <= 2 and 2 <= b3 <= 4
    assert poll == 5
    assert manifest["rows"] == len(expected_rows(server))


def test_5xx_forever_fails_naming_the_last_status(server, tmp_path):
    server.inject(status=502, body="upstream is down", times=100)
    fake = FakeTime()
    with pytest.raises(LogsApiError, match=r"after 3 retries; last problem: HTTP 502: upstream is down"):
        extract(server, tmp_path, fake=fake, retries=3)
    assert server.statuses() == [502] * 4
    assert len(fake.sleeps) == 3
    assert not partition(tmp_path).exists()
    assert temp_leftovers(tmp_path) == []


def test_connection_refused_is_retried_then_fails(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = AppMetricaSettings(base_url=f"http://127.0.0.1:{port}", token=TOKEN, application_id="1", retries=2)
    fake = FakeTime()
    client = LogsApiClient(settings, sleep=fake.sleep, clock=fake.monotonic)
    with pytest.raises(LogsApiError, match="after 2 retries; last problem: ConnectionError") as err:
        extract_resource("events", DAY, settings=settings, layout=Layout(tmp_path), client=client)
    assert TOKEN not in str(err.value)
    assert len(fake.sleeps) == 2


def _parts_needed(rows: list[dict[str, str]], limit: int) -> int:
    n = 1
    while n <= 64:
        sizes = [len(csv_bytes([r for r in rows if part_of(r, n) == k])) for k in range(n)]
        if max(sizes) <= limit:
            return n
        n *= 2
    raise AssertionError(f"no split below {limit} bytes")


@pytest.mark.parametrize(("share", "parts"), [(0.75, 2), (0.4, 4)])
def test_more_parts_splits_and_the_union_is_the_whole_export(server, tmp_path, even_day, share, parts):
    full = expected_rows(server, day=even_day)
    server.max_export_bytes = int(len(csv_bytes(full)) * share)
    assert _parts_needed(full, server.max_export_bytes) == parts

    manifest = extract(server, tmp_path, day=even_day)

    folder = partition(tmp_path, day=even_day)
    assert manifest["parts_count"] == parts
    names = [f"events.part-{k:05d}-of-{parts:05d}.csv.gz" for k in range(parts)]
    assert [p["file"] for p in manifest["parts"]] == names
    assert sorted(p.name for p in folder.iterdir()) == sorted([*names, "_manifest.json"])
    union: collections.Counter[tuple[str, ...]] = collections.Counter()
    for part in manifest["parts"]:
        got = read_csv_rows(gzip.decompress((folder / part["file"]).read_bytes()))
        assert part["rows"] == len(got)
        union.update(got)
    assert union == collections.Counter(tuple(r.values()) for r in full)
    assert manifest["rows"] == len(full)
    assert server.statuses().count(400) == parts.bit_length() - 1  # 1 part, 2 parts, ... refused
    split = [r[2] for r in server.requests if "parts_count" in r[2] and r[3] == 200]
    assert [(p["parts_count"], p["part_number"]) for p in split] == [(str(parts), str(k)) for k in range(parts)]


def test_more_parts_than_max_parts_fails(server, tmp_path):
    server.max_export_bytes = 1000
    with pytest.raises(LogsApiError, match=r"too big at parts_count=4, and max_parts is 4"):
        extract(server, tmp_path, max_parts=4)
    assert not partition(tmp_path).exists()


def test_403_fails_at_once_with_the_server_message_and_no_token(server, tmp_path):
    wrong = "wrong-token-value-987654"
    settings = AppMetricaSettings(base_url=server.url, token=wrong, application_id=server.application_id)
    fake = FakeTime()
    client = LogsApiClient(settings, sleep=fake.sleep, clock=fake.monotonic)
    with pytest.raises(LogsApiError, match="HTTP 403") as err:
        extract_resource("events", DAY, settings=settings, layout=Layout(tmp_path), client=client)
    message = str(err.value)
    assert "invalid OAuth token" in message  # the server's own words
    assert "application_id" in message
    assert wrong not in message and TOKEN not in message
    assert server.statuses() == [403]
    assert fake.sleeps == []


def test_no_access_to_another_application_is_403(server, tmp_path):
    settings = AppMetricaSettings(base_url=server.url, token=TOKEN, application_id="999")
    client = LogsApiClient(settings, sleep=FakeTime().sleep)
    with pytest.raises(LogsApiError, match="no access to application_id 999"):
        extract_resource("events", DAY, settings=settings, layout=Layout(tmp_path), client=client)


def test_other_400_fails_at_once_with_the_server_message(server, tmp_path):
    server.inject(status=400, body="Wrong parameter: date_since")
    fake = FakeTime()
    with pytest.raises(LogsApiError, match=r"HTTP 400.*Wrong parameter: date_since"):
        extract(server, tmp_path, fake=fake)
    assert server.statuses() == [400]
    assert fake.sleeps == []


def test_401_fails_at_once(server, tmp_path):
    server.inject(status=401, body="Unauthorized")
    with pytest.raises(LogsApiError, match="token was rejected"):
        extract(server, tmp_path)
    assert server.statuses() == [401]


def test_poll_timeout_names_the_export_and_the_wait(server, tmp_path):
    server.polls_before_ready = 10**6
    fake = FakeTime()
    with pytest.raises(LogsApiError) as err:
        extract(server, tmp_path, fake=fake, poll_interval_seconds=5, poll_timeout_seconds=30)
    message = str(err.value)
    assert "events" in message and "2026-11-01" in message
    assert "waiting 30 s" in message and "poll_timeout_seconds is 30" in message
    assert sum(fake.sleeps) == 30
    assert server.statuses() == [202] * 7
    assert not partition(tmp_path).exists()


@pytest.mark.parametrize("content_length", [True, False])
def test_truncated_body_is_retried_and_never_kept(server, tmp_path, content_length):
    server.inject(truncate=True, content_length=content_length)
    fake = FakeTime()
    manifest = extract(server, tmp_path, fake=fake)
    assert server.statuses() == [202, 200, 200]
    assert fake.sleeps[0] == 5 and 0.5 <= fake.sleeps[1] <= 1  # poll, then one backoff
    (part,) = manifest["parts"]
    data = (partition(tmp_path) / part["file"]).read_bytes()
    assert gzip.decompress(data) == csv_bytes(expected_rows(server))
    assert part["bytes"] == len(data)
    assert temp_leftovers(tmp_path) == []


def test_failure_keeps_the_previous_partition_and_leaves_no_partial_file(server, tmp_path):
    first = extract(server, tmp_path)
    folder = partition(tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    server.reset()
    server.inject(truncate=True, times=10)
    with pytest.raises(LogsApiError, match="broken body"):
        extract(server, tmp_path, retries=2)

    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert json.loads((folder / "_manifest.json").read_text()) == first
    assert temp_leftovers(tmp_path) == []
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]


def test_rerun_replaces_the_whole_partition(server, tmp_path, even_day):
    full = expected_rows(server, day=even_day)
    server.max_export_bytes = int(len(csv_bytes(full)) * 0.4)
    assert extract(server, tmp_path, day=even_day)["parts_count"] == 4
    assert len(list(partition(tmp_path, day=even_day).glob("events.part-*"))) == 4

    server.max_export_bytes = None
    server.reset()
    manifest = extract(server, tmp_path, day=even_day)
    assert manifest["parts_count"] == 1
    assert sorted(p.name for p in partition(tmp_path, day=even_day).iterdir()) == [
        "_manifest.json",
        "events.part-00000-of-00001.csv.gz",
    ]
    assert temp_leftovers(tmp_path) == []


def test_token_is_in_no_log_record_and_no_manifest(server, tmp_path, caplog, even_day):
    caplog.set_level(logging.DEBUG)
    server.polls_before_ready = 3
    server.inject(status=429)
    server.inject(status=503)
    server.inject(truncate=True)
    server.max_export_bytes = int(len(csv_bytes(expected_rows(server, day=even_day))) * 0.75)
    manifest = extract(server, tmp_path, day=even_day)
    assert manifest["parts_count"] == 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("queued" in m for m in messages)
    assert any("polling, progress" in m for m in messages)
    assert any("parts_count=2" in m for m in messages)
    assert any("ready, stored" in m for m in messages)
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in str(record.args)
    assert TOKEN not in caplog.text
    assert TOKEN not in json.dumps(manifest)
    assert TOKEN not in (partition(tmp_path, day=even_day) / "_manifest.json").read_text()
    assert all(TOKEN not in json.dumps(r) for r in server.requests)
