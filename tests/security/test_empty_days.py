"""Days without events (lookback days before an app's first exported day, or any quiet day) are an empty export to
report, and to alert on when an alerts channel is configured, not a failed quality gate. The suites' row-count floor
fails only the days LAKEHOUSE_ROW_FLOOR names: the run's own day by default, every day, or none."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from ingest.appmetrica.demo.server import DemoLogsApiServer
from lakehouse import pipeline
from lakehouse.settings import ConfigError
from transforms.quality.gx_gate import QualityGateError

pytestmark = pytest.mark.integration

LAUNCH = dt.date(2026, 11, 3)  # the app's first day with events; the two lookback days before it have none
TOKEN = "empty-days-token"


def launched(fields: list[str], rows: list[dict[str, str]]) -> tuple[list[str], list[dict[str, str]]]:
    return fields, [r for r in rows if r["event_datetime"][:10] >= LAUNCH.isoformat()]


@pytest.fixture
def new_app(tmp_path, monkeypatch) -> Iterator[DemoLogsApiServer]:
    """A demo Logs API whose app has events from LAUNCH on; a run of LAUNCH looks back two days."""
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("LAKEHOUSE_LOOKBACK_DAYS", "2")
    monkeypatch.delenv("LAKEHOUSE_ROW_FLOOR", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_LAKEHOUSE_ALERTS", raising=False)
    with DemoLogsApiServer(token=TOKEN, application_id="4242", devices=30, polls_before_ready=0) as api:
        api.tamper("events", rows=launched)
        conn = {"conn_type": "http", "host": api.url, "password": TOKEN,
                "extra": {"application_id": "4242", "poll_interval_seconds": 0.05}}  # fmt: skip
        monkeypatch.setenv("AIRFLOW_CONN_APPMETRICA_DEFAULT", json.dumps(conn))
        yield api


def build_silver(day: dt.date) -> dict[str, Any]:
    extracted = [pipeline.extract(r, day) for r in pipeline.RESOURCES]
    return pipeline.silver(day, extracted)


def test_empty_lookback_days_are_reported_and_alerted_not_failed(new_app, http_receiver, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_LAKEHOUSE_ALERTS", json.dumps({"conn_type": "http", "host": http_receiver.url}))
    silver = build_silver(LAUNCH)
    assert silver["rebuilt"] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    quality = pipeline.quality_gate(LAUNCH, silver["rebuilt"])  # used to fail: events_part observed 0
    assert quality["empty"] == {"2026-11-01": ["events_part"], "2026-11-02": ["events_part"]}
    assert quality["row_floor"] == "run_day"
    (alert,) = http_receiver.requests
    assert alert["json"]["event"] == "empty" and alert["json"]["day"] == "2026-11-03"
    assert "no rows in 2026-11-01: events_part; 2026-11-02: events_part" in alert["json"]["text"]

    report = pipeline.write_report(LAUNCH, "probe", {"extract": [{"resource": "events", "rows": 1}],
                                                     "silver": silver, "quality": quality})  # fmt: skip
    assert report["empty_days"] == quality["empty"]
    from lakehouse.local_airflow import summary_lines

    report |= {"gold": {}, "published": {}}
    assert "empty export on 2026-11-01: no rows in events_part (reported, not failed)" in summary_lines(report)


def test_the_floor_applies_where_configured(new_app, monkeypatch):
    silver = build_silver(LAUNCH)
    monkeypatch.setenv("LAKEHOUSE_ROW_FLOOR", "all")
    with pytest.raises(QualityGateError, match="events_part: expect_table_row_count_to_be_between failed: observed 0"):
        pipeline.quality_gate(LAUNCH, silver["rebuilt"])
    monkeypatch.setenv("LAKEHOUSE_ROW_FLOOR", "fewest")
    with pytest.raises(ConfigError, match="LAKEHOUSE_ROW_FLOOR must be one of run_day, all, none, got 'fewest'"):
        pipeline.quality_gate(LAUNCH, silver["rebuilt"])


def test_an_empty_run_day_fails_by_default_and_is_reported_with_none(new_app, monkeypatch):
    day = LAUNCH - dt.timedelta(days=1)
    monkeypatch.setenv("LAKEHOUSE_LOOKBACK_DAYS", "0")
    silver = build_silver(day)
    with pytest.raises(QualityGateError, match="events_part: expect_table_row_count_to_be_between failed: observed 0"):
        pipeline.quality_gate(day, silver["rebuilt"])
    monkeypatch.setenv("LAKEHOUSE_ROW_FLOOR", "none")
    assert pipeline.quality_gate(day, silver["rebuilt"])["empty"] == {day.isoformat(): ["events_part"]}
