"""Machine-readable output is never mixed with logs: with a real ``lakehouse_s3`` connection Airflow logs as it reads
the connection, and those lines used to reach stdout ahead of ``lakehouse s3 ls --json``. Now stdout holds the result
alone (logs go to stderr)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUCKET = "lake-output"
KEY, SECRET = "output-test-access", "output-test-secret-value"


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """moto's S3 server on 127.0.0.1 with one object, and the environment of a real ``lakehouse_s3`` connection."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=KEY,
                          aws_secret_access_key=SECRET)  # fmt: skip
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="gold/mart/part-0.parquet", Body=b"0123456789")
        tmp = tmp_path_factory.mktemp("output")
        conn = {"conn_type": "aws", "login": KEY, "password": SECRET,
                "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env |= {"AIRFLOW_HOME": str(tmp / "airflow"), "AIRFLOW_CONN_LAKEHOUSE_S3": json.dumps(conn),
                "LAKEHOUSE_S3_BUCKET": BUCKET, "LAKEHOUSE_S3_PREFIX": "gold",
                "LAKEHOUSE_DATA_DIR": str(tmp / "data")}  # fmt: skip
        yield env
    finally:
        server.stop()


def lakehouse(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lakehouse.cli", *argv], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_s3_ls_json_is_parseable_with_a_real_connection(s3_env):
    proc = lakehouse(s3_env, "s3", "ls", "gold/mart", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    entries = json.loads(proc.stdout)  # the whole of stdout, nothing ahead of it
    assert [(e["key"], e["size"]) for e in entries] == [("gold/mart/part-0.parquet", 10)]
    assert "lakehouse_s3" in proc.stderr  # Airflow's connection log line is still there, on stderr
    assert SECRET not in proc.stdout + proc.stderr


def test_s3_info_is_parseable_with_a_real_connection(s3_env):
    proc = lakehouse(s3_env, "s3", "info", "gold/mart/part-0.parquet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout)
    assert info["exists"] and info["size"] == 10
