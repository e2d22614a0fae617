"""The lake on an S3-compatible server (moto's, over HTTP): versioned commits, pointers, hydration, dbt's access."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

# Imported at collection: importing Airflow reconfigures logging, which would drop caplog's handler mid-test.
from airflow.providers.amazon.aws.hooks.s3 import S3Hook  # noqa: F401
from moto.server import ThreadedMotoServer

from lakehouse.settings import Layout
from lakehouse.storage import S3Lake, dbt_lake_env, open_lake

pytestmark = pytest.mark.integration

BUCKET = "lake-it"
ACCESS_KEY = "lake-key-id"
SECRET = "lake-secret-" + uuid.uuid4().hex
PART = "bronze/appmetrica/events/date=2026-11-01"


@pytest.fixture(scope="module")
def endpoint() -> Any:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                 aws_secret_access_key=SECRET).create_bucket(Bucket=BUCKET)  # fmt: skip
    yield url
    server.stop()


@pytest.fixture
def s3(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET)  # fmt: skip


@pytest.fixture
def env(endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The lake under a prefix of its own per test; returns the environment a child process needs too."""
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    prefix = f"it-{uuid.uuid4().hex[:8]}"
    values = {
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW_CONN_LAKEHOUSE_S3": json.dumps({"conn_type": "aws", "login": ACCESS_KEY, "password": SECRET,
                                                 "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}),
        "LAKEHOUSE_STORAGE_URL": f"s3://{BUCKET}/{prefix}",
        "LAKEHOUSE_DATA_DIR": str(tmp_path / "worker-a"),
    }  # fmt: skip
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return {"prefix": prefix, "vars": values}


def _worker(tmp_path: Path, name: str) -> S3Lake:
    lake = open_lake(Layout((tmp_path / name).resolve()))
    assert isinstance(lake, S3Lake)
    return lake


def _write(lake: S3Lake, rel: str, files: dict[str, bytes]) -> None:
    folder = lake.layout.root / rel
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for name, data in files.items():
        (folder / name).write_bytes(data)


