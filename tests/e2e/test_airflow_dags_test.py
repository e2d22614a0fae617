"""`lakehouse dags-test` (= `make dags-test`): a real `airflow dags test appmetrica_lakehouse` run.

The demo Logs API and a moto S3 server run on loopback with secrets known to the test, passed
as Airflow connections through the environment, exactly as a user points the DAG at real
services. After the run every layer is checked, and every log line and file is searched for
the secrets.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import boto3
import duckdb
import pytest

from ingest.appmetrica.demo.server import DemoLogsApiServer

pytestmark = pytest.mark.e2e

DAY = "2026-11-01"
BUCKET = "lakehouse-e2e"
MARTS = (
    "fct_device_daily",
    "dim_devices",
    "device_features_daily",
    "device_features_daily_transformed",
    "feature_transformer_state",
)
SILVER = ("events_part", "mobile_devices", "technical_data", "tmp_event_properties",
          "permanent_user_properties", "tmp_user_properties", "user_locations")  # fmt: skip
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _env(tmp_path: Path, api_url: str, token: str, s3_url: str, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LAKEHOUSE_"))}
    env |= {
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "LAKEHOUSE_DATA_DIR": str(tmp_path / "data"),
        "LAKEHOUSE_S3_BUCKET": BUCKET,
        "LAKEHOUSE_S3_PREFIX": "gold",
        "AIRFLOW_CONN_APPMETRICA_DEFAULT": json.dumps(
            {"conn_type": "http", "host": api_url, "password": token,
             "extra": {"application_id": "1234567", "poll_interval_seconds": 0.1, "poll_timeout_seconds": 60}}
        ),
        "AIRFLOW_CONN_LAKEHOUSE_S3": json.dumps(
            {"conn_type": "aws", "login": "e2e-access-key", "password": secret,
             "extra": {"endpoint_url": s3_url, "region_name": "us-east-1"}}
        ),
    }  # fmt: skip
    return env


def _files_containing(root: Path, needle: bytes) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and needle in path.read_bytes():
            hits.append(str(path))
    return hits


def test_dags_test_runs_the_day_end_to_end(tmp_path, s3_endpoint):
    token = "tok-" + secrets.token_hex(16)
    secret = "sec-" + secrets.token_hex(16)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="e2e-access-key", aws_secret_access_key=secret)  # fmt: skip
    s3.create_bucket(Bucket=BUCKET)

    with DemoLogsApiServer(token=token, application_id="1234567", devices=400, anomaly_rate=0.004) as api:
        env = _env(tmp_path, api.url, token, s3_endpoint, secret)
        proc = subprocess.run([LAKEHOUSE, "dags-test", "--date", DAY], env=env, capture_output=True, text=True,
                              timeout=1200, check=False)  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]

    data = tmp_path / "data"
    report = json.loads((data / "reports/appmetrica_lakehouse" / f"date={DAY}" / "summary.json").read_text())
    for resource in ("events", "sessions_starts", "installations", "profiles_v2"):
        manifest = json.loads((data / "bronze/appmetrica" / resource / f"date={DAY}" / "_manifest.json").read_text())
        assert manifest["rows"] > 0 and report["bronze_rows"][resource] == manifest["rows"]
    con = duckdb.connect()

    def scalar(sql: str, glob: str) -> int:
        return con.execute(sql, [glob]).fetchone()[0]

    for table in SILVER:
        files = list((data / "silver" / table / f"date={DAY}").glob("*.parquet"))
        assert files, table
    events = scalar("select count(*) from read_parquet(?)", f"{data}/silver/events_part/*/*.parquet")
    assert events == report["silver_rows"]["events_part"] > 0
    # Nothing silently dropped: every exported event row is in silver, a removed duplicate, or quarantined.
    quarantined = scalar("select count(*) from read_parquet(?)", f"{data}/quarantine/events/*/*.parquet")
    assert quarantined == report["quarantined_rows"]["events"] > 0
    assert report["bronze_rows"]["events"] == events + report["duplicates_removed"]["events"] + quarantined

    gold_rows = {}
    for mart in MARTS:
        glob = f"{data}/gold/{mart}/**/*.parquet"
        gold_rows[mart] = scalar("select count(*) from read_parquet(?, hive_partitioning=true)", glob)
        assert gold_rows[mart] > 0, mart
    daily_glob = f"{data}/gold/fct_device_daily/**/*.parquet"
    daily_events = scalar("select sum(events_count) from read_parquet(?, hive_partitioning=true)", daily_glob)
    assert daily_events == events

    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=f"gold/_manifests/date={DAY}/manifest.json")["Body"].read())
    keys = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="gold/")["Contents"]}
    assert {o["mart"] for o in manifest["objects"]} == set(MARTS)
    for obj in manifest["objects"]:
        assert keys[obj["key"]] == obj["bytes"]
    published_daily = sum(o["rows"] for o in manifest["objects"] if o["mart"] == "fct_device_daily")
    assert published_daily == gold_rows["fct_device_daily"]

    for needle in (token, secret):
        assert needle not in output, "a secret appeared in the run's output"
        assert _files_containing(tmp_path, needle.encode()) == []


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
