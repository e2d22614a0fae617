"""LAKEHOUSE_STORAGE_URL parsing, and that local disk stays exactly as before (every sync a no-op)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse.settings import ConfigError, Layout
from lakehouse.storage import LocalLake, open_lake, parse_storage_url


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_unset_or_empty_means_local_disk(raw):
    url = parse_storage_url(raw)
    assert not url.is_s3 and url.path is None


def test_a_local_path_or_file_url_means_local_disk(tmp_path):
    assert parse_storage_url(str(tmp_path)).path == tmp_path.resolve()
    assert parse_storage_url(f"file://{tmp_path}").path == tmp_path.resolve()


@pytest.mark.parametrize(
    ("raw", "bucket", "prefix"),
    [
        ("s3://lake", "lake", ""),
        ("s3://lake/", "lake", ""),
        ("s3://my-lake.test/prod/lakehouse/", "my-lake.test", "prod/lakehouse"),
    ],
)
def test_s3_urls(raw, bucket, prefix):
    url = parse_storage_url(raw)
    assert (url.is_s3, url.bucket, url.prefix) == (True, bucket, prefix)
    assert url.key("silver/t/date=2026-11-01") == (f"{prefix}/" if prefix else "") + "silver/t/date=2026-11-01"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("gs://lake/x", "scheme must be s3://"),
        ("S3://lake", "scheme must be s3://"),
        ("s3://UPPER/x", "not a valid S3 bucket name"),
        ("s3://a/x", "not a valid S3 bucket name"),
        ("s3:///x", "not a valid S3 bucket name"),
        ("s3://lake/../etc", "'..'"),
        ("s3://lake/a//b", "empty segment"),
        ("s3://lake/_v", "must not start with '_'"),
        ("s3://lake/a b", "letters, digits"),
    ],
)
def test_bad_urls_are_refused_naming_the_variable_and_value(raw, problem):
    with pytest.raises(ConfigError) as err:
        parse_storage_url(raw)
    assert "LAKEHOUSE_STORAGE_URL" in str(err.value) and repr(raw) in str(err.value)
    assert problem in str(err.value)


def test_local_lake_is_a_no_op(tmp_path, monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_STORAGE_URL", raising=False)
    layout = Layout(tmp_path)
    part = tmp_path / "silver/events_part/date=2026-11-01"
    part.mkdir(parents=True)
    (part / "a.parquet").write_bytes(b"x")
    lake = open_lake(layout)
    assert type(lake) is LocalLake and not lake.is_s3
    assert lake.hydrate("silver/events_part/date=2026-11-01") is True
    assert lake.commit("silver/events_part/date=2026-11-01") is None
    lake.push_file("silver/events_part/date=2026-11-01/a.parquet")
    lake.remove_file("silver/events_part/date=2026-11-01/a.parquet")
    assert (part / "a.parquet").read_bytes() == b"x", "local disk is the lake: nothing is moved or deleted"


def test_a_local_url_must_be_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_STORAGE_URL", str(tmp_path / "elsewhere"))
    with pytest.raises(ConfigError, match="LAKEHOUSE_DATA_DIR"):
        open_lake(Layout(tmp_path))
    monkeypatch.setenv("LAKEHOUSE_STORAGE_URL", str(tmp_path))
    assert not open_lake(Layout(tmp_path)).is_s3


@pytest.mark.parametrize("rel", ["", "/abs", "a/../b", "silver/t/_v", "a//b"])
def test_unclean_lake_paths_are_refused(tmp_path: Path, rel: str):
    with pytest.raises(ConfigError, match="not a clean relative path"):
        LocalLake(Layout(tmp_path)).hydrate(rel)


@pytest.mark.parametrize(
    ("url", "published", "refused"),
    [
        ("s3://lakehouse/lake", "gold", False),
        ("s3://lakehouse", "gold", True),  # the lake's gold layer would be the published gold
        ("s3://lakehouse", "published", False),
        ("s3://lakehouse/gold", "gold", True),
        ("s3://lakehouse/lake", "lake/gold", True),
        ("s3://lakehouse/lake", "", True),
        ("s3://other-bucket", "gold", False),
    ],
)
def test_the_lake_and_the_published_gold_never_share_keys(tmp_path, monkeypatch, url, published, refused):
    monkeypatch.setenv("LAKEHOUSE_STORAGE_URL", url)
    monkeypatch.setenv("LAKEHOUSE_S3_BUCKET", "lakehouse")
    monkeypatch.setenv("LAKEHOUSE_S3_PREFIX", published)
    monkeypatch.setenv("AIRFLOW_CONN_LAKEHOUSE_S3", '{"conn_type": "aws", "extra": {"region_name": "us-east-1"}}')
    if refused:
        with pytest.raises(ConfigError, match="overlaps the publish target"):
            open_lake(Layout(tmp_path))
    else:
        assert open_lake(Layout(tmp_path)).is_s3


def test_the_s3_lake_needs_the_connection(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_STORAGE_URL", "s3://lakehouse/lake")
    monkeypatch.delenv("AIRFLOW_CONN_LAKEHOUSE_S3", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    with pytest.raises(ConfigError, match="needs the Airflow connection 'lakehouse_s3'"):
        open_lake(Layout(tmp_path))
