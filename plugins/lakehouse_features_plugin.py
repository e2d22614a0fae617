"""Airflow 3 plugin: the latest-feature lookup API inside the Airflow API server.

Mounts the FastAPI app of ``lakehouse.features.api`` at ``/lakehouse-features`` (its own prefix,
so it never shadows or is shadowed by another plugin's app), e.g.
``GET http://localhost:8080/lakehouse-features/{appmetrica_device_id}``. Every route requires an
authenticated Airflow user (JWT bearer token from ``POST /auth/token`` or the UI session cookie).
The app reads local gold (``$LAKEHOUSE_DATA_DIR/gold``); set ``LAKEHOUSE_FEATURES_SOURCE=s3`` to
serve the published gold from ``lakehouse_s3`` instead.
"""

from __future__ import annotations

import os

from airflow.plugins_manager import AirflowPlugin

from lakehouse.features.api import URL_PREFIX, create_app
from lakehouse.features.online import LatestFeatureStore


class LakehouseFeaturesPlugin(AirflowPlugin):
    """Registers the feature lookup app (no UI views; the API is for services and notebooks)."""

    name = "lakehouse_features"
    fastapi_apps = [
        {
            "app": create_app(LatestFeatureStore(os.environ.get("LAKEHOUSE_FEATURES_SOURCE") or None)),
            "url_prefix": URL_PREFIX,
            "name": "Lakehouse features",
        }
    ]
