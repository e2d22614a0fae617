"""The smaller probes: a symlink out of the local publish folder, a CSV inbox file name with a line break, the feature
app's API description without authentication, a huge feature id echoed back, a fractional ``max_parts``."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from fastapi import HTTPException, Request
from fastapi.testclient import TestClient

from ingest.appmetrica.settings import AppMetricaSettings
from ingest.sources.config import parse_declarations
from ingest.sources.csv_drop import csv_drop_source
from lakehouse.features import api as features_api
from lakehouse.features.online import LatestFeatureStore
from lakehouse.s3tools import LocalStore, S3Tools
from lakehouse.settings import ConfigError, Layout


def test_s3_ls_does_not_follow_a_symlink_out_of_the_publish_folder(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not published")
    gold = tmp_path / "published" / "gold"
    gold.mkdir(parents=True)
    (gold / "a.parquet").write_bytes(b"0123")
    (gold / "inside-link.parquet").symlink_to(gold / "a.parquet")
    (gold / "leak.txt").symlink_to(outside / "secret.txt")
    (gold / "leak-dir").symlink_to(outside, target_is_directory=True)
    tools = S3Tools(LocalStore(tmp_path / "published"), "gold", None)
    listed = {e.key: e.size for e in tools.ls("gold")}
    assert listed == {"gold/a.parquet": 4, "gold/inside-link.parquet": 4}
    with pytest.raises(ConfigError, match="points outside"):
        tools.info("gold/leak.txt")


def test_a_csv_file_name_with_a_line_break_cannot_forge_a_log_line(tmp_path, caplog):
    doc = {"sources": {"rates": {"kind": "csv_drop", "resources": {"daily": {
        "file_pattern": "rates*.csv", "write_disposition": "append", "fields": {"rate": "number"}}}}}}  # fmt: skip
    source = csv_drop_source(parse_declarations(doc)["rates"])
    layout = Layout(tmp_path)
    inbox = tmp_path / "inbox" / "rates"
    inbox.mkdir(parents=True)
    forged = "INFO lakehouse: all files loaded"
    (inbox / f"rates.csv\n{forged}").write_text("rate\n1.5\n")  # no pattern match: rejected, and logged
    (inbox / f"rates\r{forged}\x1b[2K.csv").write_text("rate\n2.5\n")  # loaded, and logged
    with caplog.at_level(logging.INFO, logger="ingest.sources.csv_drop"):
        summary = source.pick_up(layout=layout, now=dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC))
    assert len(summary["rejected"]) == 1 and len(summary["loaded"]) == 1
    lines = [r.getMessage() for r in caplog.records]
    assert any("rates.csv\\n" + forged in line for line in lines)
    assert any("rates\\r" + forged + "\\x1b[2K.csv" in line for line in lines)
    assert not any(ch in line for line in lines for ch in "\n\r\x1b")


def _guarded_app(tmp_path, monkeypatch):
    """The feature app with a stand-in for Airflow's user check: 401 unless the request carries the right token."""

    def user(request: Request) -> str:
        if request.headers.get("Authorization") != "Bearer right":
            raise HTTPException(status_code=401, detail="Not authenticated")
        return "admin"

    monkeypatch.setattr(features_api, "_airflow_user_dependency", lambda: user)
    root = TestClient(features_api.create_app(LatestFeatureStore(tmp_path / "gold")), root_path="/lakehouse-features")
    return root


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_the_feature_apis_description_is_behind_the_same_auth(path, tmp_path, monkeypatch):
    client = _guarded_app(tmp_path, monkeypatch)
    assert client.get(path).status_code == 401
    assert client.get("/1").status_code == 401  # as its routes
    ok = client.get(path, headers={"Authorization": "Bearer right"})
    assert ok.status_code == 200
    if path == "/openapi.json":
        assert "/{appmetrica_device_id}" in ok.json()["paths"]
    else:
        assert "/lakehouse-features/openapi.json" in ok.text


def test_a_huge_feature_id_is_not_echoed_back(tmp_path):
    client = TestClient(features_api.create_app(LatestFeatureStore(tmp_path / "gold"), require_auth=False))
    huge = "9" * 60_000
    response = client.get(f"/{huge}")
    assert response.status_code == 422
    assert len(response.content) < 300 and "60000 characters" in response.json()["detail"]


@pytest.mark.parametrize("raw", [1.9, 2.5, True, "1.9", float("inf")])
def test_a_fractional_max_parts_is_refused_not_truncated(raw):
    with pytest.raises(ConfigError, match=r"extra.max_parts must be a whole number"):
        AppMetricaSettings.from_connection("http://127.0.0.1:9", "tok", {"application_id": "1", "max_parts": raw})
    ok = AppMetricaSettings.from_connection("http://127.0.0.1:9", "tok", {"application_id": "1", "max_parts": 8.0})
    assert ok.max_parts == 8
