"""The drift check's settings and rules (lakehouse/features/drift.py) and its alert text, without a lake."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from lakehouse.alerts import alert_feature_drift
from lakehouse.features.drift import DriftThresholds, breach_lines, breaches
from lakehouse.settings import ConfigError

DAY = dt.date(2026, 11, 1)


def row(feature: str, psi: float | None, null_rate: float, fit_end: dt.date = DAY - dt.timedelta(days=1)) -> dict:
    return {"feature": feature, "feature_date": DAY, "psi": psi, "null_rate": null_rate, "fit_end_date": fit_end}


def test_defaults_and_environment(monkeypatch):
    assert DriftThresholds.from_env() == DriftThresholds(0.2, 0.05)
    monkeypatch.setenv("LAKEHOUSE_DRIFT_PSI_THRESHOLD", " 0.1 ")
    monkeypatch.setenv("LAKEHOUSE_DRIFT_NULL_RATE_THRESHOLD", "")
    assert DriftThresholds.from_env() == DriftThresholds(0.1, 0.05)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LAKEHOUSE_DRIFT_PSI_THRESHOLD", "high", r"LAKEHOUSE_DRIFT_PSI_THRESHOLD must be a number, got 'high'"),
        ("LAKEHOUSE_DRIFT_PSI_THRESHOLD", "0", r"LAKEHOUSE_DRIFT_PSI_THRESHOLD must be a number above 0"),
        ("LAKEHOUSE_DRIFT_PSI_THRESHOLD", "nan", r"LAKEHOUSE_DRIFT_PSI_THRESHOLD must be a number above 0"),
        (
            "LAKEHOUSE_DRIFT_NULL_RATE_THRESHOLD",
            "1.5",
            r"NULL_RATE_THRESHOLD must be a number from 0 to 1 \(e.g. 0.05\), got 1.5",
        ),
    ],
)
def test_bad_thresholds_are_named(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        DriftThresholds.from_env()


def test_a_value_above_its_threshold_is_a_breach_naming_feature_date_and_metric():
    rows = [row("events_1d", 0.35, 0.0), row("events_7d", 0.2, 0.2), row("sessions_7d", None, 1.0)]
    found = breaches(rows, DriftThresholds(psi=0.2, null_rate=0.05))
    assert [(b["feature"], b["metric"], b["value"]) for b in found] == [
        ("events_1d", "psi", 0.35),  # 0.2 is not above 0.2; a null psi (no values) is not judged
        ("events_7d", "null_rate", 0.2),
        ("sessions_7d", "null_rate", 1.0),
    ]
    lines = breach_lines({"breaches": found})
    assert lines[0] == "events_1d on 2026-11-01: psi 0.35 > 0.2"
    assert lines[1] == "events_7d on 2026-11-01: null_rate 0.2 > 0.05"
    assert breaches(rows, DriftThresholds(psi=0.5, null_rate=1.0)) == []


def test_the_alert_names_the_features_and_a_missing_channel_only_logs(http_receiver, monkeypatch, caplog):
    lines = ["events_1d on 2026-11-01: psi 0.35 > 0.2"]
    monkeypatch.delenv("AIRFLOW_CONN_LAKEHOUSE_ALERTS", raising=False)
    caplog.set_level(logging.INFO, logger="lakehouse.alerts")
    assert alert_feature_drift("appmetrica_lakehouse", "2026-11-01", lines) is False
    assert "the feature drift is only reported" in caplog.text
    monkeypatch.setenv("AIRFLOW_CONN_LAKEHOUSE_ALERTS", f'{{"conn_type": "http", "host": "{http_receiver.url}/h"}}')
    assert alert_feature_drift("appmetrica_lakehouse", "2026-11-01", lines) is True
    (sent,) = http_receiver.requests
    assert sent["json"]["text"].splitlines() == [
        "FEATURE DRIFT: appmetrica_lakehouse run for 2026-11-01",
        "events_1d on 2026-11-01: psi 0.35 > 0.2",
        "(reported, not failed)",
    ]


def test_psi_is_judged_only_after_the_training_window_and_the_null_rate_always():
    inside = [row("events_1d", 3.0, 0.5, fit_end=DAY)]  # the date is training data (no window set: the latest date)
    found = breaches(inside, DriftThresholds(psi=0.2, null_rate=0.05))
    assert [(b["feature"], b["metric"]) for b in found] == [("events_1d", "null_rate")]
