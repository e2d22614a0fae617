"""`lakehouse dags-test` (= `make dags-test`): a real `airflow dags test appmetrica_lakehouse` run.

The demo Logs API and a moto S3 server run on loopback with secrets known to the test, passed
as Airflow connections through the environment, exactly as a user points the DAG at real
services. After the run every layer is checked, and every log line and file is searched for
the secrets.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import duckdb
import pytest
from pipeline_env import MARTS, SILVER, dags_test_env

from ingest.appmetrica.demo.server import DemoLogsApiServer

pytestmark = pytest.mark.e2e

DAY = "2026-11-01"
BUCKET = "lakehouse-e2e"
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")


def _env(tmp_path: Path, api_url: str, token: str, s3_url: str, secret: str) -> dict[str, str]:
    return dags_test_env(tmp_path / "airflow", tmp_path / "data", api_url=api_url, token=token, s3_url=s3_url,
                         secret=secret, bucket=BUCKET, access_key="e2e-access-key")  # fmt: skip


def _files_containing(root: Path, needle: bytes) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and needle in path.read_bytes():
            hits.append(str(path))
    return hits


def test_dags_test_runs_the_day_end_to_end(tmp_path, s3_endpoint, postgres):
    postgres.createdb("e2e_bi")
    token = "tok-" + secrets.token_hex(16)
    secret = "sec-" + secrets.token_hex(16)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="e2e-access-key", aws_secret_access_key=secret)  # fmt: skip
    s3.create_bucket(Bucket=BUCKET)

    with DemoLogsApiServer(token=token, application_id="1234567", devices=400, anomaly_rate=0.004) as api:
        env = _env(tmp_path, api.url, token, s3_endpoint, secret)
        env["AIRFLOW_CONN_LAKEHOUSE_BI"] = json.dumps(postgres.connection("e2e_bi"))
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
    events = scalar("select count(*) from read_parquet(?)", f"{data}/silver/events_part/date={DAY}/*.parquet")
    assert events == report["silver_rows"]["events_part"] > 0
    all_events = scalar("select count(*) from read_parquet(?)", f"{data}/silver/events_part/*/*.parquet")
    assert report["silver_rebuilt"] == ["2026-10-29", "2026-10-30", "2026-10-31", DAY], "the lookback days too"
    # Nothing silently dropped: every exported event row is in silver, a removed duplicate, or quarantined.
    quarantined = scalar("select count(*) from read_parquet(?)", f"{data}/quarantine/events/date={DAY}/*.parquet")
    assert quarantined == report["quarantined_rows"]["events"] > 0
    assert report["bronze_rows"]["events"] == events + report["duplicates_removed"]["events"] + quarantined

    gold_rows = {}
    for mart in MARTS:
        glob = f"{data}/gold/{mart}/**/*.parquet"
        gold_rows[mart] = scalar("select count(*) from read_parquet(?, hive_partitioning=true)", glob)
        assert gold_rows[mart] > 0, mart
    daily_glob = f"{data}/gold/fct_device_daily/**/*.parquet"
    daily_events = scalar("select sum(events_count) from read_parquet(?, hive_partitioning=true)", daily_glob)
    assert daily_events == all_events
    # the drift check ran on the day's feature statistics (no training window set: PSI is not judged)
    assert report["gold"]["feature_drift"] == {"date": DAY, "features": 7, "breaches": [],
                                               "thresholds": {"psi": 0.2, "null_rate": 0.05}}  # fmt: skip

    # revenue, ad revenue, crashes and errors reach the day's features, each row counted once
    gold_features = f"{data}/gold/device_features_daily/**/*.parquet"
    con.execute(f"create view features as select * from read_parquet('{gold_features}')"  # noqa: S608 - a tmp path
                f" where feature_date = date '{DAY}'")  # fmt: skip
    for resource, feature, date_column, days, where in (
        ("revenue_events", "purchases_28d", "event_date", 28, "revenue_price >= 0"),
        ("ad_revenue_events", "ad_revenue_other_currency_events_28d", "ad_revenue_date", 28,
         "ad_revenue_currency <> 'USD'"),
        ("crashes", "crashes_7d", "crash_date", 7, "true"),
        ("errors", "errors_7d", "error_date", 7, "true"),
    ):  # fmt: skip
        assert report["bronze_rows"][resource] > 0, resource
        counted = con.execute(f"select sum({feature}) from features").fetchone()[0]  # noqa: S608 - constants
        sql = (f"select count(*) from read_parquet('{data}/silver/{resource}/*/*.parquet') where {where}"  # noqa: S608
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
    gold_per_date = dict(con.execute("select event_date, count(*) from read_parquet(?) group by 1",
                                     [daily_glob]).fetchall())  # fmt: skip
    assert per_date == gold_per_date

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


def _shift_timestamps(fields: list[str], rows: list[dict[str, str]]) -> tuple[list[str], list[dict[str, str]]]:
    """Three events whose Unix timestamp disagrees with their local datetime by 3 hours (a time-zone slip)."""
    for row in rows[10:13]:
        row["event_timestamp"] = str(int(row["event_timestamp"]) + 3 * 3600)
    return fields, rows


def _s3_keys(s3) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_a_failed_quality_gate_stops_gold_and_publish(tmp_path, s3_endpoint):
    """Silver that parses but is wrong (timestamps off the app time zone) is stopped by GX, not published."""
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="e2e-access-key", aws_secret_access_key="gate-secret")  # fmt: skip
    s3.create_bucket(Bucket=BUCKET + "-gate")
    with DemoLogsApiServer(token="gate-token", application_id="1234567", devices=120) as api:
        api.tamper("events", rows=_shift_timestamps)
        env = _env(tmp_path, api.url, "gate-token", s3_endpoint, "gate-secret") | {
            "LAKEHOUSE_S3_BUCKET": BUCKET + "-gate"
        }
        proc = subprocess.run([LAKEHOUSE, "dags-test", "--date", DAY], env=env, capture_output=True, text=True,
                              timeout=900, check=False)  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-4000:]
    data = tmp_path / "data"
    assert list((data / "silver/events_part" / f"date={DAY}").glob("*.parquet")), "silver is kept for inspection"
    assert not (data / "gold").exists(), "gold must not be built from silver that failed the gate"
    assert s3.list_objects_v2(Bucket=BUCKET + "-gate").get("KeyCount", 0) == 0, "nothing may be published"
    # The task log says in plain words which expectation failed on which table, with examples.
    assert "silver quality gate failed" in output
    assert "events_part" in output and "_tz_offset_ok" in output
    report = json.loads((data / "reports/appmetrica_lakehouse" / f"date={DAY}" / "summary.json").read_text())
    assert report["status"] == "failed" and report["failed_step"] == "quality"
    failed = report["failures"]["quality"]["details"]["tables"]["events_part"]["failed"]
    assert [f["column"] for f in failed] == ["_tz_offset_ok"]
    assert (data / "docs/gx/index.html").exists(), "the Data Docs show the failed validation"


def test_a_failed_dbt_test_stops_publish(tmp_path, s3_endpoint):
    """Silver history damaged outside the day (a partition filed twice) passes the day's gate; dbt's unique test
    on the event key fails, so no gold file is replaced and nothing is published."""
    from ingest.appmetrica import RESOURCES, AppMetricaSettings, extract_resource
    from lakehouse.settings import Layout
    from transforms.silver import build_silver

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="e2e-access-key", aws_secret_access_key="dbt-secret")  # fmt: skip
    s3.create_bucket(Bucket=BUCKET + "-dbt")
    layout = Layout(tmp_path / "data")
    earlier = "2026-10-27"
    with DemoLogsApiServer(token="dbt-token", application_id="1234567", devices=120) as api:
        settings = AppMetricaSettings.from_connection(api.url, "dbt-token", {"application_id": "1234567"})
        for resource in RESOURCES:
            extract_resource(resource, earlier, settings=settings, layout=layout)
        build_silver(dt.date.fromisoformat(earlier), layout)
        good = layout.silver("events_part", dt.date.fromisoformat(earlier))
        shutil.copytree(good, good.parent / "date=2026-10-26")  # the same events filed under a second date
        env = _env(tmp_path, api.url, "dbt-token", s3_endpoint, "dbt-secret") | {"LAKEHOUSE_S3_BUCKET": BUCKET + "-dbt"}
        proc = subprocess.run([LAKEHOUSE, "dags-test", "--date", DAY], env=env, capture_output=True, text=True,
                              timeout=900, check=False)  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-4000:]
    assert "unique" in output and "event_id" in output
    assert output.count("running: dbt build") == 1, "a failed data test is not retried (the verdict would repeat)"
    assert not list((layout.root / "gold").rglob("*.parquet")), "no gold file is written when a dbt test fails"
    assert s3.list_objects_v2(Bucket=BUCKET + "-dbt").get("KeyCount", 0) == 0, "nothing may be published"
    report = json.loads((layout.root / "reports/appmetrica_lakehouse" / f"date={DAY}" / "summary.json").read_text())
    assert report["status"] == "failed" and report["failed_step"] == "gold"
    assert report["quality_gate"]["success"] is True
    assert any("event_id" in json.dumps(f) for f in report["failures"]["gold"]["details"])
