"""publish_gold against a real S3-compatible endpoint over HTTP (moto's threaded server), through S3Hook."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

# Imported at collection: importing Airflow reconfigures logging, which would drop caplog's handler mid-test.
from airflow.providers.amazon.aws.hooks.s3 import S3Hook  # noqa: F401
from moto_s3 import SECRET, ensure_bucket, record_s3_calls, s3_client, use_lakehouse_s3

from lakehouse import publish
from lakehouse.delta import DeltaLocation, replace_table
from lakehouse.publish import PublishError, publish_gold
from lakehouse.settings import Layout

pytestmark = pytest.mark.integration

BUCKET = "lakehouse-test"
DAY = dt.date(2026, 11, 1)
MARTS = ("fct_device_daily", "dim_devices", "device_features_daily")  # what make_gold writes
BIG_ROWS = 10  # 10 x 1 MiB of random bytes: > 8 MiB, so a 2-part multipart upload


@pytest.fixture(scope="module")
def endpoint(s3_endpoint: str) -> str:
    return ensure_bucket(s3_endpoint, BUCKET)


@pytest.fixture
def s3(endpoint: str) -> Any:
    return s3_client(endpoint)


@pytest.fixture
def env(endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Connection, bucket, a prefix of its own per test, and a fresh LAKEHOUSE_DATA_DIR."""
    prefix = f"it/{uuid.uuid4().hex[:8]}/gold"
    data_dir = tmp_path / "data"
    use_lakehouse_s3(monkeypatch, endpoint, bucket=BUCKET, prefix=prefix, tmp_path=tmp_path, data_dir=data_dir)
    layout = Layout(data_dir.resolve())
    make_gold(layout.gold)
    return {"prefix": prefix, "layout": layout}


def _write(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def _commit(gold: Path, mart: str, table: pa.Table, partition_by: list[str] | None = None) -> None:
    """Replace the Delta table ``gold/<mart>`` with ``table`` (rows ordered by device_id when published)."""
    loc = DeltaLocation(f"gold/{mart}", str(gold / mart))
    replace_table(loc, table, partition_by=partition_by, new_schema=True, metadata={"lakehouse.order_by": "device_id"})


def features(*days: tuple[str, int]) -> pa.Table:
    """device_features_daily rows: ``n`` devices on each (date, n)."""
    rows = [(f"d{i}", 1, dt.date.fromisoformat(day)) for day, n in days for i in range(n)]
    return pa.table({"device_id": [r[0] for r in rows], "events_1d": [r[1] for r in rows],
                     "feature_date": [r[2] for r in rows]})  # fmt: skip


def make_gold(gold: Path) -> None:
    """Three marts' Delta tables: a small one, a big one (> 8 MiB once written), one partitioned by date."""
    _commit(gold, "fct_device_daily",
            pa.table({"device_id": [f"d{i}" for i in range(50)], "events_count": list(range(50))}))  # fmt: skip
    blobs = {"device_id": [f"d{i}" for i in range(BIG_ROWS)], "blob": [os.urandom(1 << 20) for _ in range(BIG_ROWS)]}
    _commit(gold, "dim_devices", pa.table(blobs))
    _commit(gold, "device_features_daily", features(("2026-10-31", 7), ("2026-11-01", 11)), ["feature_date"])
    # Files that are no part of any table version: never published.
    (gold / "fct_device_daily" / ".tmp-fct_device_daily.parquet.abc").write_bytes(b"partial")
    _write(gold / "fct_device_daily" / "stray.parquet", pa.table({"a": [1]}))
    _write(gold / "_scratch" / "y.parquet", pa.table({"a": [1]}))


def export_of(gold: Path, mart: str) -> Path:
    """The Parquet file a publish writes from the mart's table (and uploads)."""
    return gold.parent / "warehouse" / "publish" / mart / f"{mart}.parquet"


def gold_files(gold: Path, marts: tuple[str, ...] = MARTS) -> dict[str, Path]:
    """After a publish: expected relative object key (<mart>/<mart>-<sha256[:16]>.parquet) -> the file uploaded."""
    return {key_of(f"{m}/{m}.parquet", export_of(gold, m)): export_of(gold, m) for m in marts}


def key_of(rel: str, path: Path) -> str:
    """The object name of ``gold/<rel>``: its file name carries the first 16 hex digits of its sha256."""
    folder, _, name = rel.rpartition("/")
    return f"{folder}/{name.removesuffix('.parquet')}-{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}.parquet"


def etags(s3: Any, prefix: str) -> dict[str, str]:
    """Key (without the prefix) -> ETag of every data object (manifests left out)."""
    return {
        o["Key"].removeprefix(prefix + "/"): o["ETag"]
        for o in list_objects(s3, prefix)
        if "/_manifests/" not in o["Key"]
    }


def list_objects(s3: Any, prefix: str) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
        objs.extend(page.get("Contents", []))
    return objs


def get_bytes(s3: Any, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def manifest_key(prefix: str, day: dt.date = DAY) -> str:
    return f"{prefix}/_manifests/date={day.isoformat()}/manifest.json"


@pytest.fixture
def s3_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None]]:
    """Record (operation, key) of every S3 API call the publish step's client makes, in order."""
    return record_s3_calls(monkeypatch)


