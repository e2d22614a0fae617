"""Airflow plugin: the lake's dbt docs, GX Data Docs and run report pages inside the Airflow UI.

The web app lives in ``lakehouse/web.py``; this file only registers it. The sites are served
under ``/lakehouse-docs/`` by the API server, to signed-in users only (Airflow's own JWT cookie
or bearer token), and appear in the UI navigation (Plugins menu, "Lakehouse") as embedded pages.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from lakehouse.web import URL_PREFIX, LazyASGIApp, create_app


def _docs_app():  # built on the first request, in the API server only
    from airflow.api_fastapi.core_api.security import requires_authenticated
    from fastapi import Depends

    return create_app(dependencies=[Depends(requires_authenticated())])


class LakehouseDocsPlugin(AirflowPlugin):
    """dbt docs (gold marts), Great Expectations Data Docs and the run reports, served and linked in the UI."""

    name = "lakehouse_docs"
    fastapi_apps = [{"app": LazyASGIApp(_docs_app), "url_prefix": URL_PREFIX, "name": "Lakehouse docs"}]
    external_views = [
        {"name": title, "href": f"{URL_PREFIX.lstrip('/')}/{key}/", "url_route": f"{key}-docs",
         "destination": "nav", "category": "Lakehouse"}
        for key, title in (("dbt", "dbt docs"), ("gx", "GX Data Docs"))
    ] + [
        {"name": "Run report", "href": f"{URL_PREFIX.lstrip('/')}/report/latest", "url_route": "run-report",
         "destination": "nav", "category": "Lakehouse"}
    ]  # fmt: skip
