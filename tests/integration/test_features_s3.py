"""The feature store over published gold on S3 (moto's threaded server over HTTP, lakehouse_s3 credentials).

DuckDB's httpfs extension cannot be installed offline here (it is downloaded from DuckDB's own
site), so these tests exercise the pyarrow S3FileSystem path; FeatureSource.s3_reader records
which path ran.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest

# Imported at collection: importing Airflow reconfigures logging.
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from feature_lake import LATE_DEVICE, FeatureLake
from moto.server import ThreadedMotoServer

from lakehouse.features import FeatureError, FeatureSource, LatestFeatureStore, get_historical_features
from lakehouse.publish import publish_gold
from lakehouse.settings import Layout

pytestmark = pytest.mark.integration

BUCKET = "features-test"
ACCESS_KEY = "features-key"
SECRET = "features-secret-value"


@pytest.fixture(scope="module")
def endpoint() -> Any:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET
    ).create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


@pytest.fixture
def published(endpoint: str, feature_lake: FeatureLake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    conn = {
        "conn_type": "aws",
        "login": ACCESS_KEY,
        "password": SECRET,
        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    prefix = f"f/{uuid.uuid4().hex[:8]}/gold"
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("AIRFLOW_CONN_LAKEHOUSE_S3", json.dumps(conn))
    monkeypatch.setenv("LAKEHOUSE_S3_BUCKET", BUCKET)
    monkeypatch.setenv("LAKEHOUSE_S3_PREFIX", prefix)
    calls: list[tuple[str, str | None]] = []
    original = S3Hook.get_conn

    def get_conn(self: S3Hook) -> Any:
        client = original(self)
        client.meta.events.register(
            "before-parameter-build.s3", lambda params, model, **_: calls.append((model.name, params.get("Key")))
        )
        return client

    monkeypatch.setattr(S3Hook, "get_conn", get_conn)
    manifest = publish_gold(dt.date(2026, 10, 31), layout=Layout(feature_lake.root), run_id="features")
    s3 = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET
    )
    return {"prefix": prefix, "manifest": manifest, "calls": calls, "s3": s3}


def test_registry_is_published_before_the_manifest(published: dict, feature_lake: FeatureLake) -> None:
    prefix, s3, calls = published["prefix"], published["s3"], published["calls"]
    keys = [entry["key"] for entry in published["manifest"]["registry"]]  # names carry the content hash
    assert [k.rsplit("-", 1)[0] for k in keys] == [f"{prefix}/_registry/feature_registry"] * 2
    for key, name in zip(keys, ("feature_registry.json", "feature_registry.parquet"), strict=True):
        local = feature_lake.gold / "_registry" / name
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == local.read_bytes()
    puts = [key for op, key in calls if op in {"PutObject", "CreateMultipartUpload"}]
    manifest_at = puts.index(f"{prefix}/_manifests/date=2026-10-31/manifest.json")
    assert all(puts.index(k) < manifest_at for k in keys)
    listed = {entry["key"]: entry for entry in published["manifest"]["registry"]}
    assert set(listed) == set(keys)
    features = json.loads((feature_lake.gold / "_registry" / "feature_registry.json").read_text())["features"]
    assert listed[keys[0]]["rows"] == listed[keys[1]]["rows"] == len(features)
    assert all(o["mart"] != "_registry" for o in published["manifest"]["objects"])


def test_historical_features_from_s3_equal_local(published: dict, feature_lake: FeatureLake) -> None:
    entity_df = pd.DataFrame(
        {
            "appmetrica_device_id": [str(LATE_DEVICE), "1", str(LATE_DEVICE)],
            "event_timestamp": ["2026-10-26T08:00:00", "2026-10-20T00:00:00", "2026-10-25T00:00:00"],
        }
    )
    features = ["events_7d", "days_since_first_seen", "country_iso_code_one_hot"]
    source = FeatureSource.resolve("s3")
    remote = get_historical_features(entity_df, features, source=source)
    local = get_historical_features(entity_df, features, source=feature_lake.gold)
    pd.testing.assert_frame_equal(remote, local)
    assert remote["events_7d"].notna().tolist() == [True, False, False]
    assert source.s3_reader in {"httpfs", "pyarrow"}
    assert SECRET not in repr(source)


def test_latest_lookup_from_s3_equals_local(published: dict, feature_lake: FeatureLake) -> None:
    remote = LatestFeatureStore(f"s3://{BUCKET}/{published['prefix']}").lookup(LATE_DEVICE)
    assert remote is not None and remote == LatestFeatureStore(feature_lake.gold).lookup(LATE_DEVICE)


def test_s3_errors_name_the_location_not_the_secret(published: dict) -> None:
    with pytest.raises(FeatureError) as excinfo:
        get_historical_features(
            pd.DataFrame({"appmetrica_device_id": [1], "event_timestamp": ["2026-10-01"]}),
            ["events_7d"],
            source=f"s3://{BUCKET}/no/such/prefix",
        )
    assert f"s3://{BUCKET}/no/such/prefix/_manifests/latest.json" in str(excinfo.value)
    assert SECRET not in str(excinfo.value)
