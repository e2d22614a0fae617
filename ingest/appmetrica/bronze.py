"""Logs API export -> bronze partition ``bronze/appmetrica/<resource>/date=YYYY-MM-DD/``.

The partition is built in a staging folder and replaces the previous one as a whole only when every
part downloaded and verified: a failure leaves the old partition untouched and no partial file visible.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from ingest.appmetrica.client import LogsApiClient, get_resource_checked
from ingest.appmetrica.settings import AppMetricaSettings
from lakehouse.fsutil import staged_dir, write_json
from lakehouse.settings import Layout, parse_day

log = logging.getLogger(__name__)

SOURCE = "appmetrica"
MANIFEST_NAME = "_manifest.json"
MANIFEST_VERSION = 1


def extract_resource(
    resource: str,
    day: dt.date | str,
    *,
    settings: AppMetricaSettings,
    layout: Layout | None = None,
    client: LogsApiClient | None = None,
) -> dict[str, Any]:
    """Export ``resource`` for local ``day`` into its bronze partition and return the manifest.

    The partition holds the part files exactly as received (``<resource>.part-00000-of-00001.csv.gz``)
    and ``_manifest.json``: source, resource, date, format, application_id, the request (path and
    params, never the token), the requested ``fields`` (documented fields, then any custom profile
    attributes), every part (file, part_number, parts_count, http_status,
    content_encoding, bytes, sha256, rows), the totals and ``extracted_at`` (UTC).

    ``layout`` defaults to ``Layout.from_env()``. A given ``client`` is used as is (its settings win and
    it is left open); otherwise one is built from ``settings`` and closed afterwards. Raises
    ``LogsApiError`` when the export fails (the previous partition then stays as it was) and
    ``ConfigError`` for a bad resource or day.
    """
    res = get_resource_checked(resource)
    day = parse_day(day)
    layout = layout if layout is not None else Layout.from_env()
    target = layout.bronze(res.name, day, source=SOURCE)
    own_client = client is None
    api = client if client is not None else LogsApiClient(settings)
    try:
        log.info("bronze %s %s: exporting into %s", res.name, day, target)
        with staged_dir(target) as stage:
            parts = api.export(res.name, day, stage)
            manifest: dict[str, Any] = {
                "manifest_version": MANIFEST_VERSION,
                "source": SOURCE,
                "resource": res.name,
                "date": day.isoformat(),
                "format": api.settings.format,
                "application_id": api.settings.application_id,
                "request": {
                    "base_url": api.settings.base_url,
                    "path": api.export_path(res.name),
                    "params": api.request_params(res.name, day),
                },
                "fields": list(api.requested_fields(res.name)),
                "parts_count": len(parts),
                "parts": [p.as_dict() for p in parts],
                "rows": sum(p.rows for p in parts),
                "bytes": sum(p.bytes for p in parts),
                "extracted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
            write_json(stage / MANIFEST_NAME, manifest)
    finally:
        if own_client:
            api.close()
    log.info(
        "bronze %s %s: %d part(s), %d rows, %d bytes -> %s",
        res.name,
        day,
        manifest["parts_count"],
        manifest["rows"],
        manifest["bytes"],
        target,
    )
    return manifest
