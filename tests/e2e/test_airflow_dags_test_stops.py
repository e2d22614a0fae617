"""A day that must stop: silver that fails the quality gate stops gold and publish; a failed dbt test stops publish.

Both are real `airflow dags test appmetrica_lakehouse` runs on the demo Logs API and a moto S3 server, as in
test_airflow_dags_test.py.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from lake_tables import silver_rows, silver_table, write_rows
from pipeline_env import dags_test_env

from ingest.appmetrica.demo.server import DemoLogsApiServer
from lakehouse.settings import Layout

pytestmark = pytest.mark.e2e

DAY = "2026-11-01"
BUCKET = "lakehouse-e2e"
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")


def _env(tmp_path: Path, api_url: str, token: str, s3_url: str, secret: str) -> dict[str, str]:
    return dags_test_env(tmp_path / "airflow", tmp_path / "data", api_url=api_url, token=token, s3_url=s3_url,
                         secret=secret, bucket=BUCKET, access_key="e2e-access-key")  # fmt: skip


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
    assert silver_rows(Layout(data), "events_part", dt.date.fromisoformat(DAY)), "silver is kept for inspection"
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
        again = silver_table(layout, "events_part", dt.date.fromisoformat(earlier)).to_pylist()
        write_rows(layout, "events_part", dt.date(2026, 10, 26), again)  # the same events filed under a second date
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
