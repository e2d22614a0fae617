"""`lakehouse dags-test` (= `make dags-test`): a real `airflow dags test appmetrica_lakehouse` run.

The demo Logs API and a moto S3 server run on loopback with secrets known to the test, passed
as Airflow connections through the environment, exactly as a user points the DAG at real
services. The day runs once on local disk (a module fixture) and once with the whole lake on S3,
and the two are compared. After the run every layer is checked, and every log line and file is searched for
the secrets.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pyarrow.parquet as pq
import pytest
from lake_tables import quarantine_table, silver_rows
from pipeline_env import MARTS, SILVER, dags_test_env, gold_sql

from ingest.appmetrica.demo.server import DemoLogsApiServer
from lakehouse.delta import (
    DeltaLocation,
    duckdb_connect_lake,
    locate,
    partition_files,
    read_table,
    scan_sql,
    table_schema,
)
from lakehouse.settings import Layout
from transforms.silver.schemas import SILVER_TABLES

pytestmark = pytest.mark.e2e

DAY, NEXT_DAY = "2026-11-01", "2026-11-02"
BUCKET = "lakehouse-e2e"
LAKE_BUCKET, LAKE_PREFIX = "lakehouse-lake-e2e", "lake"
DEVICES = 400
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")


def _env(tmp_path: Path, api_url: str, token: str, s3_url: str, secret: str) -> dict[str, str]:
    env = dags_test_env(tmp_path / "airflow", tmp_path / "data", api_url=api_url, token=token, s3_url=s3_url,
                        secret=secret, bucket=BUCKET, access_key="e2e-access-key")  # fmt: skip
    return env | {"LAKEHOUSE_LOOKBACK_DAYS": "1"}


def _files_containing(root: Path, needle: bytes) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and needle in path.read_bytes():
            hits.append(str(path))
    return hits


@dataclass
class LocalRun:
    """One `lakehouse dags-test` of DAY on local disk: its folder, output, secrets and the demo Logs API it used."""

    root: Path
    output: str
    token: str
    secret: str
    api: DemoLogsApiServer
    s3: Any


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, postgres: Any) -> Iterator[LocalRun]:
    """The day on local disk, shared by the end-to-end checks and the lake-on-S3 comparison (which reuses its
    demo Logs API, so both runs export the same data)."""
    root = tmp_path_factory.mktemp("dags-test")
    postgres.createdb("e2e_bi")
    token = "tok-" + secrets.token_hex(16)
    secret = "sec-" + secrets.token_hex(16)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="e2e-access-key", aws_secret_access_key=secret)  # fmt: skip
    s3.create_bucket(Bucket=BUCKET)

    with DemoLogsApiServer(token=token, application_id="1234567", devices=DEVICES, anomaly_rate=0.004) as api:
        env = _env(root, api.url, token, s3_endpoint, secret)
        env["AIRFLOW_CONN_LAKEHOUSE_BI"] = json.dumps(postgres.connection("e2e_bi"))
        proc = subprocess.run([LAKEHOUSE, "dags-test", "--date", DAY], env=env, capture_output=True, text=True,
                              timeout=1200, check=False)  # fmt: skip
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, output[-6000:]
        yield LocalRun(root, output, token, secret, api, s3)


def test_dags_test_runs_the_day_end_to_end(local_run: LocalRun, postgres: Any) -> None:
    root, output, s3 = local_run.root, local_run.output, local_run.s3
    token, secret = local_run.token, local_run.secret

    data = root / "data"
    report = json.loads((data / "reports/appmetrica_lakehouse" / f"date={DAY}" / "summary.json").read_text())
    for resource in ("events", "sessions_starts", "installations", "profiles_v2"):
        manifest = json.loads((data / "bronze/appmetrica" / resource / f"date={DAY}" / "_manifest.json").read_text())
        assert manifest["rows"] > 0 and report["bronze_rows"][resource] == manifest["rows"]
    con = duckdb.connect()

    def scalar(sql: str, glob: str) -> int:
        return con.execute(sql, [glob]).fetchone()[0]

    layout = Layout(data)
    for table in SILVER:
        assert silver_rows(layout, table, dt.date.fromisoformat(DAY)) == report["silver_rows"][table], table
    events = silver_rows(layout, "events_part", dt.date.fromisoformat(DAY))
    assert events == report["silver_rows"]["events_part"] > 0
    all_events = silver_rows(layout, "events_part")
    assert report["silver_rebuilt"] == ["2026-10-31", DAY], "the lookback day too"
    # Nothing silently dropped: every exported event row is in silver, a removed duplicate, or quarantined.
    quarantined = quarantine_table(layout, "events", dt.date.fromisoformat(DAY)).num_rows
    assert quarantined == report["quarantined_rows"]["events"] > 0
    assert report["bronze_rows"]["events"] == events + report["duplicates_removed"]["events"] + quarantined

    gold_rows = {}
    for mart in MARTS:
        gold_rows[mart] = con.execute(f"select count(*) from {gold_sql(con, data, mart)}").fetchone()[0]  # noqa: S608
        assert gold_rows[mart] > 0, mart
    daily = gold_sql(con, data, "fct_device_daily")
    daily_events = con.execute(f"select sum(events_count) from {daily}").fetchone()[0]  # noqa: S608
    assert daily_events == all_events
    # the drift check ran on the day's feature statistics (no training window set: PSI is not judged)
    assert report["gold"]["feature_drift"] == {"date": DAY, "features": 7, "breaches": [],
                                               "thresholds": {"psi": 0.2, "null_rate": 0.05}}  # fmt: skip

    # revenue, ad revenue, crashes and errors reach the day's features, each row counted once
    gold_features = gold_sql(con, data, "device_features_daily")
    con.execute(f"create view features as select * from {gold_features} where feature_date = date '{DAY}'")  # noqa: S608
    duckdb_connect_lake(con)
    for resource, feature, date_column, days, where in (
        ("revenue_events", "purchases_28d", "event_date", 28, "revenue_price >= 0"),
        ("ad_revenue_events", "ad_revenue_other_currency_events_28d", "ad_revenue_date", 28,
         "ad_revenue_currency <> 'USD'"),
        ("crashes", "crashes_7d", "crash_date", 7, "true"),
        ("errors", "errors_7d", "error_date", 7, "true"),
    ):  # fmt: skip
        assert report["bronze_rows"][resource] > 0, resource
        counted = con.execute(f"select sum({feature}) from features").fetchone()[0]  # noqa: S608 - constants
        scan = scan_sql(locate(f"silver/{resource}", layout), SILVER_TABLES[resource].schema)
        sql = (f"select count(*) from ({scan}) where {where}"  # noqa: S608
               f" and {date_column} > date '{DAY}' - {days}"
               " and appmetrica_device_id in (select appmetrica_device_id from features)")  # fmt: skip
        silver = con.execute(sql).fetchone()[0]
        assert counted == silver > 0, resource
    revenue, ads = con.execute("select sum(revenue_28d), sum(ad_revenue_28d) from features").fetchone()
    assert revenue > 0 and ads > 0

    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=f"gold/_manifests/date={DAY}/manifest.json")["Body"].read())
    keys = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="gold/")["Contents"]}
    assert {o["mart"] for o in manifest["objects"]} == set(MARTS)
    for obj in manifest["objects"]:
        assert keys[obj["key"]] == obj["bytes"]
    published_daily = sum(o["rows"] for o in manifest["objects"] if o["mart"] == "fct_device_daily")
    assert published_daily == gold_rows["fct_device_daily"]

    # publish_bi: a BI tool on the database sees every mart, each date complete
    assert report["published_bi"]["dates"] and report["published_bi"]["target"].endswith("/e2e_bi")
    with postgres.connect("e2e_bi") as bi:
        for mart in MARTS:
            count = f'select count(*) from public."{mart}"'  # noqa: S608 - the mart names
            assert bi.execute(count).fetchone()[0] == gold_rows[mart], mart
        per_date = dict(bi.execute("select event_date, count(*) from fct_device_daily group by 1").fetchall())
    gold_per_date = dict(con.execute(f"select event_date, count(*) from {daily} group by 1").fetchall())  # noqa: S608
    assert per_date == gold_per_date

    for needle in (token, secret):
        assert needle not in output, "a secret appeared in the run's output"
        assert _files_containing(root, needle.encode()) == []


def test_dags_test_fails_with_a_clear_message_when_the_token_is_rejected(tmp_path, s3_endpoint):
    with DemoLogsApiServer(token="the-right-token", application_id="1234567", devices=50) as api:
        env = _env(tmp_path, api.url, "a-wrong-token", s3_endpoint, "unused-secret")
        proc = subprocess.run([LAKEHOUSE, "dags-test", "--date", DAY], env=env, capture_output=True, text=True,
                              timeout=900, check=False)  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "403" in output
    assert "a-wrong-token" not in output
    assert not (tmp_path / "data/silver").exists()


def _dags_test(env: dict[str, str], day: str) -> str:
    proc = subprocess.run([LAKEHOUSE, "dags-test", "--date", day], env=env, capture_output=True, text=True,
                          timeout=900, check=False)  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return output


class PointerReader:
    """Reads the lake on S3 the way every reader must: a Delta table through its log, any other partition by its
    pointer first, then exactly the files it names."""

    def __init__(self, s3, bucket: str, options: dict[str, str]) -> None:
        self.s3, self.bucket, self.options = s3, bucket, options

    def delta_rows(self, rel: str, day: str) -> int:
        """Rows of the export date ``day`` of the lake's Delta table ``rel`` (from its add actions)."""
        loc = DeltaLocation(rel, f"s3://{self.bucket}/{LAKE_PREFIX}/{rel}", self.options)
        return sum(f["num_records"] for f in partition_files(loc, "export_date").get(dt.date.fromisoformat(day), []))

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


