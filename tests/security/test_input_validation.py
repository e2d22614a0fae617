"""Values that come from outside (the date Param, resource names, application_id, the S3 prefix) are checked
before any request or write, and nothing built from them can leave the data folder or the S3 prefix."""

from __future__ import annotations

import json

import pytest

from ingest.appmetrica.demo.server import DemoLogsApiServer
from ingest.appmetrica.settings import AppMetricaSettings
from lakehouse import pipeline
from lakehouse.publish import validate_prefix
from lakehouse.settings import ConfigError, Layout

BAD_DATES = ["2026-13-01", "2026-02-30", "../../etc", "2026-11-01/../../x", "20261101", " 2026-11-01", "", "yesterday"]


@pytest.mark.parametrize("value", BAD_DATES)
def test_a_bad_date_param_is_named_before_anything_happens(value, tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(ConfigError) as err:
        pipeline.resolve_day(value or "x", None)
    assert repr(value or "x") in str(err.value)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("resource", ["../events", "events/../../x", "EVENTS", "no_such_resource", "events.csv", ""])
def test_a_resource_outside_the_allowlist_makes_no_request_and_writes_nothing(resource, tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path / "data"))
    with DemoLogsApiServer(token="tok", application_id="1") as api:
        settings = AppMetricaSettings.from_connection(api.url, "tok", {"application_id": "1"})
        with pytest.raises(ConfigError, match="unknown AppMetrica resource") as err:
            pipeline.extract(resource, "2026-11-01", settings)
        assert api.requests == []
    assert repr(resource) in str(err.value)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("app_id", ["12a", "../1", "1 OR 1=1", "-5", "1.0", "\uff11\uff12\uff13"])
def test_an_application_id_that_is_not_digits_is_refused(app_id, monkeypatch):
    conn = {"conn_type": "http", "host": "http://127.0.0.1:9", "password": "tok", "extra": {"application_id": app_id}}
    monkeypatch.setenv("AIRFLOW_CONN_APPMETRICA_DEFAULT", json.dumps(conn))
    with pytest.raises(ConfigError, match="application_id") as err:
        AppMetricaSettings.from_env()
    assert repr(app_id) in str(err.value) or app_id in str(err.value)


@pytest.mark.parametrize("prefix", ["../gold", "gold/../../x", "/gold", "gold//x", "gold/./x", "gold\\x"])
def test_an_s3_prefix_that_could_escape_is_refused(prefix):
    with pytest.raises(ConfigError):
        validate_prefix(prefix)


def test_every_layout_path_stays_under_the_data_folder(tmp_path):
    layout = Layout(tmp_path)
    for bad in ("../x", "a/b", "A", "x y"):
        with pytest.raises(ConfigError):
            layout.silver(bad, pipeline.parse_day("2026-11-01"))
    path = layout.bronze("events", pipeline.parse_day("2026-11-01"))
    assert path.resolve().is_relative_to(tmp_path.resolve())
