"""AppMetrica Logs API source: client -> bronze. Public entry point: :func:`extract_resource`.

Usage::

    settings = AppMetricaSettings.from_env()  # AIRFLOW_CONN_APPMETRICA_DEFAULT
    manifest = extract_resource("events", "2026-11-01", settings=settings)

The demo Logs API server lives in ``ingest.appmetrica.demo`` (not imported here).
"""

from __future__ import annotations

from ingest.appmetrica.bronze import MANIFEST_NAME, extract_resource
from ingest.appmetrica.client import LogsApiClient, LogsApiError, PartResult, part_file_name
from ingest.appmetrica.resources import RESOURCES
from ingest.appmetrica.settings import AppMetricaSettings

__all__ = [
    "MANIFEST_NAME",
    "RESOURCES",
    "AppMetricaSettings",
    "LogsApiClient",
    "LogsApiError",
    "PartResult",
    "extract_resource",
    "part_file_name",
]
