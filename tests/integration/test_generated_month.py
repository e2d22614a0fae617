"""Thirty generated days through the whole real path: demo Logs API -> client -> bronze -> silver -> dbt gold.

Silver is checked against the generator's own rows (distinct events per day), and every gold
mart row against the brute-force pandas computations of test_gold_marts.py, run on silver.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from lake_tables import silver_table
from test_gold_marts import (
    expected_device_features_daily,
    expected_dim_devices,
    expected_fct_device_daily,
    read_mart,
)

from ingest.appmetrica import AppMetricaSettings, extract_resource
from ingest.appmetrica.demo.generator import generate_rows
from ingest.appmetrica.demo.server import DemoLogsApiServer
from ingest.appmetrica.resources import RESOURCES
from lakehouse.settings import Layout
from transforms.gold import build_gold
from transforms.silver import build_silver

FIRST = dt.date(2026, 10, 1)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(30)]
DEVICES = 250
TZ = "Europe/Moscow"
MONEY_AND_STABILITY = ("revenue_events", "ad_revenue_events", "crashes", "errors")


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Layout, pd.DataFrame]:
    layout = Layout(tmp_path_factory.mktemp("month") / "data")
    with DemoLogsApiServer(token="month-token", application_id="42", tz=TZ, devices=DEVICES) as server:
        settings = AppMetricaSettings.from_connection(
            server.url, "month-token", {"application_id": "42", "poll_interval_seconds": 0.01}
        )
        for day in DAYS:
            for resource in RESOURCES:
                extract_resource(resource, day, settings=settings, layout=layout)
            build_silver(day, layout)
    build_gold(layout)
    return layout, read_silver(layout, "events_part")


def read_silver(layout: Layout, table: str) -> pd.DataFrame:
    return silver_table(layout, table).to_pandas()


def silver_rows(layout: Layout, table: str) -> list[dict]:
    """Rows as Python values (None stays None, decimals stay Decimal)."""
    return silver_table(layout, table).to_pylist()


def test_silver_holds_each_generated_event_once(month):
    _, events = month
    for day in DAYS:
        rows = generate_rows("events", day, application_id="42", tz=TZ, devices=DEVICES)
        fields = RESOURCES["events"].fields
        distinct = {tuple(r[f] for f in fields) for r in rows}
        assert len(rows) > len(distinct), "the generator should emit some exact duplicates"
        assert (events["export_date"] == day).sum() == len(distinct)
    assert events["event_id"].is_unique
    assert (events["event_date"] == events["export_date"]).all()


def test_gold_marts_match_brute_force_on_silver(month):
    layout, events = month
    assert read_mart(layout.root, "fct_device_daily") == expected_fct_device_daily(events)
    assert read_mart(layout.root, "dim_devices") == expected_dim_devices(events)
    features = read_mart(layout.root, "device_features_daily")
    # The demo server's own revenue, ad revenue, crash and error rows, as silver typed them.
    extra = {table: silver_rows(layout, table) for table in MONEY_AND_STABILITY}
    assert all(extra.values()), "the generated month should hold rows of every one of these tables"
    assert features == expected_device_features_daily(events, extra)
    assert len({f[1] for f in features}) == len(DAYS)
