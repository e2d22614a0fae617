"""Gold as a feature store: the registry, point-in-time training sets and latest-feature lookups.

* :func:`list_features`: the feature registry (``gold/_registry/feature_registry.json``).
* :func:`get_historical_features`: a leakage-free training set via DuckDB ASOF joins.
* :class:`LatestFeatureStore` / :func:`lookup_latency`: the latest vector per device, and its timing.

Heavy libraries (duckdb, pyarrow, pandas, fastapi) are imported only when used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lakehouse.features.historical import get_historical_features, historical_table
from lakehouse.features.online import LatestFeatureStore, lookup_latency
from lakehouse.features.store import FeatureError, FeatureSource

__all__ = [
    "FeatureError",
    "FeatureSource",
    "LatestFeatureStore",
    "get_historical_features",
    "historical_table",
    "list_features",
    "lookup_latency",
]


def list_features(source: str | Path | FeatureSource | None = None) -> dict[str, Any]:
    """The feature registry of ``source`` (local gold by default, ``"s3"`` for the published one)."""
    return FeatureSource.resolve(source).registry()
