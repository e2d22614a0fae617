"""Feature monitoring: the gold mart ``feature_stats_daily`` for one date, and the drift check on it.

The mart (dbt_project/models/marts/feature_stats_daily.sql) holds, per numeric feature and
``feature_date``, the rows, null rate, mean, p50, p95 and the population stability index (PSI)
against the transformers' training window. :func:`drift_report` reads one date of it and names
every feature whose PSI or null rate passes its threshold:

* ``LAKEHOUSE_DRIFT_PSI_THRESHOLD`` (default 0.2, the usual "significant shift" level; > 0),
* ``LAKEHOUSE_DRIFT_NULL_RATE_THRESHOLD`` (default 0.05; 0 .. 1).

A value strictly above its threshold is a breach; PSI counts only on dates after the training
window (``LAKEHOUSE_FEATURE_FIT_END``), a date inside it being training data. The daily run
sends the breaches through the alerts channel (:func:`lakehouse.alerts.alert_feature_drift`);
``lakehouse features drift --date D`` prints the same table.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakehouse.features.store import FeatureError, FeatureSource
from lakehouse.settings import ConfigError, parse_day

STATS_MART = "feature_stats_daily"
STATS_COLUMNS = ("feature", "feature_date", "rows", "null_rate", "mean", "p50", "p95", "psi",
                 "state_version", "fit_start_date", "fit_end_date")  # fmt: skip
PSI_ENV = "LAKEHOUSE_DRIFT_PSI_THRESHOLD"
NULL_RATE_ENV = "LAKEHOUSE_DRIFT_NULL_RATE_THRESHOLD"
DEFAULT_PSI = 0.2
DEFAULT_NULL_RATE = 0.05


@dataclass(frozen=True)
class DriftThresholds:
    """Above which PSI and null rate a feature's date is reported."""

    psi: float = DEFAULT_PSI
    null_rate: float = DEFAULT_NULL_RATE

    def __post_init__(self) -> None:
        if not (isinstance(self.psi, int | float) and math.isfinite(self.psi) and self.psi > 0):
            raise ConfigError(f"{PSI_ENV} must be a number above 0 (e.g. 0.2), got {self.psi!r}")
        if not (isinstance(self.null_rate, int | float) and 0 <= self.null_rate <= 1):
            raise ConfigError(f"{NULL_RATE_ENV} must be a number from 0 to 1 (e.g. 0.05), got {self.null_rate!r}")

    @classmethod
    def from_env(cls) -> DriftThresholds:
        """The thresholds of the environment; an unset or empty variable takes its default."""
        return cls(psi=_number(PSI_ENV, DEFAULT_PSI), null_rate=_number(NULL_RATE_ENV, DEFAULT_NULL_RATE))


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def feature_stats(day: str | dt.date, source: str | Path | FeatureSource | None = None) -> list[dict[str, Any]]:
    """The ``feature_stats_daily`` rows of ``day``, ordered by feature (empty when gold has no such date)."""
    day = parse_day(day, what="feature date")
    return feature_stats_between(day, day, source)


def feature_stats_between(
    first: dt.date, last: dt.date, source: str | Path | FeatureSource | None = None
) -> list[dict[str, Any]]:
    """The ``feature_stats_daily`` rows from ``first`` to ``last`` (inclusive), ordered by feature, then date."""
    import duckdb

    feature_source = FeatureSource.resolve(source)
    with duckdb.connect() as con:
        feature_source.register_mart(con, STATS_MART, list(STATS_COLUMNS), "feature_stats")
        cursor = con.execute(
            "select * from feature_stats where feature_date between ? and ? order by feature, feature_date",
            [first, last],
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def breaches(rows: list[dict[str, Any]], thresholds: DriftThresholds) -> list[dict[str, Any]]:
    """Every (feature, metric) of ``rows`` above its threshold: feature, feature_date, metric, value, threshold.

    PSI is judged only on dates after the training window (``fit_end_date``): a date inside it is
    training data, part of the reference itself (the mart leaves its psi null). With no window end
    set every date's state ends on the date itself, so PSI is never judged; the null rate is judged
    on every date.
    """
    found = []
    for row in rows:
        after_window = row.get("fit_end_date") is not None and row["feature_date"] > row["fit_end_date"]
        for metric, limit in (("psi", thresholds.psi), ("null_rate", thresholds.null_rate)):
            value = row.get(metric)
            if metric == "psi" and not after_window:
                continue
            if value is not None and value > limit:
                found.append({"feature": row["feature"], "feature_date": row["feature_date"].isoformat(),
                              "metric": metric, "value": value, "threshold": limit})  # fmt: skip
    return found


def drift_report(
    day: str | dt.date,
    source: str | Path | FeatureSource | None = None,
    thresholds: DriftThresholds | None = None,
) -> dict[str, Any]:
    """The statistics of ``day`` and the features past a threshold.

    Returns ``{"date", "thresholds": {"psi", "null_rate"}, "features": [row, ...], "breaches": [...]}``.
    Raises FeatureError when gold has no ``feature_stats_daily`` mart.
    """
    thresholds = thresholds or DriftThresholds.from_env()
    day = parse_day(day, what="feature date")
    rows = feature_stats(day, source)
    return {
        "date": day.isoformat(),
        "thresholds": {"psi": thresholds.psi, "null_rate": thresholds.null_rate},
        "features": rows,
        "breaches": breaches(rows, thresholds),
    }


def breach_lines(report: dict[str, Any]) -> list[str]:
    """One line per breach: ``<feature> on <date>: psi 0.41 > 0.2``."""
    return [f"{b['feature']} on {b['feature_date']}: {b['metric']} {b['value']:.4g} > {b['threshold']:g}"
            for b in report["breaches"]]  # fmt: skip


__all__ = ["DriftThresholds", "FeatureError", "breach_lines", "breaches", "drift_report", "feature_stats",
           "feature_stats_between"]  # fmt: skip
