"""`lakehouse s3` against an S3-compatible endpoint over HTTP (moto's threaded server), through S3Hook."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

# Imported at collection: importing Airflow reconfigures logging.
from airflow.providers.amazon.aws.hooks.s3 import S3Hook  # noqa: F401
from moto_s3 import SECRET, ensure_bucket, s3_client, use_lakehouse_s3

from lakehouse import cli
from lakehouse.s3tools import S3Store, S3ToolsError, open_tools

pytestmark = pytest.mark.integration

BUCKET = "lakehouse-tools"


@pytest.fixture(scope="module")
def endpoint(s3_endpoint: str) -> str:
    return ensure_bucket(s3_endpoint, BUCKET)


@pytest.fixture
def s3(endpoint: str) -> Any:
    return s3_client(endpoint)


@pytest.fixture
def prefix(endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The lakehouse_s3 connection, the bucket and a lake prefix of its own per test."""
    lake = f"t{uuid.uuid4().hex[:8]}/gold"
    use_lakehouse_s3(monkeypatch, endpoint, bucket=BUCKET, prefix=lake, tmp_path=tmp_path, data_dir=tmp_path / "data")
    return lake


def test_put_small_and_multipart_then_info_and_get(prefix, s3, tmp_path):
    tools = open_tools()
    assert isinstance(tools.store, S3Store)
    small = tmp_path / "small.json"
    small.write_text('{"a": 1}')
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024))  # above the 8 MiB multipart threshold: 2 parts

    one = tools.put(small, f"{prefix}/docs/small.json")
    assert one["parts"] == 1 and one["etag"] == hashlib.md5(small.read_bytes()).hexdigest()  # noqa: S324
    two = tools.put(big, f"s3://{BUCKET}/{prefix}/blobs/big.bin")
    assert two["parts"] == 2 and two["etag"].endswith("-2") and two["size"] == big.stat().st_size
    head = s3.head_object(Bucket=BUCKET, Key=f"{prefix}/blobs/big.bin")
    assert head["Metadata"]["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()
    assert head["ContentType"] == "application/octet-stream"

    info = tools.info(f"{prefix}/docs/small.json")
    assert info["exists"] and info["size"] == 8 and info["content_type"] == "application/json"
    assert info["sha256"] == hashlib.sha256(b'{"a": 1}').hexdigest() and info["modified"]
    assert tools.info(f"{prefix}/docs/none.json") == {"uri": f"s3://{BUCKET}/{prefix}/docs/none.json", "exists": False}

    out = tmp_path / "downloads"
    out.mkdir()
    got = tools.get(f"{prefix}/blobs/big.bin", out)
    assert Path(got["dest"]) == out / "big.bin" and (out / "big.bin").read_bytes() == big.read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["big.bin"]  # no temporary file left


def test_get_refuses_a_download_that_does_not_match_its_sha256(prefix, s3, tmp_path):
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/x.txt", Body=b"actual bytes", Metadata={"sha256": "0" * 64})
    tools = open_tools()
    with pytest.raises(S3ToolsError, match=r"failed verification .*sha256"):
        tools.get(f"{prefix}/x.txt", tmp_path / "x.txt")
    assert not (tmp_path / "x.txt").exists()


def test_ls_lists_direct_children_newest_first_across_pages(prefix, s3):
    for i in range(23):
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/mart/part-{i:02d}.parquet", Body=b"x" * i)
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/mart/sub/deep.parquet", Body=b"d")
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/mart/_manifests/m.json", Body=b"{}")
    time.sleep(1.1)  # S3 times have one-second resolution
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/mart/zz-newest.parquet", Body=b"new")

    tools = open_tools()
    entries = tools.ls(f"{prefix}/mart", page_size=5)
    assert tools.store.list_requests >= 5  # 27 children, 5 keys per request
    keys = [e.key for e in entries]
    assert keys[:2] == [f"{prefix}/mart/_manifests/", f"{prefix}/mart/sub/"]  # folders first
    assert keys[2] == f"{prefix}/mart/zz-newest.parquet"  # then newest first
    assert sorted(keys[3:]) == [f"{prefix}/mart/part-{i:02d}.parquet" for i in range(23)]
    sizes = {e.key: e.size for e in entries}
    assert sizes[f"{prefix}/mart/part-07.parquet"] == 7 and len(entries) == 26
    assert [e.key for e in tools.ls(prefix)] == [f"{prefix}/mart/"]


def test_rm_inside_the_prefix_and_the_guard_outside(prefix, s3):
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/old.parquet", Body=b"1")
    s3.put_object(Bucket=BUCKET, Key="raw/keep.csv", Body=b"2")
    tools = open_tools()
    assert tools.rm(f"{prefix}/old.parquet")["deleted"]
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/old.parquet")
    with pytest.raises(S3ToolsError, match=r"refusing to delete s3://lakehouse-tools/raw/keep\.csv"):
        tools.rm("raw/keep.csv")
    assert s3.head_object(Bucket=BUCKET, Key="raw/keep.csv")["ContentLength"] == 1
    assert tools.rm("raw/keep.csv", force=True)["deleted"]
    with pytest.raises(S3ToolsError, match="does not exist"):
        tools.rm(f"{prefix}/old.parquet")


def test_the_cli_end_to_end_without_showing_the_secret(prefix, tmp_path, capsys):
    src = tmp_path / "report.csv"
    src.write_text("a,b\n1,2\n")
    assert cli.main(["s3", "put", str(src), f"{prefix}/reports/r.csv"]) == 0
    assert cli.main(["s3", "ls", f"{prefix}/reports"]) == 0
    assert cli.main(["s3", "info", f"{prefix}/reports/r.csv"]) == 0
    assert cli.main(["s3", "get", f"{prefix}/reports/r.csv", str(tmp_path / "back.csv")]) == 0
    assert (tmp_path / "back.csv").read_text() == "a,b\n1,2\n"
    assert cli.main(["s3", "rm", "elsewhere/r.csv"]) == 2
    assert cli.main(["s3", "rm", f"{prefix}/reports/r.csv"]) == 0
    assert cli.main(["s3", "info", f"{prefix}/reports/r.csv"]) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert f"uploaded {src} -> s3://{BUCKET}/{prefix}/reports/r.csv (8 bytes, single request" in text
    assert f"{prefix}/reports/r.csv" in text and '"exists": false' in text and "pass --force" in text
    assert SECRET not in text


def test_a_connection_without_a_bucket_is_a_config_error(prefix, monkeypatch, capsys):
    monkeypatch.delenv("LAKEHOUSE_S3_BUCKET")
    assert cli.main(["s3", "ls"]) == 2
    assert "no bucket is set: set LAKEHOUSE_S3_BUCKET" in capsys.readouterr().err


def test_ls_pages_past_the_1000_keys_of_one_list_request(prefix, s3):
    """1001 objects: two ListObjectsV2 requests at the default (and S3's largest) page size, five at 250."""
    from concurrent.futures import ThreadPoolExecutor

    keys = [f"{prefix}/many/obj-{i:04d}.bin" for i in range(1001)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=BUCKET, Key=k, Body=k[-8:].encode()), keys))

    tools = open_tools()
    entries = tools.ls(f"{prefix}/many")
    assert tools.store.list_requests == 2
    assert sorted(e.key for e in entries) == keys and all(e.size == 8 for e in entries)
    tools.store.list_requests = 0
    assert len(tools.ls(f"{prefix}/many", page_size=250)) == 1001 and tools.store.list_requests == 5


