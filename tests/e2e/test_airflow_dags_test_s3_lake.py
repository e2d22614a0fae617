"""The whole lake on S3: `airflow dags test appmetrica_lakehouse` with ``LAKEHOUSE_STORAGE_URL=s3://...`` on moto.

The same day is run twice on the same demo data: once on local disk, once with the lake on the
object store. The S3 run's results are read back by following the partitions' pointers (as every
reader must), and compared with the local run: the same silver row counts per table and the same
gold mart contents, row for row. Then the S3 run's local scratch folder is deleted and the next
day is run on a fresh one, so no step may rely on files an earlier task left on its worker. The
connection's secret must appear in no output and no file.
"""

from __future__ import annotations

import io
import json
import secrets
import subprocess
import sys
from pathlib import Path

import boto3
import duckdb
import pyarrow.parquet as pq
import pytest
from pipeline_env import MARTS, SILVER, dags_test_env

from ingest.appmetrica.demo.server import DemoLogsApiServer

pytestmark = pytest.mark.e2e

DAY, NEXT_DAY = "2026-11-01", "2026-11-02"
BUCKET = "lakehouse-lake-e2e"
LAKE_PREFIX = "lake"
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
DEVICES = 150


def _env(home: Path, data: Path, api_url: str, token: str, s3_url: str, secret: str, bucket: str) -> dict[str, str]:
    env = dags_test_env(home, data, api_url=api_url, token=token, s3_url=s3_url, secret=secret, bucket=bucket,
                        access_key="lake-access-key")  # fmt: skip
    return env | {"LAKEHOUSE_LOOKBACK_DAYS": "1"}


def _dags_test(env: dict[str, str], day: str) -> str:
    proc = subprocess.run([LAKEHOUSE, "dags-test", "--date", day], env=env, capture_output=True, text=True,
                          timeout=900, check=False)  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return output


class PointerReader:
    """Reads the lake on S3 the way every reader must: pointer first, then exactly the files it names."""

    def __init__(self, s3, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket

    def _get(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def tables(self, rel: str) -> list:
        pointer = json.loads(self._get(f"{LAKE_PREFIX}/{rel}/_current.json"))
        base = f"{LAKE_PREFIX}/{rel}/_v/{pointer['version']}"
        return [pq.read_table(io.BytesIO(self._get(f"{base}/{f['name']}")))
                for f in pointer["files"] if f["name"].endswith(".parquet")]  # fmt: skip

    def rows(self, rel: str) -> int:
        return sum(t.num_rows for t in self.tables(rel))

    def json(self, rel: str) -> dict:
        return json.loads(self._get(f"{LAKE_PREFIX}/{rel}"))


def _sorted_rows(tables: list) -> list[tuple]:
    con = duckdb.connect()
    rows = []
    for i, table in enumerate(tables):
        con.register(f"t{i}", table)
        rows.extend(con.execute(f"select * from t{i}").fetchall())  # noqa: S608 - registered names
    return sorted(rows, key=repr)


def _files_containing(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_the_whole_lake_on_s3_gives_the_same_results_as_local_disk(tmp_path, s3_endpoint):
    token = "tok-" + secrets.token_hex(16)
    secret = "sec-" + secrets.token_hex(16)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="lake-access-key", aws_secret_access_key=secret)  # fmt: skip
    for bucket in (BUCKET, BUCKET + "-local"):
        s3.create_bucket(Bucket=bucket)
    local_data, scratch = tmp_path / "local-data", tmp_path / "scratch"
    with DemoLogsApiServer(token=token, application_id="1234567", devices=DEVICES) as api:
        local_env = _env(tmp_path / "af-local", local_data, api.url, token, s3_endpoint, secret, BUCKET + "-local")
        outputs = [_dags_test(local_env, DAY)]
        lake_env = _env(tmp_path / "af-s3", scratch, api.url, token, s3_endpoint, secret, BUCKET)
        lake_env["LAKEHOUSE_STORAGE_URL"] = f"s3://{BUCKET}/{LAKE_PREFIX}"
        outputs.append(_dags_test(lake_env, DAY))

        assert f"dbt reads silver from s3://{BUCKET}/{LAKE_PREFIX}/silver through httpfs" in outputs[1]
        assert "dbt reads silver from" not in outputs[0], "the local-disk run reads silver from disk"
        reader = PointerReader(s3, BUCKET)
        report = reader.json(f"reports/appmetrica_lakehouse/date={DAY}/summary.json")
        assert report["status"] == "success"
        local_report = json.loads((local_data / f"reports/appmetrica_lakehouse/date={DAY}/summary.json").read_text())
        for table in SILVER:
            local_rows = pq.ParquetDataset(local_data / "silver" / table / f"date={DAY}").read().num_rows
            assert reader.rows(f"silver/{table}/date={DAY}") == local_rows == report["silver_rows"][table], table
        assert report["quarantined_rows"] == local_report["quarantined_rows"]
        assert reader.rows(f"quarantine/events/date={DAY}") == report["quarantined_rows"]["events"]
        for mart in MARTS:
            local_tables = [pq.read_table(p) for p in sorted((local_data / "gold" / mart).rglob("*.parquet"))]
            lake_rows = _sorted_rows(reader.tables(f"gold/{mart}"))
            assert lake_rows, mart
            assert lake_rows == _sorted_rows(local_tables), f"gold mart {mart} differs from the local-disk run"
        # Gold was published from the lake as from disk: the same manifest rows.
        published = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"gold/_manifests/date={DAY}/")["KeyCount"]
        assert published >= 1
        # Only the current version of each partition is left; nothing was written outside the prefix but publish.
        keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET) for o in p["Contents"]]
        versions: dict[str, set[str]] = {}
        for key in keys:
            if "/_v/" in key:
                partition, _, rest = key.partition("/_v/")
                versions.setdefault(partition, set()).add(rest.split("/", 1)[0])
        assert versions and all(len(v) == 1 for v in versions.values()), versions
        assert all(k.startswith((f"{LAKE_PREFIX}/", "gold/")) for k in keys)

        # Another worker: an empty scratch folder; the next day needs the lookback day's bronze from the lake.
        import shutil

        shutil.rmtree(scratch)
        outputs.append(_dags_test(lake_env, NEXT_DAY))
        next_report = reader.json(f"reports/appmetrica_lakehouse/date={NEXT_DAY}/summary.json")
        assert next_report["status"] == "success"
        assert next_report["silver_rebuilt"] == [NEXT_DAY], "the lookback day's bronze was read back from the lake"
        assert reader.rows(f"silver/events_part/date={NEXT_DAY}") == next_report["silver_rows"]["events_part"] > 0
        dates = {str(d) for t in reader.tables("gold/fct_device_daily") for d in t.column("event_date").to_pylist()}
        assert {DAY, NEXT_DAY} <= dates, "gold covers the first run's day and the next one"

    for needle in (token, secret):
        assert all(needle not in out for out in outputs), "a secret appeared in a run's output"
        assert _files_containing(tmp_path, needle.encode()) == []
