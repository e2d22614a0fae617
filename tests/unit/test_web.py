"""The docs app of the Airflow plugin (lakehouse/web.py), mounted the way Airflow mounts it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.testclient import TestClient

from lakehouse.settings import Layout
from lakehouse.web import URL_PREFIX, LazyASGIApp, create_app

DBT_INDEX = "<html><body>dbt docs of fct_device_daily</body></html>"


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    layout = Layout(tmp_path / "data")
    dbt = layout.root / "docs" / "dbt"
    dbt.mkdir(parents=True)
    (dbt / "index.html").write_text(DBT_INDEX)
    (dbt / "manifest.json").write_text('{"nodes": {}}')
    (dbt / "catalog.json").write_text('{"nodes": {}}')
    (dbt / "run_results.json").write_text("{}")  # dbt leaves more in a target folder: never served
    gx = layout.root / "docs" / "gx"
    (gx / "static" / "styles").mkdir(parents=True)
    (gx / "index.html").write_text("<html>GX Data Docs: events_part</html>")
    (gx / "static" / "styles" / "site.css").write_text("body {}")
    (gx / "secret.py").write_text("TOKEN = 1")
    (gx / ".tmp-staging").mkdir()
    (gx / ".tmp-staging" / "index.html").write_text("half-written")
    (tmp_path / "outside.html").write_text("outside the docs folder")
    (layout.root / "warehouse").mkdir()
    (layout.root / "warehouse" / "profile.json").write_text('{"password": "x"}')
    return layout


def client_for(layout: Layout, **kwargs) -> TestClient:
    root = FastAPI()
    root.mount(URL_PREFIX, create_app(lambda: layout, **kwargs))
    return TestClient(root)


def test_serves_the_dbt_site_and_its_json(layout):
    client = client_for(layout)
    page = client.get(f"{URL_PREFIX}/dbt/")
    assert page.status_code == 200 and "fct_device_daily" in page.text
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert client.get(f"{URL_PREFIX}/dbt/index.html").text == DBT_INDEX
    for name in ("manifest.json", "catalog.json"):
        response = client.get(f"{URL_PREFIX}/dbt/{name}?cb=123")  # dbt docs add a cache-buster
        assert response.status_code == 200 and response.json() == {"nodes": {}}
    redirect = client.get(f"{URL_PREFIX}/dbt", follow_redirects=False)
    assert redirect.status_code == 307 and redirect.headers["location"] == "dbt/"


def test_dbt_site_serves_only_its_documented_files(layout):
    client = client_for(layout)
    assert client.get(f"{URL_PREFIX}/dbt/run_results.json").status_code == 404


def test_serves_gx_docs_with_their_static_files(layout):
    client = client_for(layout)
    assert "events_part" in client.get(f"{URL_PREFIX}/gx/").text
    css = client.get(f"{URL_PREFIX}/gx/static/styles/site.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert client.get(f"{URL_PREFIX}/gx/secret.py").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "gx/..%2f..%2foutside.html",
        "gx/%2e%2e/%2e%2e/outside.html",
        "gx/..%2fdbt%2findex.html",
        "gx/static/..%2f..%2f..%2foutside.html",
        "gx/%2fetc%2fpasswd",
        "gx/static%5c..%5c..%5coutside.html",
        "gx/.tmp-staging/index.html",
        "gx/static//styles/site.css",
        "gx/index.html%00.css",
        "dbt/..%2fwarehouse%2fprofile.json",
    ],
)
def test_path_traversal_is_refused(layout, path):
    response = client_for(layout).get(f"{URL_PREFIX}/{path}")
    assert response.status_code == 400, response.text
    assert "outside the docs folder" not in response.text and "password" not in response.text
    assert "half-written" not in response.text


def test_a_symlink_out_of_the_site_is_refused(layout, tmp_path):
    os.symlink(tmp_path / "outside.html", layout.root / "docs" / "gx" / "link.html")
    response = client_for(layout).get(f"{URL_PREFIX}/gx/link.html")
    assert response.status_code == 400 and "leaves the docs folder" in response.json()["detail"]


def test_missing_docs_say_how_to_get_them(tmp_path):
    client = client_for(Layout(tmp_path / "empty"))
    response = client.get(f"{URL_PREFIX}/dbt/")
    assert response.status_code == 404
    assert "not generated yet" in response.json()["detail"] and "make docs" in response.json()["detail"]
    landing = client.get(f"{URL_PREFIX}/")
    assert landing.status_code == 200 and "not generated yet" in landing.text
    assert client.get(f"{URL_PREFIX}/nope/").status_code == 404


def test_landing_page_links_ready_sites(layout):
    text = client_for(layout).get(f"{URL_PREFIX}/").text
    assert 'href="dbt/"' in text and 'href="gx/"' in text and "generated 20" in text


def test_dependencies_guard_every_route(layout):
    def signed_in(request: Request) -> None:
        if request.cookies.get("_token") != "good":
            raise HTTPException(401, "Not authenticated")

    client = client_for(layout, dependencies=[Depends(signed_in)])
    for path in ("/", "/dbt", "/dbt/", "/dbt/manifest.json", "/gx/index.html", "/report/latest"):
        assert client.get(f"{URL_PREFIX}{path}", follow_redirects=False).status_code == 401, path
    client.cookies.set("_token", "good")
    assert client.get(f"{URL_PREFIX}/dbt/").status_code == 200


def test_lazy_app_builds_once_on_first_request(layout):
    built = []

    def factory():
        built.append(1)
        return create_app(lambda: layout)

    lazy = LazyASGIApp(factory)
    assert built == []
    root = FastAPI()
    root.mount(URL_PREFIX, lazy)
    client = TestClient(root)
    assert client.get(f"{URL_PREFIX}/dbt/").status_code == 200
    assert client.get(f"{URL_PREFIX}/gx/").status_code == 200
    assert built == [1]


def test_plugin_registers_the_app_and_the_nav_links():
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "plugins" / "lakehouse_docs_plugin.py"
    spec = importlib.util.spec_from_file_location("lakehouse_docs_plugin_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plugin = module.LakehouseDocsPlugin
    assert plugin.fastapi_apps[0]["url_prefix"] == URL_PREFIX
    views = {v["url_route"]: v for v in plugin.external_views}
    assert views["dbt-docs"]["href"] == "lakehouse-docs/dbt/" and views["gx-docs"]["href"] == "lakehouse-docs/gx/"
    assert views["run-report"]["href"] == "lakehouse-docs/report/latest"
    assert {v["category"] for v in views.values()} == {"Lakehouse"}
    assert all(v["destination"] == "nav" and not v["href"].startswith("/") for v in views.values())


def test_run_reports_latest_is_the_newest_dated_page(layout):
    client = client_for(layout)
    missing = client.get(f"{URL_PREFIX}/report/latest", follow_redirects=False)
    assert missing.status_code == 404 and "report task" in missing.json()["detail"]
    runs = layout.reports / "appmetrica_lakehouse"
    for day in ("2026-10-30", "2026-11-02", "2026-11-01"):
        (runs / f"date={day}").mkdir(parents=True)
        (runs / f"date={day}" / "index.html").write_text(f"<html>Run report {day}</html>")
    (runs / "date=2026-11-03").mkdir()  # a run whose page was not written: not the latest
    (runs / "index.html").write_text("<html>Run reports</html>")
    latest = client.get(f"{URL_PREFIX}/report/latest", follow_redirects=False)
    assert latest.status_code == 307 and latest.headers["location"] == "date=2026-11-02/"
    assert client.get(f"{URL_PREFIX}/report/latest").text == "<html>Run report 2026-11-02</html>"
    assert client.get(f"{URL_PREFIX}/report/").text == "<html>Run reports</html>"
    assert client.get(f"{URL_PREFIX}/report/date=2026-11-03/").status_code == 404
    assert 'href="report/"' in client.get(f"{URL_PREFIX}/").text