def test_publish_uploads_verifies_and_writes_manifest_last(
    env: dict[str, Any],
    s3: Any,
    s3_calls: list[tuple[str, str | None]],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    prefix, layout = env["prefix"], env["layout"]
    caplog.set_level(logging.DEBUG)

    result = publish_gold(DAY, marts=MARTS, run_id="run-1")

    expected = gold_files(layout.gold)
    assert len(expected) == 3
    assert result["target"] == f"s3://{BUCKET}/{prefix}"
    assert result["storage"] == "s3" and result["bucket"] == BUCKET and result["prefix"] == prefix

    # Every object is there exactly once, byte for byte, with its sha256 metadata; nothing else was published.
    objects = {o["Key"]: o for o in list_objects(s3, prefix)}
    data_keys = {f"{prefix}/{rel}" for rel in expected}
    mkey, lkey = manifest_key(prefix), f"{prefix}/_manifests/latest.json"
    assert set(objects) == data_keys | {mkey, lkey}
    for rel, path in expected.items():
        key = f"{prefix}/{rel}"
        local = path.read_bytes()
        assert get_bytes(s3, key) == local
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert head["Metadata"]["sha256"] == hashlib.sha256(local).hexdigest()
    (big_key,) = [k for k in data_keys if "/dim_devices/" in k]
    big = s3.head_object(Bucket=BUCKET, Key=big_key)
    assert big["ContentLength"] > 8 * 1024 * 1024
    assert big["ETag"].strip('"').endswith("-2"), "the > 8 MiB file should have gone up in 2 parts"

    # The manifest lists every object with the right size, sha256 and row count.
    manifest = json.loads(get_bytes(s3, mkey))
    assert json.loads(get_bytes(s3, lkey)) == manifest
    assert manifest == {k: v for k, v in result.items() if k not in {"target", "manifest_uri"}}
    assert result["manifest_uri"] == f"s3://{BUCKET}/{mkey}"
    assert manifest["date"] == "2026-11-01" and manifest["run_id"] == "run-1"
    assert dt.datetime.fromisoformat(manifest["published_at"]).utcoffset() == dt.timedelta(0)
    by_key = {o["key"]: o for o in manifest["objects"]}
    assert set(by_key) == data_keys
    for rel, path in expected.items():
        entry = by_key[f"{prefix}/{rel}"]
        assert entry["mart"] == rel.split("/")[0]
        assert entry["file"] == f"{entry['mart']}/{path.name}"
        assert entry["bytes"] == path.stat().st_size
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert entry["rows"] == pq.read_metadata(path).num_rows
    totals = manifest["totals"]
    assert totals["objects"] == 3
    assert totals["rows"] == 50 + BIG_ROWS + 7 + 11
    assert totals["bytes"] == sum(p.stat().st_size for p in expected.values())
    assert totals["marts"]["device_features_daily"] == {
        "objects": 1,  # one Parquet file per mart, whatever the table's partitions
        "rows": 18,
        "bytes": sum(p.stat().st_size for r, p in expected.items() if r.startswith("device_features_daily/")),
    }

    # Order: every data upload and its verification, then the date manifest, then latest.json, and only then
    # the listing that finds superseded objects to delete.
    puts = [(op, key) for op, key in s3_calls if op in {"PutObject", "CreateMultipartUpload", "UploadPart"}]
    assert puts[-2:] == [("PutObject", mkey), ("PutObject", lkey)]
    assert {key for _, key in puts[:-2]} == data_keys
    last_data_call = max(i for i, (_, key) in enumerate(s3_calls) if key in data_keys)
    assert last_data_call < s3_calls.index(("PutObject", mkey)) < s3_calls.index(("PutObject", lkey))
    first_listing = min(i for i, (op, _) in enumerate(s3_calls) if op == "ListObjectsV2")
    assert first_listing > s3_calls.index(("PutObject", lkey))
    assert all(objects[k]["LastModified"] <= objects[mkey]["LastModified"] for k in data_keys)

    # The secret never shows up: not in log records, not in console output, not in the manifest.
    assert caplog.records, "expected log records from the publish step"
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert SECRET not in str(record.args)
        assert SECRET not in (record.exc_text or "")
    out, err = capfd.readouterr()
    assert SECRET not in out and SECRET not in err
    assert SECRET not in get_bytes(s3, mkey).decode()
    assert SECRET not in json.dumps(result)


def test_rerun_replaces_objects_and_deletes_stale(
    env: dict[str, Any], s3: Any, s3_calls: list[tuple[str, str | None]]
) -> None:
    prefix, layout = env["prefix"], env["layout"]
    publish_gold(DAY, marts=MARTS, run_id="run-1")
    first_latest = json.loads(get_bytes(s3, f"{prefix}/_manifests/latest.json"))
    first_keys = {o["key"] for o in first_latest["objects"]}

    # A mart loses a date and another mart changes.
    before = gold_files(layout.gold)
    stale = f"{prefix}/{next(k for k in before if k.startswith('device_features_daily/'))}"
    old_fct_key = f"{prefix}/{next(k for k in before if k.startswith('fct_device_daily/'))}"
    kept_key = f"{prefix}/{next(k for k in before if k.startswith('dim_devices/'))}"
    _commit(layout.gold, "device_features_daily", features(("2026-11-01", 11)))
    _commit(layout.gold, "fct_device_daily", pa.table({"device_id": ["x"], "n": [1]}))
    s3_calls.clear()

    result = publish_gold(DAY, marts=MARTS, run_id="run-2")

    keys = [o["Key"] for o in list_objects(s3, prefix)]
    assert len(keys) == len(set(keys))
    assert stale not in keys and old_fct_key not in keys
    after = gold_files(layout.gold)
    fct_key = f"{prefix}/{next(k for k in after if k.startswith('fct_device_daily/'))}"
    features_key = f"{prefix}/{next(k for k in after if k.startswith('device_features_daily/'))}"
    assert [k for k in keys if k.startswith(f"{prefix}/device_features_daily/")] == [features_key]
    assert fct_key != old_fct_key, "changed bytes get a new key"
    assert get_bytes(s3, fct_key) == export_of(layout.gold, "fct_device_daily").read_bytes()
    # Only the changed marts went up again; the unchanged one was found in place and kept.
    uploaded = {key for op, key in s3_calls if op in {"PutObject", "CreateMultipartUpload"} and "_manifests" not in key}
    assert uploaded == {fct_key, features_key}
    assert kept_key in first_keys and kept_key in keys

    manifest = json.loads(get_bytes(s3, manifest_key(prefix)))
    assert manifest["run_id"] == "run-2"
    assert manifest["published_at"] >= first_latest["published_at"]
    assert {o["key"] for o in manifest["objects"]} == {k for k in keys if "/_manifests/" not in k}
    assert {o["key"]: o["rows"] for o in manifest["objects"]}[fct_key] == 1
    assert manifest["totals"]["objects"] == 3
    assert json.loads(get_bytes(s3, f"{prefix}/_manifests/latest.json")) == manifest
    assert result["run_id"] == "run-2"

    # Another date: its own dated manifest, the first date's stays, latest.json follows the newest run.
    other = dt.date(2026, 11, 2)
    publish_gold(other, marts=MARTS, run_id="run-3")
    assert json.loads(get_bytes(s3, manifest_key(prefix, other)))["run_id"] == "run-3"
    assert json.loads(get_bytes(s3, manifest_key(prefix)))["run_id"] == "run-2"
    assert json.loads(get_bytes(s3, f"{prefix}/_manifests/latest.json"))["date"] == "2026-11-02"
    keys = [o["Key"] for o in list_objects(s3, prefix)]
    assert len([k for k in keys if "/_manifests/" not in k]) == 3


@pytest.mark.parametrize("corrupt", ["size", "sha256", "etag"])
def test_failed_verification_raises_and_writes_no_manifest(
    env: dict[str, Any], s3: Any, monkeypatch: pytest.MonkeyPatch, corrupt: str
) -> None:
    prefix = env["prefix"]
    publish_gold(DAY, marts=MARTS, run_id="good")  # a previous good run of the same date
    gold = env["layout"].gold
    stale_candidate = f"{prefix}/{next(k for k in gold_files(gold) if k.startswith('device_features_daily/'))}"
    _commit(gold, "device_features_daily", features(("2026-11-01", 11)))  # a date less: a new object
    big = export_of(gold, "dim_devices")
    bad_key = f"{prefix}/{key_of('dim_devices/dim_devices.parquet', big)}"
    original = publish._head_object

    def lying_head(client: Any, bucket: str, key: str) -> dict[str, Any]:
        head = dict(original(client, bucket, key))
        if key == bad_key:
            if corrupt == "size":
                head["ContentLength"] += 1
            elif corrupt == "sha256":
                head["Metadata"] = {"sha256": "0" * 64}
            else:
                head["ETag"] = '"' + "0" * 32 + '-2"'
        return head

    monkeypatch.setattr(publish, "_head_object", lying_head)

    with pytest.raises(PublishError) as excinfo:
        publish_gold(DAY, marts=MARTS, run_id="bad")
    assert bad_key in str(excinfo.value)
    assert SECRET not in str(excinfo.value)

    keys = {o["Key"] for o in list_objects(s3, prefix)}
    # The date's manifest and latest.json still describe the last good run, every object they list is intact,
    # and nothing was deleted before verification passed.
    assert json.loads(get_bytes(s3, manifest_key(prefix)))["run_id"] == "good"
    latest = json.loads(get_bytes(s3, f"{prefix}/_manifests/latest.json"))
    assert latest["run_id"] == "good"
    for obj in latest["objects"]:
        assert hashlib.sha256(get_bytes(s3, obj["key"])).hexdigest() == obj["sha256"]
    assert stale_candidate in {o["key"] for o in latest["objects"]} and stale_candidate in keys


def test_kms_objects_are_verified_by_reading_them_back(
    env: dict[str, Any], s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With SSE-KMS the ETag is not an MD5: verification falls back to hashing the object's bytes."""
    prefix = env["prefix"]
    original = publish._head_object
    downloads: list[str] = []
    original_download = publish._verify_by_download

    def kms_head(client: Any, bucket: str, key: str) -> dict[str, Any]:
        head = dict(original(client, bucket, key))
        head["ServerSideEncryption"] = "aws:kms"
        head["ETag"] = '"not-an-md5"'
        return head

    def spy(client: Any, bucket: str, key: str, sha256: str) -> None:
        downloads.append(key)
        original_download(client, bucket, key, sha256)

    monkeypatch.setattr(publish, "_head_object", kms_head)
    monkeypatch.setattr(publish, "_verify_by_download", spy)
    result = publish_gold(DAY, marts=MARTS)
    assert sorted(downloads[:-2]) == sorted(o["key"] for o in result["objects"])
    assert manifest_key(prefix) in {o["Key"] for o in list_objects(s3, prefix)}


def test_missing_bucket_is_a_clear_error(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKEHOUSE_S3_BUCKET")
    with pytest.raises(ValueError, match="LAKEHOUSE_S3_BUCKET"):
        publish_gold(DAY, marts=MARTS)


def test_nonexistent_bucket_fails_without_leaking_the_secret(env: dict[str, Any], s3: Any) -> None:
    with pytest.raises(PublishError) as excinfo:
        publish_gold(DAY, marts=MARTS, bucket="no-such-bucket-here")
    assert "no-such-bucket-here" in str(excinfo.value)
    assert SECRET not in str(excinfo.value)


def test_a_reader_of_latest_json_never_sees_a_half_published_date(
    env: dict[str, Any], s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish that dies between uploads (here: an exception at the failpoint after the second object):
    latest.json and the date manifest still name the previous objects, all there byte for byte. The rerun
    publishes, then deletes the previous objects: one copy of each mart, with the same keys and ETags as a
    publish of the same gold under a fresh prefix."""
    prefix, layout = env["prefix"], env["layout"]
    publish_gold(DAY, marts=MARTS, run_id="old")
    old_objects = etags(s3, prefix)
    for mart in MARTS:  # every mart changes: its last row goes
        table = pq.read_table(export_of(layout.gold, mart))
        _commit(layout.gold, mart, table.slice(0, table.num_rows - 1))

    reached: list[str] = []

    def die_after_second_upload(name: str, where: str = "") -> None:
        if name == "publish.upload":
            reached.append(where)
            if len(reached) == 2:
                raise KeyboardInterrupt("killed mid publish")

    real_failpoint = publish.failpoint
    monkeypatch.setattr(publish, "failpoint", die_after_second_upload)
    with pytest.raises(KeyboardInterrupt):
        publish_gold(DAY, marts=MARTS, run_id="new")

    for manifest_name in (manifest_key(prefix), f"{prefix}/_manifests/latest.json"):
        manifest = json.loads(get_bytes(s3, manifest_name))
        assert manifest["run_id"] == "old"
        for obj in manifest["objects"]:
            assert hashlib.sha256(get_bytes(s3, obj["key"])).hexdigest() == obj["sha256"], obj["key"]
    during = etags(s3, prefix)
    assert set(old_objects) < set(during), "the previous objects are untouched, the new ones are extra"
    assert {k: during[k] for k in old_objects} == old_objects
    assert {f"{prefix}/{k}" for k in set(during) - set(old_objects)} == set(reached)

    monkeypatch.setattr(publish, "failpoint", real_failpoint)
    result = publish_gold(DAY, marts=MARTS, run_id="new")
    after = etags(s3, prefix)
    assert set(after) == set(gold_files(layout.gold)), "one copy of each file: the previous ones are deleted"
    assert not set(after) & set(old_objects)
    assert {o["key"].removeprefix(prefix + "/") for o in result["objects"]} == set(after)

    fresh = f"it/{uuid.uuid4().hex[:8]}/gold"
    publish_gold(DAY, marts=MARTS, run_id="elsewhere", prefix=fresh)
    assert etags(s3, fresh) == after


def test_rerun_of_identical_gold_uploads_nothing_and_keeps_keys(
    env: dict[str, Any], s3: Any, s3_calls: list[tuple[str, str | None]]
) -> None:
    prefix = env["prefix"]
    first = publish_gold(DAY, marts=MARTS, run_id="a")
    before = etags(s3, prefix)
    s3_calls.clear()

    second = publish_gold(DAY, marts=MARTS, run_id="b")

    assert etags(s3, prefix) == before
    writes = [(op, key) for op, key in s3_calls if op in {"PutObject", "CreateMultipartUpload", "DeleteObjects"}]
    assert writes == [("PutObject", manifest_key(prefix)), ("PutObject", f"{prefix}/_manifests/latest.json")]
    volatile = {"run_id", "published_at"}
    assert {k: v for k, v in first.items() if k not in volatile} == {
        k: v for k, v in second.items() if k not in volatile
    }


def test_only_the_listed_marts_are_published_and_other_marts_objects_stay(env: dict[str, Any], s3: Any) -> None:
    """A declared source's mart in gold/ is not published with the AppMetrica marts; its objects are kept."""
    prefix, layout = env["prefix"], env["layout"]
    _commit(layout.gold, "vacancy_skills_daily", pa.table({"device_id": ["x"], "skill": ["sql"]}))
    other = f"{prefix}/vacancy_skills_daily/vacancy_skills_daily-0123456789abcdef.parquet"
    s3.put_object(Bucket=BUCKET, Key=other, Body=b"published by the source's own run")

    result = publish_gold(DAY, marts=MARTS, run_id="listed")

    assert sorted(result["totals"]["marts"]) == sorted(MARTS)
    assert not any("vacancy_skills_daily" in o["key"] for o in result["objects"])
    keys = {o["Key"] for o in list_objects(s3, prefix)}
    assert {k for k in keys if "/vacancy_skills_daily/" in k} == {other}
    assert get_bytes(s3, other) == b"published by the source's own run"

    with pytest.raises(PublishError, match=r"gold mart\(s\) no_such_mart listed for publishing have no Delta table"):
        publish_gold(DAY, marts=[*MARTS, "no_such_mart"], run_id="refused")
    latest = json.loads(get_bytes(s3, f"{prefix}/_manifests/latest.json"))
    assert latest["run_id"] == "listed"