def _keys(s3: Any, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def test_commit_then_hydrate_on_another_worker(env, tmp_path, s3):
    a, b = _worker(tmp_path, "worker-a"), _worker(tmp_path, "worker-b")
    _write(a, PART, {"part-0.parquet": b"one", "part-1.parquet": b"two"})
    version = a.commit(PART)
    pointer = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{env['prefix']}/{PART}/_current.json")["Body"].read())
    assert pointer["version"] == version
    assert [f["name"] for f in pointer["files"]] == ["part-0.parquet", "part-1.parquet"]
    assert _keys(s3, f"{env['prefix']}/{PART}/_v/") == [
        f"{env['prefix']}/{PART}/_v/{version}/part-0.parquet",
        f"{env['prefix']}/{PART}/_v/{version}/part-1.parquet",
    ]
    # worker b has a stale copy of its own: hydration replaces it by exactly the committed files
    _write(b, PART, {"part-0.parquet": b"stale", "part-9.parquet": b"left over"})
    assert b.hydrate(PART) is True
    folder = b.layout.root / PART
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {"part-0.parquet": b"one", "part-1.parquet": b"two"}
    assert b.partitions("bronze/appmetrica/events") == [PART]


def test_a_new_commit_switches_the_pointer_and_removes_the_old_version(env, tmp_path, s3):
    a = _worker(tmp_path, "worker-a")
    _write(a, PART, {"part-0.parquet": b"v1"})
    first = a.commit(PART)
    _write(a, PART, {"part-0.parquet": b"v2", "part-1.parquet": b"v2b"})
    second = a.commit(PART)
    assert second > first
    assert all(f"/_v/{second}/" in k for k in _keys(s3, f"{env['prefix']}/{PART}/_v/"))
    b = _worker(tmp_path, "worker-b")
    b.hydrate(PART)
    assert (b.layout.root / PART / "part-0.parquet").read_bytes() == b"v2"


def test_a_partition_removed_locally_is_removed_from_the_lake(env, tmp_path, s3):
    a = _worker(tmp_path, "worker-a")
    _write(a, PART, {"part-0.parquet": b"v1"})
    a.commit(PART)
    b = _worker(tmp_path, "worker-b")
    _write(b, PART, {"part-0.parquet": b"stale"})
    import shutil

    shutil.rmtree(a.layout.root / PART)
    assert a.commit(PART) is None
    assert _keys(s3, f"{env['prefix']}/{PART}") == []
    assert b.hydrate(PART) is False
    assert not (b.layout.root / PART).exists(), "a partition the lake does not hold must not linger in scratch"


def test_a_commit_killed_before_its_pointer_leaves_the_old_version_readable(env, tmp_path, s3):
    a = _worker(tmp_path, "worker-a")
    _write(a, PART, {"part-0.parquet": b"committed"})
    first = a.commit(PART)
    _write(a, PART, {"part-0.parquet": b"never committed", "part-1.parquet": b"x"})
    child = subprocess.run(
        [sys.executable, "-c", f"from lakehouse.storage import open_lake; open_lake().commit({PART!r})"],
        env={**__import__("os").environ, **env["vars"], "LAKEHOUSE_FAILPOINT": "lake_pointer"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert child.returncode == -9, child.stderr[-2000:]
    # the killed commit uploaded its files under a new version, but the pointer still names the first one
    assert len({k.split("/_v/")[1].split("/")[0] for k in _keys(s3, f"{env['prefix']}/{PART}/_v/")}) == 2
    b = _worker(tmp_path, "worker-b")
    assert b.pointer(PART)["version"] == first
    b.hydrate(PART)
    assert [p.read_bytes() for p in (b.layout.root / PART).iterdir()] == [b"committed"]
    # the next successful commit removes the orphaned version too
    third = a.commit(PART)
    assert {k.split("/_v/")[1].split("/")[0] for k in _keys(s3, f"{env['prefix']}/{PART}/_v/")} == {third}


def test_hydrate_follows_a_pointer_switched_while_it_reads(env, tmp_path, s3, monkeypatch):
    a, b = _worker(tmp_path, "worker-a"), _worker(tmp_path, "worker-b")
    _write(a, PART, {"part-0.parquet": b"v1"})
    a.commit(PART)
    real = b.client.download_file
    calls = []

    def racing(bucket: str, key: str, dest: str) -> None:
        if not calls:  # worker a commits a new version (deleting v1) between b's pointer read and its download
            _write(a, PART, {"part-0.parquet": b"v2"})
            a.commit(PART)
        calls.append(key)
        real(bucket, key, dest)

    monkeypatch.setattr(b.client, "download_file", racing)
    assert b.hydrate(PART) is True
    assert (b.layout.root / PART / "part-0.parquet").read_bytes() == b"v2"
    assert len(calls) == 2


def test_single_objects_and_folders(env, tmp_path, s3):
    a, b = _worker(tmp_path, "worker-a"), _worker(tmp_path, "worker-b")
    rel = "reports/appmetrica_lakehouse/date=2026-11-01/failures/gold.json"
    (a.layout.root / rel).parent.mkdir(parents=True)
    (a.layout.root / rel).write_text('{"step": "gold"}')
    a.push_file(rel)
    assert b.pull_folder("reports/appmetrica_lakehouse/date=2026-11-01/failures") == ["gold.json"]
    assert json.loads((b.layout.root / rel).read_text()) == {"step": "gold"}
    a.remove_file(rel)
    assert b.pull_file(rel) is False and not (b.layout.root / rel).exists()


def test_dbt_reads_silver_through_delta_scan_over_httpfs_and_no_secret_is_logged(env, tmp_path, s3, caplog):
    import datetime as dt

    import duckdb
    import pyarrow as pa

    from lakehouse.delta import locate, replace_partition
    from transforms.silver.schemas import SILVER_TABLES

    layout = Layout((tmp_path / "worker-a").resolve())
    big = 2**64 - 2  # a device id above 2^63: stored as DECIMAL(20,0), read back as UBIGINT
    for table, spec in SILVER_TABLES.items():
        for day, n in ((dt.date(2026, 10, 31), 2), (dt.date(2026, 11, 1), 3)):
            rows = [{f.name: None for f in spec.schema} | {"export_date": day, "bronze_file": "b", "bronze_row": i}
                    for i in range(n)]  # fmt: skip
            if "appmetrica_device_id" in spec.schema.names:
                rows[0]["appmetrica_device_id"] = big
            data = pa.Table.from_pylist(rows, schema=spec.schema.with_metadata(None))
            data = pa.Table.from_arrays(data.columns, schema=pa.schema([f.with_nullable(True) for f in spec.schema]))
            replace_partition(locate(f"silver/{table}", layout), data, column="export_date", value=day)
    assert _keys(s3, f"{env['prefix']}/silver/events_part/_delta_log/"), "silver is a Delta table on the store"
    assert not (layout.root / "silver").exists(), "nothing of silver is written to the worker's scratch"
    database = tmp_path / "worker-a" / "warehouse" / "lake.duckdb"
    database.parent.mkdir(parents=True)
    with caplog.at_level(logging.DEBUG):
        extra = dbt_lake_env(layout, database)
    assert extra["LAKEHOUSE_DBT_TARGET"] == "s3" and extra["DBT_ENV_SECRET_LAKE_S3_SECRET"] == SECRET
    assert SECRET not in caplog.text, "the secret key must not be logged, even at DEBUG"
    # botocore's DEBUG lines show the access key id (an identifier, not a secret); INFO and above do not
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and ACCESS_KEY in r.getMessage()]
    assert not any(SECRET in v for k, v in extra.items() if not k.startswith("DBT_ENV_SECRET_"))
    assert SECRET.encode() not in database.read_bytes(), "the secret is temporary, never stored in the database"
    with duckdb.connect(str(database)) as con:  # as dbt's s3 target opens it
        con.execute(f"load '{extra['LAKEHOUSE_DUCKDB_HTTPFS']}'")
        con.execute(f"load '{extra['LAKEHOUSE_DUCKDB_DELTA']}'")
        con.execute(
            f"create temporary secret (type s3, key_id '{ACCESS_KEY}', secret '{SECRET}', region 'us-east-1', "
            f"endpoint '{extra['LAKEHOUSE_S3_ENDPOINT']}', use_ssl false, url_style 'path')"
        )
        for table in SILVER_TABLES:
            assert con.execute(f"select count(*) from lake_silver.{table}").fetchone()[0] == 5  # noqa: S608
        got = con.execute("select max(appmetrica_device_id), typeof(max(appmetrica_device_id)) from "
                          "lake_silver.events_part where export_date = date '2026-11-01'").fetchone()  # fmt: skip
        assert got == (big, "UBIGINT")


def test_hydrate_downloads_nothing_when_scratch_already_holds_the_committed_version(env, tmp_path, monkeypatch):
    a = _worker(tmp_path, "worker-a")
    _write(a, PART, {"part-0.parquet": b"v1"})
    a.commit(PART)
    downloads = []
    real = a.client.download_file
    monkeypatch.setattr(a.client, "download_file", lambda *args: downloads.append(args) or real(*args))
    assert a.hydrate(PART) is True
    assert downloads == []
    (a.layout.root / PART / "part-0.parquet").write_bytes(b"v9")  # same size, other bytes: fetched again
    assert a.hydrate(PART) is True
    assert len(downloads) == 1 and (a.layout.root / PART / "part-0.parquet").read_bytes() == b"v1"


def test_committing_unchanged_files_keeps_the_current_version(env, tmp_path, s3):
    a = _worker(tmp_path, "worker-a")
    _write(a, PART, {"part-0.parquet": b"same"})
    first = a.commit(PART)
    _write(a, PART, {"part-0.parquet": b"same"})
    assert a.commit(PART) == first
    assert {k.split("/_v/")[1].split("/")[0] for k in _keys(s3, f"{env['prefix']}/{PART}/_v/")} == {first}


def test_a_download_that_differs_from_the_pointer_is_refused_and_scratch_kept(env, tmp_path, s3):
    a, b = _worker(tmp_path, "worker-a"), _worker(tmp_path, "worker-b")
    _write(a, PART, {"part-0.parquet": b"good"})
    version = a.commit(PART)
    _write(b, PART, {"part-0.parquet": b"older"})
    s3.put_object(Bucket=BUCKET, Key=f"{env['prefix']}/{PART}/_v/{version}/part-0.parquet", Body=b"evil")
    with pytest.raises(OSError, match="differs from its pointer's digest"):
        b.hydrate(PART)
    assert (b.layout.root / PART / "part-0.parquet").read_bytes() == b"older", "scratch is replaced only whole"


def test_run_report_pages_go_to_the_lake_and_the_next_worker_plots_the_earlier_runs(env, tmp_path, s3, monkeypatch):
    from lakehouse import pipeline

    def run(day: str, bronze: int) -> dict[str, Any]:
        steps = {"extract": [{"resource": "events", "rows": bronze}], "silver": {"tables": {"events_part": bronze}},
                 "quality": {}, "gold": {}, "publish": {}, "publish_bi": {}}  # fmt: skip
        return pipeline.write_report(day, f"manual__{day}", steps)

    first = run("2026-11-01", 4321)
    assert first["status"] == "success" and first["page"].endswith("date=2026-11-01/index.html")
    env_b = tmp_path / "worker-b"
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(env_b))  # another worker, an empty scratch folder
    second = run("2026-11-02", 100)
    assert "page_error" not in second and second["page"].startswith(str(env_b))
    runs = f"{env['prefix']}/reports/appmetrica_lakehouse"
    page = s3.get_object(Bucket=BUCKET, Key=f"{runs}/date=2026-11-02/index.html")["Body"].read().decode()
    assert "4,321" in page, "the earlier run's bronze rows, read back from the lake, top the chart"
    index = s3.get_object(Bucket=BUCKET, Key=f"{runs}/index.html")["Body"].read().decode()
    assert "date=2026-11-02/" in index and "date=2026-11-01/" in index
