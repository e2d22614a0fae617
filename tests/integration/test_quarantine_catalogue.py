"""The quarantine catalogue end to end: each kind of bad row is injected into the fake Logs API's export,
extracted by the real client into bronze, and built into silver.

Each case shows: the one damaged row is quarantined with its named reason, its raw text and source
position (bronze file, row); every other row of the same file reaches silver; the day succeeds
below the threshold and its summary counts the row. Drift cases (a new column, a missing column, a
column whose type changed) go the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import airflow  # noqa: F401 - imported first: it reconfigures logging, which caplog must come after
import pytest
from lake_tables import quarantine_table, silver_rows, silver_table

from ingest.appmetrica import AppMetricaSettings, extract_resource
from ingest.appmetrica.demo.generator import generate_rows
from ingest.appmetrica.demo.server import DemoLogsApiServer
from ingest.appmetrica.resources import RESOURCES
from lakehouse.settings import Layout
from transforms.silver import SilverError, build_silver
from transforms.silver.quarantine_reasons import QUARANTINE_REASONS

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 3)
TOKEN = "catalogue-token"
APP = "777"
TZ = "Europe/Moscow"
DEVICES = 60
MARK = "zzmarkzz"  # a plain value the CSV writer leaves unquoted; body hooks replace it with raw bytes

Rows = list[dict[str, str]]


def _target(rows: Rows, fields: list[str]) -> int:
    """Index of a row that is unique in the export and has no line break (so it is one physical line)."""
    counts: dict[tuple[str, ...], int] = {}
    for r in rows:
        key = tuple(r[f] for f in fields)
        counts[key] = counts.get(key, 0) + 1
    for i, r in enumerate(rows[5:], start=5):
        if counts[tuple(r[f] for f in fields)] == 1 and not any("\n" in v or "\r" in v for v in r.values()):
            return i
    raise AssertionError("no suitable row to damage")


def set_value(column: str, value: str) -> Callable[[list[str], Rows], tuple[list[str], Rows]]:
    """A rows hook that sets ``column`` of one row to ``value``."""

    def hook(fields: list[str], rows: Rows) -> tuple[list[str], Rows]:
        rows[_target(rows, fields)][column] = value
        return fields, rows

    return hook


def replace_mark(data: bytes) -> Callable[[bytes], bytes]:
    def hook(body: bytes) -> bytes:
        assert body.count(MARK.encode()) == 1
        return body.replace(MARK.encode(), data)

    return hook


@dataclass(frozen=True)
class BadRow:
    """One kind of bad row: how to damage the export, and the reason silver must give."""

    resource: str
    reason: str
    rows: Callable[[list[str], Rows], tuple[list[str], Rows]]
    raw_contains: str
    body: Callable[[bytes], bytes] | None = None


CATALOGUE: dict[str, BadRow] = {
    "unbalanced_quote": BadRow(
        "events", "broken_csv_record", set_value("city", MARK), '"unclosed quote', replace_mark(b'"unclosed quote')
    ),
    "wrong_field_count": BadRow(
        "events", "wrong_field_count", set_value("city", MARK), "one,two", replace_mark(b"one,two")
    ),
    "invalid_event_json": BadRow(
        "events", "invalid_json", set_value("event_json", '{"screen": {"name": "cat'), '{""screen""'
    ),
    "invalid_profile_boolean": BadRow(
        "profiles_v2", "invalid_boolean", set_value("appmetrica_notifications_enabled", "maybe"), "maybe"
    ),
    "unparseable_datetime": BadRow(
        "events", "invalid_datetime", set_value("event_datetime", "03/11/2026 10:00"), "03/11/2026 10:00"
    ),
    "impossible_datetime": BadRow(
        "events", "invalid_datetime", set_value("event_datetime", "2026-02-30 10:00:00"), "2026-02-30 10:00:00"
    ),
    "empty_device_id": BadRow("events", "missing_required_field", set_value("appmetrica_device_id", ""), ""),
    "non_utf8_bytes": BadRow(
        "events", "invalid_utf8", set_value("city", MARK), "Mosc\\xff\\xfew", replace_mark(b"Mosc\xff\xfew")
    ),
    "field_over_131072_chars": BadRow(
        "events", "field_too_long", set_value("event_json", '{"blob": "' + "x" * 131_100 + '"}'), '{""blob""'
    ),
    "unknown_enum_value": BadRow("events", "unknown_enum_value", set_value("os_name", "symbian"), "symbian"),
    "numeric_field_with_text": BadRow("sessions_starts", "invalid_integer", set_value("session_id", "12ab"), "12ab"),
    "amount_with_decimal_comma": BadRow(
        "ad_revenue_events", "invalid_decimal", set_value("ad_revenue", "0,0012"), "0,0012"
    ),
    "undocumented_ad_revenue_type": BadRow(
        "ad_revenue_events", "unknown_enum_value", set_value("ad_revenue_type", "video"), "video"
    ),
}


@pytest.fixture(scope="module")
def server() -> DemoLogsApiServer:
    with DemoLogsApiServer(token=TOKEN, application_id=APP, tz=TZ, devices=DEVICES, polls_before_ready=0) as srv:
        yield srv


@pytest.fixture
def run_day(
    server: DemoLogsApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], tuple[Layout, dict]]:
    layout = Layout(tmp_path / "data")
    # Small exports (27 sessions, 6 profiles): one bad row is several percent. The default 1 % is
    # exercised on events (one bad row of ~170) by test_default_threshold_*.
    monkeypatch.setenv("LAKEHOUSE_QUARANTINE_MAX_RATE", "0.2")
    settings = AppMetricaSettings.from_connection(server.url, TOKEN, {"application_id": APP})
    server.reset()

    def _run() -> tuple[Layout, dict]:
        for resource in RESOURCES:
            extract_resource(resource, DAY, settings=settings, layout=layout)
        return layout, build_silver(DAY, layout)

    yield _run
    server.reset()


def _distinct(resource: str) -> int:
    fields = RESOURCES[resource].fields
    rows = generate_rows(resource, DAY, application_id=APP, tz=TZ, devices=DEVICES)
    if resource == "profiles_v2":
        return len({r["profile_id"] for r in rows})
    return len({tuple(r[f] for f in fields) for r in rows})


def _quarantine(layout: Layout, resource: str) -> list[dict]:
    return quarantine_table(layout, resource, DAY).to_pylist()


def _silver_rows(layout: Layout, table: str) -> int:
    return silver_rows(layout, table, DAY)


SILVER_OF = {"events": "events_part", "profiles_v2": "permanent_user_properties"}


def test_catalogue_covers_every_reason():
    assert {case.reason for case in CATALOGUE.values()} | {"broken_json_record", "invalid_date", "invalid_boolean"} == (
        set(QUARANTINE_REASONS)
    )


@pytest.mark.parametrize("kind", sorted(CATALOGUE))
def test_bad_row_is_quarantined_and_the_rest_of_the_file_kept(kind, server, run_day):
    case = CATALOGUE[kind]
    server.tamper(case.resource, rows=case.rows, body=case.body)

    layout, summary = run_day()

    bad = _quarantine(layout, case.resource)
    assert [r["reason"] for r in bad] == [case.reason], bad
    row = bad[0]
    assert row["bronze_file"].startswith(f"bronze/appmetrica/{case.resource}/date={DAY}/")
    assert (layout.root / row["bronze_file"]).exists()
    assert row["bronze_row"] > 5
    assert row["detail"]
    assert case.raw_contains in row["raw"]
    stats = summary["resources"][case.resource]
    assert stats["quarantined_by_reason"] == {case.reason: 1}
    assert summary["quarantined"][case.resource] == 1
    if case.resource in SILVER_OF:
        assert _silver_rows(layout, SILVER_OF[case.resource]) == _distinct(case.resource) - 1
    else:
        assert stats["rows_good"] + stats["duplicates"] == stats["rows_read"] - 1
    for other in set(RESOURCES) - {case.resource}:
        assert summary["quarantined"][other] == 0


def test_unbalanced_quote_does_not_swallow_the_rows_after_it(server, run_day):
    """Without resynchronising, the stray quote would eat every line up to the next quote character."""
    case = CATALOGUE["unbalanced_quote"]
    server.tamper("events", rows=case.rows, body=case.body)
    layout, _ = run_day()
    bad = _quarantine(layout, "events")
    events = silver_table(layout, "events_part", DAY).to_pylist()
    rows_kept = {e["bronze_row"] for e in events}
    assert bad[0]["bronze_row"] + 1 in rows_kept or bad[0]["bronze_row"] + 2 in rows_kept
    assert "line" in bad[0]["detail"] and "re-read" in bad[0]["detail"]


def test_new_column_is_kept_in_bronze_reported_and_warned(server, run_day, caplog):
    def add_column(fields: list[str], rows: Rows) -> tuple[list[str], Rows]:
        for i, r in enumerate(rows):
            r["ab_test_group"] = "ab"[i % 2]
        return [*fields, "ab_test_group"], rows

    server.tamper("events", rows=add_column)
    with caplog.at_level(logging.WARNING, logger="transforms.silver.job"):
        layout, summary = run_day()

    bronze = next(layout.bronze("events", DAY).glob("*.csv.gz"))
    import gzip

    with gzip.open(bronze, "rt", encoding="utf-8") as fh:
        assert fh.readline().rstrip("\n").endswith(",ab_test_group")
    drift = json.loads((layout.reports / "schema_drift" / f"date={DAY}" / "drift.json").read_text())
    assert drift["extra_columns"] == {"events": ["ab_test_group"]}
    assert summary["schema_drift"] == {"events": ["ab_test_group"]}
    assert any("ab_test_group" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert _silver_rows(layout, "events_part") == _distinct("events")


def test_missing_required_column_fails_naming_column_and_resource(server, run_day):
    def drop_column(fields: list[str], rows: Rows) -> tuple[list[str], Rows]:
        return [f for f in fields if f != "event_name"], rows

    server.tamper("events", rows=drop_column)
    with pytest.raises(SilverError, match=r"events.*event_name") as err:
        run_day()
    assert "lacks required column" in str(err.value)


def test_type_change_quarantines_only_the_rows_that_do_not_fit(server, run_day):
    def session_ids_become_text(fields: list[str], rows: Rows) -> tuple[list[str], Rows]:
        for r in rows[:3]:
            r["session_id"] = "s-" + r["session_id"]
        return fields, rows

    server.tamper("sessions_starts", rows=session_ids_become_text)
    layout, summary = run_day()
    bad = _quarantine(layout, "sessions_starts")
    assert [r["reason"] for r in bad] == ["invalid_integer"] * 3
    assert all(r["detail"].startswith("session_id=s-") for r in bad)
    drift = json.loads((layout.reports / "schema_drift" / f"date={DAY}" / "drift.json").read_text())
    assert drift["type_mismatches"] == {"sessions_starts": {"session_id": 3}}
    assert summary["resources"]["sessions_starts"]["rows_good"] > 0


def test_default_threshold_lets_one_bad_event_in_170_through(server, run_day, monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_QUARANTINE_MAX_RATE")
    server.tamper("events", rows=set_value("event_json", "{broken"))
    layout, summary = run_day()
    stats = summary["resources"]["events"]
    assert stats["quarantined"] == 1 and stats["rows_read"] > 100
    assert _silver_rows(layout, "events_part") == _distinct("events") - 1


def test_a_whole_column_changing_type_breaks_the_threshold(server, run_day):
    def all_text(fields: list[str], rows: Rows) -> tuple[list[str], Rows]:
        for r in rows:
            r["session_id"] = "s-" + r["session_id"]
        return fields, rows

    server.tamper("sessions_starts", rows=all_text)
    with pytest.raises(SilverError, match=r"sessions_starts: \d+ of \d+ rows \(100\.00%\) quarantined") as err:
        run_day()
    assert "invalid_integer" in str(err.value)
