"""The demo Logs API server speaks the protocol of docs/appmetrica-logs-api.md (raw HTTP checks)."""

from __future__ import annotations

import collections
import csv
import datetime as dt
import gzip
import io
import os
import subprocess
import sys

import pytest
import requests

from ingest.appmetrica.demo.generator import generate_rows
from ingest.appmetrica.demo.server import QUOTA_BODY, DemoLogsApiServer
from ingest.appmetrica.resources import RESOURCES

pytestmark = pytest.mark.integration


def http_get(url: str, **kw) -> requests.Response:
    """``requests.get`` with a timeout, so a hung server fails the test instead of blocking it."""
    timeout = kw.pop("timeout", 30)
    return requests.get(url, timeout=timeout, **kw)


TOKEN = "server-test-token-42"
APP = "1234567"
EVENTS_FIELDS = ",".join(RESOURCES["events"].fields)


@pytest.fixture
def server():
    with DemoLogsApiServer(token=TOKEN, application_id=APP, devices=200) as srv:
        yield srv


def export(server, resource="events", fmt="csv", token=TOKEN, accept="gzip", **params) -> requests.Response:
    query = {
        "application_id": APP,
        "date_since": "2026-11-01 00:00:00",
        "date_until": "2026-11-01 23:59:59",
        "fields": ",".join(RESOURCES[resource].fields) if resource in RESOURCES else "event_name",
    }
    query.update(params)
    query = {k: v for k, v in query.items() if v is not None}
    headers = {"Accept-Encoding": accept}
    if token is not None:
        headers["Authorization"] = f"OAuth {token}"
    return http_get(f"{server.url}/logs/v1/export/{resource}.{fmt}", params=query, headers=headers)


def until_ready(server, **kw) -> requests.Response:
    for _ in range(20):
        resp = export(server, **kw)
        if resp.status_code != 202:
            return resp
    raise AssertionError("export never became ready")


def parse_csv(text: str) -> list[dict[str, str]]:
    csv.field_size_limit(1 << 24)
    return list(csv.DictReader(io.StringIO(text, newline="")))


def rows_for(server, resource="events", day=dt.date(2026, 11, 1)):
    """The generated rows of the day, reduced to the fields :func:`export` requests."""
    rows = generate_rows(resource, day, application_id=APP, tz=server.tz, devices=server.devices, seed=server.seed)
    return [{f: r[f] for f in RESOURCES[resource].fields} for r in rows]


def test_status_endpoint(server):
    resp = http_get(f"{server.url}/management/v1/logsapi/status", headers={"Authorization": f"OAuth {TOKEN}"})
    assert resp.status_code == 200
    assert resp.json() == {"logs_api_availability_status": "enabled"}
    server.availability = "disabled"
    resp = http_get(f"{server.url}/management/v1/logsapi/status", headers={"Authorization": f"OAuth {TOKEN}"})
    assert resp.json() == {"logs_api_availability_status": "disabled"}


def test_auth_missing_wrong_and_token_in_query(server):
    missing = export(server, token=None)
    assert missing.status_code == 401 and "Authorization" in missing.text
    wrong = export(server, token="nope")
    assert wrong.status_code == 403 and "invalid OAuth token" in wrong.text
    assert wrong.headers["Content-Type"].startswith("text/plain")
    in_query = export(server, token=None, oauth_token=TOKEN)
    assert in_query.status_code == 400 and "Authorization header" in in_query.text
    assert TOKEN not in repr(server.requests) and TOKEN not in repr(server)
    assert all("oauth_token" not in params for _, _, params, _ in server.requests)


