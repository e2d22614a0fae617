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

import pandas as pd
import pytest

# Imported at collection: importing Airflow reconfigures logging.
from airflow.providers.amazon.aws.hooks.s3 import S3Hook  # noqa: F401
from feature_lake import LATE_DEVICE, FeatureLake
from moto_s3 import SECRET, ensure_bucket, record_s3_calls, s3_client, use_lakehouse_s3

from lakehouse.features import FeatureError, FeatureSource, LatestFeatureStore, get_historical_features
from lakehouse.publish import publish_gold
from lakehouse.settings import Layout

pytestmark = pytest.mark.integration

BUCKET = "features-test"


@pytest.fixture(scope="module")
def endpoint(s3_endpoint: str) -> str:
    return ensure_bucket(s3_endpoint, BUCKET)


@pytest.fixture
def published(endpoint: str, feature_lake: FeatureLake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    prefix = f"f/{uuid.uuid4().hex[:8]}/gold"
    use_lakehouse_s3(monkeypatch, endpoint, bucket=BUCKET, prefix=prefix, tmp_path=tmp_path)
    calls = record_s3_calls(monkeypatch)
    manifest = publish_gold(dt.date(2026, 10, 31), layout=Layout(feature_lake.root), run_id="features")
    return {"prefix": prefix, "manifest": manifest, "calls": calls, "s3": s3_client(endpoint)}


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
