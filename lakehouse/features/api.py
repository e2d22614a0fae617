"""The latest-feature lookup as a FastAPI app, mounted in the Airflow API server by
``plugins/lakehouse_features_plugin.py`` under ``/lakehouse-features``:

* ``GET /lakehouse-features/{appmetrica_device_id}``: the device's latest feature vector, its
  ``feature_date`` and the ``feature_set_version``; 404 when gold has no row for the device, 422
  when the id is not 1-20 digits within the unsigned 64-bit range.
* ``GET /lakehouse-features/``: the feature-set version and the feature columns served.

Airflow does not authenticate plugin apps (a mounted sub-application inherits none of the core
API's dependencies), so every route here depends on Airflow's own ``get_user``
(``airflow.api_fastapi.core_api.security``): a JWT in ``Authorization: Bearer ...`` (from
``POST /auth/token``) or the UI's session cookie, validated by the configured auth manager; 401
without one, 403 for an invalid one. The API's own description (``/docs``, ``/redoc``,
``/openapi.json``) is served by routes of this app too, so it sits behind the same check.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from lakehouse.features.online import LatestFeatureStore, json_value, parse_device_id
from lakehouse.features.store import FeatureError

URL_PREFIX = "/lakehouse-features"


class LatestFeatures(BaseModel):
    """The latest feature vector of one device."""

    appmetrica_device_id: str = Field(description="The device id, as text (exact above 2**53).")
    feature_date: str = Field(description="The feature_date (YYYY-MM-DD) the values describe.")
    feature_set_version: str = Field(description="The registry's feature-set version the values belong to.")
    features: dict[str, Any] = Field(
        description="device_features_daily's feature columns and their values (money amounts as decimal text)."
    )


class FeatureSetInfo(BaseModel):
    """What the lookup serves."""

    feature_set_version: str
    features: list[str]
    devices: int
    source: str


def _airflow_user_dependency() -> Any:
    """Airflow's authentication dependency (imported lazily: it pulls in Airflow's models)."""
    from airflow.api_fastapi.core_api.security import get_user

    return get_user


def create_app(store: LatestFeatureStore | None = None, *, require_auth: bool = True) -> FastAPI:
    """The lookup app over ``store`` (default: local gold of ``$LAKEHOUSE_DATA_DIR``, loaded on first use).

    ``require_auth=False`` leaves out Airflow's authentication (tests and benchmarks only).
    """
    store = store or LatestFeatureStore()
    dependencies = [Depends(_airflow_user_dependency())] if require_auth else []
    app = FastAPI(
        title="Lakehouse features",
        description="Latest feature vector per AppMetrica device, from the gold marts.",
        dependencies=dependencies,
        docs_url=None,  # FastAPI's built-in description routes skip app dependencies: served below instead
        redoc_url=None,
        openapi_url=None,
    )
    app.state.store = store

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(openapi_url=f"{request.scope.get('root_path', '')}/openapi.json", title=app.title)

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        from fastapi.openapi.docs import get_redoc_html

        return get_redoc_html(openapi_url=f"{request.scope.get('root_path', '')}/openapi.json", title=app.title)

    def _unavailable(exc: Exception) -> HTTPException:
        return HTTPException(status_code=503, detail=f"features are not available: {exc}")

    @app.get("/", response_model=FeatureSetInfo)
    def feature_set() -> FeatureSetInfo:
        try:
            snap = store.snapshot()
        except (FeatureError, OSError) as exc:
            raise _unavailable(exc) from None
        return FeatureSetInfo(
            feature_set_version=snap.feature_set_version,
            features=list(snap.columns),
            devices=len(snap.ids),
            source=store.source.describe(),
        )

    @app.get(
        "/{appmetrica_device_id}",
        response_model=LatestFeatures,
        responses={404: {"description": "No features for this device"}, 422: {"description": "Invalid id"}},
    )
    def latest_features(appmetrica_device_id: str) -> LatestFeatures:
        try:
            parse_device_id(appmetrica_device_id)
        except FeatureError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        try:
            found = store.lookup(appmetrica_device_id)
        except (FeatureError, OSError) as exc:
            raise _unavailable(exc) from None
        if found is None:
            raise HTTPException(status_code=404, detail=f"no features for device {appmetrica_device_id}")
        found["features"] = {k: json_value(v) for k, v in found["features"].items()}
        return LatestFeatures(**found)

    return app