@pytest.mark.parametrize(
    ("params", "status", "needle"),
    [
        ({"application_id": None}, 400, "application_id"),
        ({"application_id": "abc"}, 400, "application_id"),
        ({"application_id": "999"}, 403, "no access to application_id 999"),
        ({"date_since": None}, 400, "date_since"),
        ({"date_since": "01.11.2026"}, 400, "date_since"),
        ({"date_until": "2026-11-01 25:00:00"}, 400, "date_until"),
        ({"date_since": "2026-11-02", "date_until": "2026-11-01"}, 400, "date_since"),
        ({"fields": None}, 400, "fields"),
        ({"fields": "event_name,no_such_field"}, 400, "no_such_field"),
        ({"date_dimension": "server"}, 400, "date_dimension"),
        ({"limit": "-1"}, 400, "limit"),
        ({"use_utf8_bom": "maybe"}, 400, "use_utf8_bom"),
        ({"parts_count": "2"}, 400, "part_number"),
        ({"parts_count": "2", "part_number": "2"}, 400, "part_number"),
        ({"bogus": "1"}, 400, "bogus"),
    ],
)
def test_bad_parameters_are_named(server, params, status, needle):
    resp = export(server, **params)
    assert resp.status_code == status
    assert needle in resp.text


def test_unknown_resource_and_format(server):
    resp = export(server, resource="profiles")  # the old resource the docs replaced by profiles_v2
    assert resp.status_code == 400 and "Unknown resource: 'profiles'" in resp.text
    resp = export(server, resource="no_such_resource")
    assert resp.status_code == 400 and "no_such_resource" in resp.text
    resp = export(server, fmt="xml")
    assert resp.status_code == 400 and "format" in resp.text
    resp = http_get(f"{server.url}/nope", headers={"Authorization": f"OAuth {TOKEN}"})
    assert resp.status_code == 404


def test_202_progress_then_200_and_served_again(server):
    server.polls_before_ready = 3
    bodies = [(r.status_code, r.text) for r in (export(server) for _ in range(3))]
    assert bodies == [(202, "Wait for result"), (202, "Progress is 33%"), (202, "Progress is 66%")]
    ready = export(server)
    assert ready.status_code == 200
    again = export(server)
    assert again.status_code == 200 and again.content == ready.content
    assert server.statuses() == [202, 202, 202, 200, 200]


def test_zero_polls_serves_at_once(server):
    server.polls_before_ready = 0
    assert export(server).status_code == 200


def test_body_is_the_generated_rows_with_gzip_and_content_length(server):
    first = export(server)
    assert first.status_code == 202
    resp = http_get(
        first.url, headers={"Authorization": f"OAuth {TOKEN}", "Accept-Encoding": "gzip"}, stream=True, timeout=30
    )
    assert resp.status_code == 200
    assert resp.headers["Content-Encoding"] == "gzip"
    compressed = resp.raw.read(decode_content=False)
    assert int(resp.headers["Content-Length"]) == len(compressed)
    text = gzip.decompress(compressed).decode("utf-8")
    assert text.startswith(EVENTS_FIELDS + "\n")
    assert parse_csv(text) == rows_for(server)


def test_identity_when_gzip_not_accepted(server):
    plain = until_ready(server, accept="identity")
    assert plain.status_code == 200
    assert "Content-Encoding" not in plain.headers
    assert int(plain.headers["Content-Length"]) == len(plain.content)
    assert plain.headers["Content-Type"].startswith("text/csv")
    assert parse_csv(plain.text) == rows_for(server)


def test_json_format_has_string_values(server):
    resp = until_ready(server, fmt="json")
    assert resp.headers["Content-Type"].startswith("application/json")
    data = resp.json()["data"]
    assert data == rows_for(server)
    assert all(isinstance(v, str) for row in data for v in row.values())


def test_bom_limit_field_subset_and_filters(server):
    bom = until_ready(server, accept="identity", use_utf8_bom="true")
    assert bom.content.startswith(b"\xef\xbb\xbf")
    limited = until_ready(server, fields="event_name,appmetrica_device_id", limit="5")
    got = parse_csv(limited.text)
    assert len(got) == 5 and list(got[0]) == ["event_name", "appmetrica_device_id"]
    only = until_ready(server, fields="event_name,os_name", os_name="ios")
    got = parse_csv(only.text)
    assert got and {r["os_name"] for r in got} == {"ios"}


