"""Airflow Assets for the lake's outputs, so other DAGs can be scheduled on them.

The silver tables and gold marts are named here without importing the layer packages (the DAG
file imports this module and must stay cheap to parse); ``tests/unit/test_assets.py`` checks the
names against ``transforms.silver.schemas.SILVER_TABLES`` and the dbt models tagged ``meta.gold``.

A consumer DAG schedules on the gold marts with::

    from lakehouse.assets import GOLD_ASSETS

    @dag(schedule=GOLD_ASSETS, ...)   # runs once every gold mart was rebuilt

The URIs are logical (``x-lakehouse://<layer>/<name>``), the same in every environment; where the
files live is ``LAKEHOUSE_DATA_DIR``'s business (docs/contracts.md, "Data layout"). The ``x-`` prefix
marks a custom scheme: Airflow then skips provider URI normalisation, which would import every
provider (boto3 included) while the DAG file is parsed.
"""

from __future__ import annotations

from airflow.sdk import Asset

SILVER_TABLE_NAMES = (
    "events_part",
    "mobile_devices",
    "technical_data",
    "tmp_event_properties",
    "permanent_user_properties",
    "tmp_user_properties",
    "user_locations",
    "revenue_events",
    "ad_revenue_events",
    "crashes",
    "errors",
)
GOLD_MART_NAMES = (
    "fct_device_daily",
    "dim_devices",
    "device_features_daily",
    "device_attributes_daily",
    "feature_transformer_state",
    "device_features_daily_transformed",
    "feature_stats_daily",
)


def lake_asset(layer: str, name: str) -> Asset:
    """The Asset of one table of ``layer`` (``silver`` or ``gold``), e.g. ``x-lakehouse://gold/dim_devices``."""
    if layer not in {"silver", "gold"}:
        raise ValueError(f"layer must be 'silver' or 'gold', got {layer!r}")
    return Asset(
        name=f"{layer}.{name}",
        uri=f"x-lakehouse://{layer}/{name}",
        extra={"layer": layer, "path": f"{layer}/{name}/"},
    )


SILVER_ASSETS = [lake_asset("silver", t) for t in SILVER_TABLE_NAMES]
GOLD_ASSETS = [lake_asset("gold", m) for m in GOLD_MART_NAMES]
