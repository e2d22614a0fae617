"""Declarative REST API sources: a ``kind: rest_api`` entry of sources.yml -> bronze pages.

Public entry point: :func:`rest_api_source`. Usage::

    source = rest_api_source("vacancies")            # the declaration, validated
    source.resources["vacancies"].primary_key        # ("vacancy_id",)
    manifest = source.extract("vacancies", "2026-11-01")   # credentials from the Airflow connection

``extract`` pulls every page of the day's incremental window into
``bronze/<source>/<resource>/date=YYYY-MM-DD/page-00001.json, ...`` (the bodies exactly as received)
plus ``_manifest.json``; the partition is staged and replaces the previous one only when every page
arrived, so a failure leaves the old partition as it was. Settings are in ``settings.py``, HTTP,
auth and pagination in ``helpers.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from ingest.sources.config import ResourceSpec, SourceConfigError, SourceSpec, get_source
from ingest.sources.connection import Credentials, credentials_from_airflow
from ingest.sources.rest_api.helpers import HttpClient, RestSourceError, iter_pages
from ingest.sources.rest_api.settings import MANIFEST_NAME, MANIFEST_VERSION, PAGE_FILE
from lakehouse.fsutil import atomic_file, staged_dir, write_json
from lakehouse.settings import Layout, parse_day

log = logging.getLogger(__name__)

__all__ = ["MANIFEST_NAME", "RestApiSource", "RestResource", "RestSourceError", "rest_api_source", "window_params"]


def _format(value: dt.datetime, day: dt.date, fmt: str) -> str:
    if fmt == "date":
        return day.isoformat()
    if fmt == "unix":
        return str(int(value.timestamp()))
    return value.isoformat()


def window_params(source: SourceSpec, resource: ResourceSpec, day: dt.date) -> dict[str, str]:
    """The incremental query parameters of ``resource`` for ``day`` (empty without an incremental cursor)."""
    inc = resource.incremental
    if inc is None:
        return {}
    start, end = source.window(day)
    params = {inc.start_param: _format(start, day, inc.param_format)}
    if inc.end_param:
        params[inc.end_param] = _format(end, day + dt.timedelta(days=1), inc.param_format)
    return params


@dataclass(frozen=True)
class RestResource:
    """One resource as the loader sees it: write mode, primary key and incremental cursor made explicit."""

    name: str
    write_disposition: str
    primary_key: tuple[str, ...]
    cursor_field: str | None
    spec: ResourceSpec


class RestApiSource:
    """A declared REST API source; :meth:`extract` writes one resource-day to bronze."""

    def __init__(self, spec: SourceSpec) -> None:
        if spec.kind != "rest_api":
            raise SourceConfigError(f"source {spec.name!r} is a {spec.kind} source, not rest_api")
        self.spec = spec
        self.resources = {
            name: RestResource(
                name=name,
                write_disposition=r.write_disposition,
                primary_key=r.primary_key,
                cursor_field=r.incremental.cursor_field if r.incremental else None,
                spec=r,
            )
            for name, r in spec.resources.items()
        }

    @property
    def name(self) -> str:
        """The source's name."""
        return self.spec.name

    def extract(
        self,
        resource: str,
        day: dt.date | str,
        *,
        layout: Layout | None = None,
        credentials: Credentials | None = None,
        http: HttpClient | None = None,
    ) -> dict[str, Any]:
        """Pull every page of ``resource`` for ``day`` into its bronze partition; return the manifest.

        ``credentials`` default to the source's Airflow connection; a given ``http`` client is used as
        is (and left open). Raises RestSourceError when a request fails (the old partition stays).
        """
        res = self.spec.resource(resource)
        day = parse_day(day)
        layout = layout if layout is not None else Layout.from_env()
        target = layout.bronze(res.name, day, source=self.spec.name)
        own = http is None
        if http is None:
            http = HttpClient(
                self.spec, credentials if credentials is not None else credentials_from_airflow(self.spec)
            )
        label = f"source {self.spec.name}/{res.name} {day}"
        params = {**res.params, **window_params(self.spec, res, day)}
        start, end = self.spec.window(day)
        pages: list[dict[str, Any]] = []
        try:
            log.info("%s: pulling pages into %s", label, target)
            with staged_dir(target) as stage:
                for page in iter_pages(http, res, params, label=label):
                    name = PAGE_FILE.format(number=page.number)
                    body = page.response.body
                    with atomic_file(stage / name) as fh:
                        fh.write(body)
                    pages.append(
                        {
                            "file": name,
                            "page": page.number,
                            "url": page.response.url,
                            "params": page.response.params,
                            "http_status": page.response.status,
                            "content_type": page.response.content_type,
                            "bytes": len(body),
                            "sha256": hashlib.sha256(body).hexdigest(),
                            "records": len(page.records),
                        }
                    )
                manifest = {
                    "manifest_version": MANIFEST_VERSION,
                    "kind": "rest_api",
                    "source": self.spec.name,
                    "resource": res.name,
                    "date": day.isoformat(),
                    "window": {"start": start.isoformat(), "end": end.isoformat(), "timezone": self.spec.timezone},
                    "request": {
                        "base_url": http.credentials.base_url,
                        "path": res.path,
                        "params": params,
                        "auth": self.spec.auth.type,
                        "pagination": res.pagination.type,
                    },
                    "records_path": res.records_path,
                    "write_disposition": res.write_disposition,
                    "primary_key": list(res.primary_key),
                    "cursor_field": res.incremental.cursor_field if res.incremental else None,
                    "pages_count": len(pages),
                    "pages": pages,
                    "records": sum(p["records"] for p in pages),
                    "bytes": sum(p["bytes"] for p in pages),
                    "requests": http.requests_made,
                    "waited_seconds": round(http.waited_seconds, 3),
                    "extracted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                }
                write_json(stage / MANIFEST_NAME, manifest)
        finally:
            if own:
                http.close()
        log.info("%s: %d page(s), %d records, %d bytes -> %s", label, manifest["pages_count"], manifest["records"],
                 manifest["bytes"], target)  # fmt: skip
        return manifest


def rest_api_source(source: str | SourceSpec) -> RestApiSource:
    """The declared REST API source ``source`` (a name in sources.yml, or a parsed declaration)."""
    spec = get_source(source) if isinstance(source, str) else source
    return RestApiSource(spec)