@pytest.mark.parametrize(
    ("resource", "field"),
    [
        ("events", "appmetrica_sdk_version"),
        ("sessions_starts", "installation_id"),
        ("sessions_starts", "appmetrica_sdk_version"),
        ("installations", "device_ipv6"),
        ("installations", "original_device_model"),
        ("events", "plan"),  # a custom attribute name only profiles_v2 takes
        ("profiles_v2", "bad-name"),
    ],
)
def test_a_field_the_docs_do_not_list_is_refused_by_name(server, resource, field):
    resp = export(server, resource=resource, fields=",".join((*RESOURCES[resource].fields, field)))
    assert resp.status_code == 400
    assert f"unknown field(s) for {resource}: {field}" in resp.text


def test_fields_are_checked_against_the_docs_not_the_client(server):
    """Documented fields the client never asks for are served (empty when the demo has no data for them); a
    documented resource the demo does not generate exports a header only; custom attributes come by name."""
    installs = parse_csv(until_ready(server, resource="installations", fields="install_datetime,click_ipv6").text)
    assert installs and list(installs[0]) == ["install_datetime", "click_ipv6"]
    profiles = parse_csv(until_ready(server, resource="profiles_v2", fields="profile_id,android_id,plan,no_such").text)
    assert profiles and {p["android_id"] for p in profiles} == {""} and {p["no_such"] for p in profiles} == {""}
    assert {p["plan"] for p in profiles} >= {"free", "premium"}
    deeplinks = until_ready(server, resource="deeplinks", fields="deeplink_url_host,appmetrica_device_id")
    assert deeplinks.status_code == 200 and deeplinks.text.strip() == "deeplink_url_host,appmetrica_device_id"
    twice = export(server, fields="event_name,event_name")
    assert twice.status_code == 400 and "twice: event_name" in twice.text


def test_partial_day_window_and_receive_dimension(server):
    resp = until_ready(server, date_since="2026-11-01 10:00:00", date_until="2026-11-01 11:59:59")
    got = parse_csv(resp.text)
    assert got and all("2026-11-01 10:00:00" <= r["event_datetime"] <= "2026-11-01 11:59:59" for r in got)
    expected = [r for r in rows_for(server) if "2026-11-01 10:00:00" <= r["event_datetime"] <= "2026-11-01 11:59:59"]
    assert got == expected
    recv = parse_csv(until_ready(server, date_dimension="receive").text)
    assert recv and all(r["event_receive_datetime"].startswith("2026-11-01") for r in recv)
    assert any(r["event_datetime"] < "2026-11-01" for r in recv)  # late arrivals from the day before


def test_date_only_params_are_accepted(server):
    resp = until_ready(server, date_since="2026-11-01", date_until="2026-11-01")
    assert parse_csv(resp.text) == rows_for(server)


def test_fourth_queued_export_gets_429(server):
    days = ["2026-10-28", "2026-10-29", "2026-10-30", "2026-10-31"]
    statuses = [export(server, date_since=d, date_until=d).status_code for d in days]
    assert statuses == [202, 202, 202, 429]
    resp = export(server, date_since=days[3], date_until=days[3])
    assert resp.text == QUOTA_BODY.format(n=3)
    assert resp.text.startswith("There are already 3 enqueued queries for given application_id.")
    assert export(server, date_since=days[0], date_until=days[0]).status_code == 200  # one finishes ...
    assert export(server, date_since=days[3], date_until=days[3]).status_code == 202  # ... and frees a slot