def test_the_whole_lake_on_s3_gives_the_same_results_as_local_disk(
    local_run: LocalRun, tmp_path: Path, s3_endpoint: str
) -> None:
    """The same day again with ``LAKEHOUSE_STORAGE_URL=s3://...`` on moto, on the same demo data as the local run.
    Its results are read back by following the partitions' pointers (as every reader must) and compared with the
    local run: the same silver row counts per table and the same gold mart contents, row for row. Then its local
    scratch folder is deleted and the next day is run on a fresh one, so no step may rely on files an earlier task
    left on its worker. The connection's secret appears in no output and no file."""
    token, secret, s3 = local_run.token, local_run.secret, local_run.s3
    s3.create_bucket(Bucket=LAKE_BUCKET)
    local_data, scratch = local_run.root / "data", tmp_path / "scratch"
    lake_env = _env(tmp_path, local_run.api.url, token, s3_endpoint, secret) | {
        "LAKEHOUSE_DATA_DIR": str(scratch), "LAKEHOUSE_S3_BUCKET": LAKE_BUCKET,
        "LAKEHOUSE_STORAGE_URL": f"s3://{LAKE_BUCKET}/{LAKE_PREFIX}",
    }  # fmt: skip
    outputs = [_dags_test(lake_env, DAY)]

    assert f"dbt reads silver from s3://{LAKE_BUCKET}/{LAKE_PREFIX}/silver through delta_scan" in outputs[0]
    assert "dbt reads silver from" not in local_run.output, "the local-disk run reads silver from disk"
    options = {"AWS_ACCESS_KEY_ID": "e2e-access-key", "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1",
               "AWS_ENDPOINT_URL": s3_endpoint, "AWS_ALLOW_HTTP": "true"}  # fmt: skip
    reader = PointerReader(s3, LAKE_BUCKET, options)
    report = reader.json(f"reports/appmetrica_lakehouse/date={DAY}/summary.json")
    assert report["status"] == "success"
    local_report = json.loads((local_data / f"reports/appmetrica_lakehouse/date={DAY}/summary.json").read_text())
    for table in SILVER:
        local_rows = silver_rows(Layout(local_data), table, dt.date.fromisoformat(DAY))
        assert reader.delta_rows(f"silver/{table}", DAY) == local_rows == report["silver_rows"][table], table
    assert report["quarantined_rows"] == local_report["quarantined_rows"]
    assert reader.delta_rows("quarantine/events", DAY) == report["quarantined_rows"]["events"]
    assert not (scratch / "silver").exists() or not any((scratch / "silver").rglob("*.parquet")), "silver is in S3"
    # Gold marts are Delta tables in the lake, read in place (deltalake, straight from S3), not through pointers.
    for mart in MARTS:
        lake_loc = DeltaLocation(f"gold/{mart}", f"s3://{LAKE_BUCKET}/{LAKE_PREFIX}/gold/{mart}", options)
        local_loc = DeltaLocation(f"gold/{mart}", str(local_data / "gold" / mart))
        lake_rows = _sorted_rows([read_table(lake_loc, schema=table_schema(lake_loc))])
        assert lake_rows, mart
        local_rows = _sorted_rows([read_table(local_loc, schema=table_schema(local_loc))])
        assert lake_rows == local_rows, f"gold mart {mart} differs from the local-disk run"
    # Gold was published from the lake as from disk: the same manifest rows.
    published = s3.list_objects_v2(Bucket=LAKE_BUCKET, Prefix=f"gold/_manifests/date={DAY}/")["KeyCount"]
    assert published >= 1
    # Only the current version of each partition is left; nothing was written outside the prefix but publish.
    keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=LAKE_BUCKET) for o in p["Contents"]]
    gold_pointers = [k for k in keys if k.startswith(f"{LAKE_PREFIX}/gold/") and "/_v/" in k and "/_registry/" not in k]
    assert not gold_pointers, "no gold mart is committed through a pointer"
    versions: dict[str, set[str]] = {}
    for key in keys:
        if "/_v/" in key:
            partition, _, rest = key.partition("/_v/")
            versions.setdefault(partition, set()).add(rest.split("/", 1)[0])
    assert versions and all(len(v) == 1 for v in versions.values()), versions
    assert all(k.startswith((f"{LAKE_PREFIX}/", "gold/")) for k in keys)

    # Another worker: an empty scratch folder; the next day needs the lookback day's bronze from the lake.
    shutil.rmtree(scratch)
    outputs.append(_dags_test(lake_env, NEXT_DAY))
    next_report = reader.json(f"reports/appmetrica_lakehouse/date={NEXT_DAY}/summary.json")
    assert next_report["status"] == "success"
    assert next_report["silver_rebuilt"] == [NEXT_DAY], "the lookback day's bronze was read back from the lake"
    assert reader.delta_rows("silver/events_part", NEXT_DAY) == next_report["silver_rows"]["events_part"] > 0
    fct = DeltaLocation("gold/fct_device_daily", f"s3://{LAKE_BUCKET}/{LAKE_PREFIX}/gold/fct_device_daily", options)
    dates = {str(d) for d in read_table(fct, columns=["event_date"]).column("event_date").to_pylist()}
    assert {DAY, NEXT_DAY} <= dates, "gold covers the first run's day and the next one"

    for needle in (token, secret):
        assert all(needle not in out for out in outputs), "a secret appeared in a run's output"
        assert _files_containing(tmp_path, needle.encode()) == []
