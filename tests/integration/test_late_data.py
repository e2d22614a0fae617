"""Late-arriving events: each run exports the lookback days again and rebuilds only what changed.

Day D's first export lacks its evening events (they had not arrived yet). The run for D+1 exports D
again, finds the same bytes and leaves D's silver alone. When the late events have arrived, the run
for D+2 finds D's export grown, rebuilds D's silver, and gold's features for D and the days after it
are updated: they then equal a clean build from the complete exports.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest
from gold_tables import gold_location
from lake_tables import silver_rows
from test_gold_marts import read_mart

from ingest.appmetrica.demo.server import DemoLogsApiServer
from lakehouse import pipeline
from lakehouse.delta import duckdb_connect_lake, locate, partition_files, scan_sql
from lakehouse.settings import Layout

pytestmark = pytest.mark.integration

D = dt.date(2026, 11, 10)
TOKEN = "late-token"
APP = "4242"


class LateEvenings:
    """A rows hook hiding the events of ``day`` after 18:00 until ``arrived`` is set."""

    def __init__(self, day: dt.date) -> None:
        self.day = day.isoformat()
        self.arrived = False
        self.hidden = 0

    def __call__(self, fields: list[str], rows: list[dict[str, str]]) -> tuple[list[str], list[dict[str, str]]]:
        if self.arrived:
            return fields, rows
        kept = [r for r in rows if not (r["event_datetime"].startswith(self.day) and r["event_datetime"][11:] >= "18")]
        self.hidden = len(rows) - len(kept)
        return fields, kept


def _env(monkeypatch: pytest.MonkeyPatch, data: Path, url: str) -> None:
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(data))
    monkeypatch.setenv("LAKEHOUSE_LOOKBACK_DAYS", "2")
    monkeypatch.delenv("AIRFLOW_CONN_LAKEHOUSE_S3", raising=False)
    conn = {"conn_type": "http", "host": url, "password": TOKEN,
            "extra": {"application_id": APP, "poll_interval_seconds": 0.01}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_APPMETRICA_DEFAULT", json.dumps(conn))


def _files(layout: Layout, day: dt.date) -> list[dict]:
    """The data files of the day in silver events_part: new ones (uuid names) whenever the day is rebuilt."""
    return partition_files(locate("silver/events_part", layout), "export_date").get(day, [])


def _events_on(root: Path, day: dt.date) -> tuple[int, int]:
    """(silver events of ``day``, gold events_1d summed over the devices for ``day``)."""
    events = silver_rows(Layout(root), "events_part", day)
    gold = gold_location(root, "device_features_daily")
    with duckdb.connect() as con:
        duckdb_connect_lake(con, gold)
        (features,) = con.sql(
            f"select sum(events_1d) from ({scan_sql(gold)}) where feature_date = date '{day}'"  # noqa: S608
        ).fetchone()
    return events, features


def test_a_grown_export_rebuilds_its_silver_and_the_features_after_it(tmp_path, monkeypatch):
    """Also: an unchanged lookback day is left alone, and a day's export asked again within the server's 24 h
    cache is a fresh one (one poll per export: a client that repeated no-cache on its polls would restart the
    export forever)."""
    late = LateEvenings(D)
    with DemoLogsApiServer(token=TOKEN, application_id=APP, devices=80, polls_before_ready=1) as server:
        server.tamper("events", rows=late)
        _env(monkeypatch, tmp_path / "late", server.url)
        layout = Layout(tmp_path / "late")

        first = pipeline.run_day(D)
        assert late.hidden > 0
        assert first["silver_rows"]["events_part"] > 0
        events_before = _events_on(layout.root, D)
        assert events_before[0] == events_before[1] > 0

        stamps = {d: _files(layout, d) for d in pipeline.window(D)}
        second = pipeline.run_day(D + dt.timedelta(days=1))
        assert second["status"] == "success"
        assert second["silver_rebuilt"] == [(D + dt.timedelta(days=1)).isoformat()], "D's export had not changed"
        summary = json.loads((pipeline.run_dir(D + dt.timedelta(days=1)) / "summary.json").read_text())
        assert summary["silver_rebuilt"] == second["silver_rebuilt"]
        for d in pipeline.window(D)[1:]:  # D-1 and D were exported again with the same bytes
            assert _files(layout, d) == stamps[d], d
        before = read_mart(layout.root, "device_features_daily")  # features for D and D+1, evenings missing

        late.arrived = True  # within the server's 24 h cache: only a fresh export (no-cache) brings them
        third = pipeline.run_day(D + dt.timedelta(days=2))
        assert third["status"] == "success"
        assert _files(layout, D) != stamps[D], "D's silver must be rebuilt from its grown export"
        after = read_mart(layout.root, "device_features_daily")
        events_after = _events_on(layout.root, D)

        # A clean build from complete exports, for comparison.
        _env(monkeypatch, tmp_path / "clean", server.url)
        pipeline.run_day(D)
        pipeline.run_day(D + dt.timedelta(days=2))
        clean = read_mart(tmp_path / "clean", "device_features_daily")

    assert events_after[0] == events_after[1] > events_before[0], "D's late events reach silver and gold"
    assert sorted(after) == sorted(clean)
    by_key = {(r[0], r[1]): r for r in before}
    changed_dates = {r[1] for r in after if (r[0], r[1]) in by_key and by_key[(r[0], r[1])] != r}
    assert D in changed_dates, "features for D must include D's late events"
    assert D + dt.timedelta(days=1) in changed_dates, "the 7-day windows after D include the late events"


@pytest.mark.parametrize("raw", ["-1", "x", "31", "2.5"])
def test_a_bad_lookback_setting_is_named(raw, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_LOOKBACK_DAYS", raw)
    with pytest.raises(pipeline.ConfigError, match=f"LAKEHOUSE_LOOKBACK_DAYS.*{raw!r}"):
        pipeline.window(D)
