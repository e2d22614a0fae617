"""The integration tests' S3: moto's threaded server over HTTP on 127.0.0.1 (port 0), and the
``lakehouse_s3`` Airflow connection pointing at it.

One server runs per test session (the ``s3_endpoint`` fixture in conftest.py); each test file
creates its own bucket with :func:`ensure_bucket` and each test uses a prefix of its own, so tests
never see each other's objects.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY = "lake-test-access"
SECRET = "lake-test-secret-value-123"
REGION = "us-east-1"
# Ambient AWS settings that would send the hook elsewhere or lend it other credentials.
AWS_ENV = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@contextlib.contextmanager
def moto_endpoint() -> Iterator[str]:
    """Run moto's S3 server on a free loopback port; yield its URL (``http://127.0.0.1:<port>``)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    """A boto3 S3 client of the test credentials (the tests' own view of the bucket)."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET)  # fmt: skip


def ensure_bucket(endpoint: str, bucket: str) -> str:
    """Create ``bucket`` when it does not exist yet; return the endpoint."""
    client = s3_client(endpoint)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)
    return endpoint


def connection(endpoint: str) -> dict[str, Any]:
    """The ``lakehouse_s3`` connection (type aws) of the test credentials and endpoint."""
    return {"conn_type": "aws", "login": ACCESS_KEY, "password": SECRET,
            "extra": {"endpoint_url": endpoint, "region_name": REGION}}  # fmt: skip


def use_lakehouse_s3(
    monkeypatch: pytest.MonkeyPatch,
    endpoint: str,
    *,
    bucket: str,
    prefix: str,
    tmp_path: Path,
    data_dir: Path | None = None,
) -> None:
    """Point the project at the server: ``AIRFLOW_CONN_LAKEHOUSE_S3``, ``LAKEHOUSE_S3_BUCKET``/``PREFIX``, a
    fresh ``AIRFLOW_HOME`` (and ``LAKEHOUSE_DATA_DIR`` when ``data_dir`` is given); ambient AWS settings cleared."""
    for name in AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("AIRFLOW_CONN_LAKEHOUSE_S3", json.dumps(connection(endpoint)))
    monkeypatch.setenv("LAKEHOUSE_S3_BUCKET", bucket)
    monkeypatch.setenv("LAKEHOUSE_S3_PREFIX", prefix)
    if data_dir is not None:
        monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(data_dir))


def record_s3_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None]]:
    """Record (operation, key) of every S3 API call made by clients from ``S3Hook.get_conn``, in order."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    calls: list[tuple[str, str | None]] = []
    original = S3Hook.get_conn

    def get_conn(self: S3Hook) -> Any:
        client = original(self)

        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            calls.append((model.name, params.get("Key")))

        client.meta.events.register("before-parameter-build.s3", record)
        return client

    monkeypatch.setattr(S3Hook, "get_conn", get_conn)
    return calls
