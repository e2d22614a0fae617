"""Incremental gold builds (build_gold with changed_dates) give exactly what a full rebuild gives.

History is built in full up to a day, then day after day incrementally, with late-arriving events
(a later export holding earlier event dates) and a very late event that moves a device's first
day more than 28 days back. Every mart is compared with the brute-force computations of
test_gold_marts.py on all the events written so far.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
from gold_tables import gold_location
from test_gold_marts import (
    FIRST_DAY,
    LAST_EXPORT,
    TRANSFORMER_MARTS,
    expected_device_attributes_daily,
    expected_device_features_daily,
    expected_dim_devices,
    expected_fct_device_daily,
    gold_hashes,
    make_events,
    read_mart,
    write_silver,
)

from lakehouse.delta import commit_metadata
from lakehouse.settings import Layout
from transforms.gold import STATE_FILE, build_gold

pytestmark = pytest.mark.integration


def _frame(rows: list[dict]) -> pd.DataFrame:
    events = pd.DataFrame(rows)
    events["session_id"] = events["session_id"].astype("UInt64")
    events["event_receive_timestamp"] = events["event_receive_timestamp"].astype("Int64")
    return events


def _check(root: Path, rows: list[dict]) -> None:
    events = _frame(rows)
    assert read_mart(root, "fct_device_daily") == expected_fct_device_daily(events)
    assert read_mart(root, "dim_devices") == expected_dim_devices(events)
    assert read_mart(root, "device_features_daily") == expected_device_features_daily(events)
    assert read_mart(root, "device_attributes_daily") == expected_device_attributes_daily(events)


def _write_partition(root: Path, export_date: dt.date, rows: list[dict]) -> None:
    write_silver(root, [r for r in rows if r["export_date"] == export_date])  # replaces the day in each table


def test_daily_incremental_builds_match_a_full_rebuild(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "lakehouse"
    rows = make_events(devices=120)
    by_export: dict[dt.date, list[dict]] = defaultdict(list)
    for row in rows:
        by_export[row["export_date"]].append(row)
    cutoff = LAST_EXPORT - dt.timedelta(days=3)
    written = [r for r in rows if r["export_date"] <= cutoff]
    write_silver(root, written)
    assert build_gold(Layout(root), changed_dates=[cutoff])["mode"] == "full"  # no state yet
    state = json.loads((root / "warehouse" / STATE_FILE).read_text())
    assert state["last_export_date"] == cutoff.isoformat()

    for day in (cutoff + dt.timedelta(days=1), cutoff + dt.timedelta(days=2)):
        written += by_export[day]
        _write_partition(root, day, written)
        summary = build_gold(Layout(root), changed_dates=[day])
        assert summary["mode"] == "incremental"
        assert set(summary["data_tests"]) == {"pass"} and set(summary["unit_tests"]) == {"pass"}
        # a date-partitioned mart gets only its recomputed feature dates replaced, in one commit
        for mart in ("device_features_daily", "device_attributes_daily"):
            commit = commit_metadata(gold_location(root, mart))
            assert commit["lakehouse.mode"] == "incremental"
            assert "feature_date" in commit["operationParameters"]["predicate"], commit
            assert commit["operationMetrics"]["num_added_rows"] < summary["marts"][mart]["rows"]
        whole = commit_metadata(gold_location(root, "dim_devices"))
        assert "predicate" not in whole["operationParameters"]
    _check(root, written)

    # The last export also carries a very late event: a known device's first day moves 29+ days back.
    device = next(r["appmetrica_device_id"] for r in written if r["event_date"] == LAST_EXPORT - dt.timedelta(days=1))
    first = min(r["event_date"] for r in written if r["appmetrica_device_id"] == device)
    late_day = min(first, FIRST_DAY) - dt.timedelta(days=2)
    template = next(r for r in written if r["appmetrica_device_id"] == device)
    at = dt.datetime.combine(late_day, dt.time(12, 0))
    late = template | {"event_id": "late" + "0" * 28, "event_date": late_day, "event_datetime": at,
                       "export_date": LAST_EXPORT}  # fmt: skip
    written += [*by_export[LAST_EXPORT], late]
    _write_partition(root, LAST_EXPORT, written)
    summary = build_gold(Layout(root), changed_dates=[LAST_EXPORT])
    assert summary["mode"] == "incremental"
    _check(root, written)

    # A rerun over unchanged silver leaves every table's contents identical.
    before = gold_hashes(root)
    build_gold(Layout(root), changed_dates=[LAST_EXPORT])
    assert gold_hashes(root) == before

    # Another reporting currency changes every feature date's revenue: the build is a full one.
    monkeypatch.setenv("LAKEHOUSE_REPORTING_CURRENCY", "EUR")
    assert build_gold(Layout(root), changed_dates=[LAST_EXPORT])["mode"] == "full"
    assert json.loads((root / "warehouse" / STATE_FILE).read_text())["reporting_currency"] == "EUR"
    after = gold_hashes(root)
    assert after != before
    # the fitted states and encodings (no revenue in them) the incremental builds left are the full build's
    transformers = [f"gold/{m}" for m in TRANSFORMER_MARTS]
    assert [after[f] for f in transformers] == [before[f] for f in transformers]


def test_changed_partitions_are_found_without_being_named(tmp_path: Path) -> None:
    """A rewritten earlier partition is recomputed even when the caller names only its run's day."""
    root = tmp_path / "lakehouse"
    rows = make_events(devices=60)
    last = LAST_EXPORT - dt.timedelta(days=1)
    written = [r for r in rows if r["export_date"] <= last]
    write_silver(root, written)
    build_gold(Layout(root))
    # drop one device's events of an earlier export date (silver rewrote that partition)
    day = last - dt.timedelta(days=5)
    victim = next(r["appmetrica_device_id"] for r in written if r["export_date"] == day)
    written = [r for r in written if not (r["export_date"] == day and r["appmetrica_device_id"] == victim)]
    _write_partition(root, day, written)
    written += [r for r in rows if r["export_date"] == LAST_EXPORT]
    _write_partition(root, LAST_EXPORT, written)
    assert build_gold(Layout(root), changed_dates=[LAST_EXPORT])["mode"] == "incremental"
    _check(root, written)
