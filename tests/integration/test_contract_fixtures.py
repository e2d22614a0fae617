"""Contract fixtures from the docs: each resource's example response, as CSV and as JSON (tests/fixtures/appmetrica/),
goes through the client, bronze and silver, and every requested value arrives typed and unchanged."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from lake_tables import silver_table

from ingest.appmetrica import AppMetricaSettings, LogsApiClient, extract_resource
from ingest.appmetrica.catalogue import resource_doc
from ingest.appmetrica.resources import RESOURCES
from lakehouse.settings import Layout
from transforms.silver.job import TYPED_ROW_TABLES, build_silver

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "appmetrica"
TOKEN = "fixture-token"
APP = "1111"  # the docs' example application
DAY = dt.date(2019, 4, 26)  # the local day of the examples' timestamps
DEVICE = 123456789012345678  # every example's appmetrica_device_id


def docs_row(resource: str) -> dict[str, str]:
    (row,) = json.loads((FIXTURES / f"{resource}.json").read_text(encoding="utf-8"))["data"]
    return row


def _body(resource: str, fmt: str, fields: list[str]) -> bytes:
    """The fixture reduced to the requested fields, in the fixture's own column order (the docs' CSV sample does not
    follow the request's order); a requested field the example lacks comes out empty."""
    if fmt == "json":
        row = docs_row(resource)
        kept = {k: v for k, v in row.items() if k in fields} | {f: "" for f in fields if f not in row}
        return json.dumps({"data": [kept]}, ensure_ascii=False).encode("utf-8")
    reader = csv.DictReader(io.StringIO((FIXTURES / f"{resource}.csv").read_text(encoding="utf-8"), newline=""))
    rows = list(reader)
    header = [c for c in reader.fieldnames or () if c in fields] + [f for f in fields if f not in rows[0]]
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([row.get(c, "") for c in header] for row in rows)
    return buf.getvalue().encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        params = dict(parse_qsl(split.query))
        resource, _, fmt = split.path.rsplit("/", 1)[-1].partition(".")
        fields = params["fields"].split(",")
        unknown = resource_doc(resource).undocumented(fields)
        status, body = (400, f"unknown fields: {unknown}".encode()) if unknown else (200, _body(resource, fmt, fields))
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if fmt == "json" else "text/csv")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _as_exported(value: object) -> str:
    """A silver value written back the way the Logs API exports it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, decimal.Decimal):
        return format(value.normalize(), "f")
    return str(value)


@pytest.fixture(scope="module", params=["csv", "json"])
def silver(request: pytest.FixtureRequest, api: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Layout, dict]:
    layout = Layout(tmp_path_factory.mktemp(request.param))
    settings = AppMetricaSettings(base_url=api, token=TOKEN, application_id=APP, format=request.param)
    with LogsApiClient(settings, sleep=lambda _s: None, rng=random.Random(0)) as client:
        for resource in RESOURCES:
            manifest = extract_resource(resource, DAY, settings=settings, layout=layout, client=client)
            assert manifest["rows"] == 1, resource
    return layout, build_silver(DAY, layout)


def read(layout: Layout, table: str) -> list[dict]:
    return silver_table(layout, table, DAY).to_pylist()


def test_every_example_row_is_kept(silver):
    _layout, summary = silver
    for resource, stats in summary["resources"].items():
        assert (stats["rows_read"], stats["rows_good"], stats["quarantined"]) == (1, 1, 0), (resource, stats)
        assert stats["extra_columns"] == [], resource


@pytest.mark.parametrize("resource", sorted(TYPED_ROW_TABLES))
def test_row_tables_carry_every_requested_value_unchanged(silver, resource):
    layout, _summary = silver
    (row,) = read(layout, resource)
    example = docs_row(resource)
    for field in RESOURCES[resource].fields:
        expected = example.get(field, "")
        got = _as_exported(row[field])
        if isinstance(row[field], decimal.Decimal):
            expected = format(decimal.Decimal(expected).normalize(), "f")
        assert got == expected, (resource, field)


def test_events(silver):
    layout, _summary = silver
    (event,) = read(layout, "events_part")
    example = docs_row("events")
    for field in RESOURCES["events"].fields:
        assert _as_exported(event[field]) == example[field], field
    assert event["event_date"] == DAY
    props = {(p["property_path"], p["value_text"]) for p in read(layout, "tmp_event_properties")}
    assert props == {("name", "Alice"), ("age", "18"), ("favorite_games.strategies", "Age of Empires")}


def test_sessions_installs_and_profiles(silver):
    layout, _summary = silver
    (session,) = read(layout, "technical_data")
    assert (session["appmetrica_device_id"], session["session_id"], session["source"]) == (
        DEVICE,
        10000000049,
        "sessions_starts",
    )
    assert session["installation_id"] == "installation_id__example"  # from the session's event
    assert session["appmetrica_sdk_version"] == "3001000"  # from the device's profile
    assert (session["mcc"], session["mnc"], session["operator_name"]) == (250, 1, "MTS RUS")

    (device,) = read(layout, "mobile_devices")
    assert device["observations"] == 3  # the event, the session start and the install
    assert (device["device_model"], device["original_device_model"]) == ("iPhone X", "iPhone10,3")

    (profile,) = read(layout, "permanent_user_properties")
    assert (profile["profile_id"], profile["appmetrica_device_id"], profile["gender"]) == ("test", DEVICE, "M")
    assert (profile["age"], profile["sessions"], profile["crashes"], profile["errors"]) == (30, 15, 1, 3)
    assert (profile["first_session_date"], profile["last_start_date"]) == (dt.date(2019, 4, 20), DAY)
    assert profile["notifications_enabled"] is False