def test_the_cli_shows_sizes_times_and_multipart_parts(prefix, s3, tmp_path, capsys):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(17 * 1024 * 1024))  # 8 + 8 + 1 MiB: 3 parts
    assert cli.main(["s3", "put", str(big), f"{prefix}/blobs/big.bin"]) == 0
    assert s3.head_object(Bucket=BUCKET, Key=f"{prefix}/blobs/big.bin")["ETag"].strip('"').endswith("-3")
    assert cli.main(["s3", "ls", f"{prefix}/blobs"]) == 0
    assert cli.main(["s3", "info", f"{prefix}/blobs/big.bin"]) == 0
    out = capsys.readouterr().out
    assert f"({big.stat().st_size:,} bytes, multipart, 3 parts, ETag " in out
    assert re.search(rf"^\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\s+17,825,792  {prefix}/blobs/big\.bin$", out, re.M)
    info = json.loads(out[out.index("{") :])
    assert info["exists"] and info["size"] == 17_825_792 and info["etag"].endswith("-3") and info["modified"]


def test_rm_refuses_a_sibling_that_only_shares_the_prefix_letters(prefix, s3):
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}fish/keep.csv", Body=b"1")  # e.g. t1234/goldfish/, not t1234/gold/
    with pytest.raises(S3ToolsError, match="outside the lake prefix"):
        open_tools().rm(f"{prefix}fish/keep.csv")
    assert s3.head_object(Bucket=BUCKET, Key=f"{prefix}fish/keep.csv")["ContentLength"] == 1