def test_too_big_and_parts_union(server):
    full = until_ready(server, accept="identity").content
    server.reset()
    server.max_export_bytes = len(full) - 1
    resp = export(server)
    assert resp.status_code == 400 and resp.text == "Export is too big. Try to use more parts."
    server.max_export_bytes = None
    union: collections.Counter[tuple[str, ...]] = collections.Counter()
    devices_by_part = []
    for k in range(4):
        part = parse_csv(until_ready(server, parts_count="4", part_number=str(k)).text)
        union.update(tuple(r.values()) for r in part)
        devices_by_part.append({r["appmetrica_device_id"] for r in part})
    assert union == collections.Counter(tuple(r.values()) for r in rows_for(server))
    for i in range(4):
        for j in range(i + 1, 4):
            assert not devices_by_part[i] & devices_by_part[j]  # a device lives in one part only


def test_profiles_split_by_device_too(server):
    whole = parse_csv(until_ready(server, resource="profiles_v2").text)
    halves = [parse_csv(until_ready(server, resource="profiles_v2", parts_count="2", part_number=str(k)).text)
              for k in range(2)]  # fmt: skip
    assert sorted(map(str, halves[0] + halves[1])) == sorted(map(str, whole))
    assert whole == rows_for(server, "profiles_v2")


def test_injected_faults_are_consumed_in_order(server):
    server.inject(status=503)
    server.inject(status=429)
    server.inject(status=500, body="boom", headers={"Retry-After": "1"})
    first, second, third = export(server), export(server), export(server)
    assert (first.status_code, second.status_code, third.status_code) == (503, 429, 500)
    assert "enqueued queries" in second.text
    assert third.text == "boom" and third.headers["Retry-After"] == "1"
    assert export(server).status_code == 202  # the export itself was not touched by the faults
    assert export(server).status_code == 200


def test_injected_truncation_breaks_the_next_200_only(server):
    server.inject(truncate=True)
    assert export(server).status_code == 202  # a 202 does not consume it
    with pytest.raises(requests.RequestException):
        export(server)
    ok = export(server)
    assert ok.status_code == 200 and parse_csv(ok.text) == rows_for(server)


def test_injected_truncation_without_length(server):
    server.inject(truncate=True, content_length=False)
    url = export(server).url
    resp = http_get(
        url, headers={"Authorization": f"OAuth {TOKEN}", "Accept-Encoding": "gzip"}, stream=True, timeout=30
    )
    assert resp.status_code == 200 and "Content-Length" not in resp.headers
    body = resp.raw.read(decode_content=False)  # read until the server closes the connection
    with pytest.raises(EOFError):
        gzip.decompress(body)
    full = http_get(url, headers={"Authorization": f"OAuth {TOKEN}", "Accept-Encoding": "gzip"}, stream=True)
    assert len(body) == len(full.raw.read(decode_content=False)) // 2


def test_inject_needs_status_or_truncate(server):
    with pytest.raises(ValueError):
        server.inject()
    with pytest.raises(ValueError):
        server.inject(status=500, truncate=True)


def test_same_seed_same_bytes_across_servers():
    bodies = []
    for _ in range(2):
        with DemoLogsApiServer(token=TOKEN, devices=150, seed=3, polls_before_ready=0) as srv:
            bodies.append(export(srv).content)
    assert bodies[0] == bodies[1]
    with DemoLogsApiServer(token=TOKEN, devices=150, seed=4, polls_before_ready=0) as srv:
        assert export(srv).content != bodies[0]


def test_command_line_server_prints_url_not_token():
    env = dict(os.environ, DEMO_APPMETRICA_TOKEN="cli-secret-token")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest.appmetrica.demo", "--port", "0", "--devices", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line
        url = line.split("listening on ", 1)[1].split()[0]
        ok = http_get(f"{url}/management/v1/logsapi/status", headers={"Authorization": "OAuth cli-secret-token"})
        assert ok.status_code == 200
        denied = http_get(f"{url}/management/v1/logsapi/status", headers={"Authorization": "OAuth demo-token"})
        assert denied.status_code == 403  # the env token wins over the default
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "cli-secret-token" not in line + out + err
