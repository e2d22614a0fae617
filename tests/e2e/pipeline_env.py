"""What the `airflow dags test` end-to-end tests share: the expected tables and the run's environment."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MARTS = (
    "fct_device_daily",
    "dim_devices",
    "device_features_daily",
    "device_attributes_daily",
    "device_features_daily_transformed",
    "feature_transformer_state",
    "feature_stats_daily",
)
SILVER = ("events_part", "mobile_devices", "technical_data", "tmp_event_properties",
          "permanent_user_properties", "tmp_user_properties", "user_locations",
          "revenue_events", "ad_revenue_events", "crashes", "errors")  # fmt: skip


def dags_test_env(
    home: Path, data: Path, *, api_url: str, token: str, s3_url: str, secret: str, bucket: str, access_key: str
) -> dict[str, str]:
    """This process's environment without any AIRFLOW*/LAKEHOUSE_*/AWS_* variable, plus an Airflow home, a data
    folder, the publish bucket, and the two connections (the demo Logs API with ``token``, moto with ``secret``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LAKEHOUSE_", "AWS_"))}
    env |= {
        "AIRFLOW_HOME": str(home),
        "LAKEHOUSE_DATA_DIR": str(data),
        "LAKEHOUSE_S3_BUCKET": bucket,
        "LAKEHOUSE_S3_PREFIX": "gold",
        "AIRFLOW_CONN_APPMETRICA_DEFAULT": json.dumps(
            {"conn_type": "http", "host": api_url, "password": token,
             "extra": {"application_id": "1234567", "poll_interval_seconds": 0.1, "poll_timeout_seconds": 60}}
        ),
        "AIRFLOW_CONN_LAKEHOUSE_S3": json.dumps(
            {"conn_type": "aws", "login": access_key, "password": secret,
             "extra": {"endpoint_url": s3_url, "region_name": "us-east-1"}}
        ),
    }  # fmt: skip
    return env


def gold_sql(con: Any, data: Path, mart: str) -> str:
    """A DuckDB subquery over the gold Delta table ``mart`` of the local lake at ``data`` (delta_scan on ``con``)."""
    from lakehouse.delta import DeltaLocation, duckdb_connect_lake, scan_sql, table_schema

    loc = DeltaLocation(f"gold/{mart}", str(data / "gold" / mart))
    duckdb_connect_lake(con, loc)
    return f"({scan_sql(loc, table_schema(loc))})"
