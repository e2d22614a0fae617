"""publish_gold without an Airflow ``lakehouse_s3`` connection (local fallback) and its input checks."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

# Imported at collection: importing Airflow reconfigures logging, which would drop caplog's handler mid-test.
from airflow.sdk import BaseHook

from lakehouse import publish
from lakehouse.delta import DeltaLocation, replace_table
from lakehouse.failpoints import failpoint
from lakehouse.publish import PublishError, find_connection, publish_gold, validate_bucket, validate_prefix
from lakehouse.settings import ConfigError, Layout

DAY = dt.date(2026, 11, 1)
MARTS = ("fct_device_daily", "device_features_daily")  # what make_gold writes


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    """A data dir with no S3 settings and no Airflow connection."""
    for name in ("AIRFLOW_CONN_LAKEHOUSE_S3", "LAKEHOUSE_S3_BUCKET", "LAKEHOUSE_S3_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path / "data"))
    return Layout.from_env()


def _write(mart_dir: Path, n: int, *, dates: tuple[dt.date, ...] = ()) -> Path:
    """Commit ``n`` rows (spread over ``dates``, if any) as the Delta table at ``mart_dir`` (``gold/<mart>``).

    Returns the Parquet file a publish writes from it (``warehouse/publish/<mart>/<mart>.parquet``).
    """
    rows = {"device_id": [f"d{i}" for i in range(n)], "v": list(range(n))}
    if dates:
        rows["feature_date"] = [dates[i * len(dates) // n] for i in range(n)]
    loc = DeltaLocation(f"gold/{mart_dir.name}", str(mart_dir))
    partition_by = ["feature_date"] if dates else None
    replace_table(loc, pa.table(rows), partition_by=partition_by, metadata={"lakehouse.order_by": "device_id"})
    return mart_dir.parent.parent / "warehouse" / "publish" / mart_dir.name / f"{mart_dir.name}.parquet"


def published_rel(rel: str, src: Path) -> str:
    """Where ``gold/<rel>`` is published: its file name carries the first 16 hex digits of its sha256."""
    folder, _, name = rel.rpartition("/")
    return f"{folder}/{name.removesuffix('.parquet')}-{hashlib.sha256(src.read_bytes()).hexdigest()[:16]}.parquet"


def published_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def make_gold(gold: Path) -> dict[str, Path]:
    """Two marts' Delta tables (one partitioned by date); by the published file name, the file a publish writes."""
    return {
        "fct_device_daily/fct_device_daily.parquet": _write(gold / "fct_device_daily", 5),
        "device_features_daily/device_features_daily.parquet": _write(
            gold / "device_features_daily", 7, dates=(dt.date(2026, 10, 31), DAY)
        ),
    }


def test_local_fallback_writes_layout_and_manifest(layout: Layout, caplog: pytest.LogCaptureFixture) -> None:
    files = make_gold(layout.gold)
    caplog.set_level(logging.INFO, logger="lakehouse.publish")

    result = publish_gold(DAY, marts=MARTS, run_id="local-1")

    root = layout.published / "gold"
    assert result["target"] == str(root)
    assert result["storage"] == "local" and result["bucket"] is None and result["prefix"] == "gold"
    keys = {rel: published_rel(rel, src) for rel, src in files.items()}
    published = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert published == set(keys.values()) | {"_manifests/date=2026-11-01/manifest.json", "_manifests/latest.json"}
    for rel, src in files.items():
        assert (root / keys[rel]).read_bytes() == src.read_bytes()

    manifest = json.loads((root / "_manifests" / "date=2026-11-01" / "manifest.json").read_text())
    assert json.loads((root / "_manifests" / "latest.json").read_text()) == manifest
    assert manifest == {k: v for k, v in result.items() if k not in {"target", "manifest_uri"}}
    assert result["manifest_uri"] == str(root / "_manifests" / "date=2026-11-01" / "manifest.json")
    assert set(manifest) == {"date", "run_id", "published_at", "storage", "bucket", "prefix", "objects", "totals"}
    assert manifest["date"] == "2026-11-01" and manifest["run_id"] == "local-1"
    assert {o["key"] for o in manifest["objects"]} == {f"gold/{key}" for key in keys.values()}
    for obj in manifest["objects"]:
        src = files[obj["file"]]
        assert obj["key"] == f"gold/{keys[obj['file']]}"
        assert obj["mart"] == obj["key"].split("/")[1]
        assert obj["bytes"] == src.stat().st_size
        assert obj["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
        assert obj["rows"] == pq.read_metadata(src).num_rows
    assert manifest["totals"]["objects"] == 2 and manifest["totals"]["rows"] == 12
    assert manifest["totals"]["marts"]["device_features_daily"]["rows"] == 7

    lines = [r.getMessage() for r in caplog.records if r.name == "lakehouse.publish"]
    assert any("No Airflow connection 'lakehouse_s3' found" in m and f"published locally at {root}" in m for m in lines)


def test_local_rerun_removes_stale_files(layout: Layout) -> None:
    files = make_gold(layout.gold)
    publish_gold(DAY, marts=MARTS, run_id="a", prefix="exports/gold")
    root = layout.published / "exports" / "gold"
    fct_rel = "fct_device_daily/fct_device_daily.parquet"
    old_fct = root / published_rel(fct_rel, files[fct_rel])
    old_features = root / published_rel("device_features_daily/device_features_daily.parquet",
                                        files["device_features_daily/device_features_daily.parquet"])  # fmt: skip
    _write(layout.gold / "device_features_daily", 3, dates=(DAY,))  # a date less
    _write(layout.gold / "fct_device_daily", 2)  # new content: a new name

    result = publish_gold(DAY, marts=MARTS, run_id="b", prefix="exports/gold")

    expected = {published_rel(rel, src) for rel, src in files.items()}
    assert {p.relative_to(root).as_posix() for p in root.glob("[!_]*/**/*") if p.is_file()} == expected
    assert not old_fct.exists() and not old_features.exists()
    assert result["totals"]["objects"] == 2 and result["totals"]["rows"] == 5
    assert json.loads((root / "_manifests" / "latest.json").read_text())["run_id"] == "b"


def test_local_rerun_of_identical_gold_keeps_every_file(layout: Layout) -> None:
    """Same gold, same names, same bytes: nothing is copied again and only run_id/published_at change."""
    make_gold(layout.gold)
    first = publish_gold(DAY, marts=MARTS, run_id="a")
    root = layout.published / "gold"
    before = published_files(root)
    inodes = {p: p.stat().st_ino for p in root.rglob("*.parquet")}

    second = publish_gold(DAY, marts=MARTS, run_id="b")

    after = published_files(root)
    assert {k: v for k, v in after.items() if "_manifests" not in k} == {
        k: v for k, v in before.items() if "_manifests" not in k
    }
    assert {p: p.stat().st_ino for p in root.rglob("*.parquet")} == inodes, "no file was rewritten"
    volatile = {"run_id", "published_at", "target", "manifest_uri"}
    assert {k: v for k, v in first.items() if k not in volatile} == {
        k: v for k, v in second.items() if k not in volatile
    }


def test_interrupted_local_publish_keeps_the_previous_manifest_whole(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish that dies after some files are copied: latest.json still names the previous files, all intact;
    the rerun finishes and leaves exactly one copy of each file and no temp file."""
    files = make_gold(layout.gold)
    publish_gold(DAY, marts=MARTS, run_id="old")
    root = layout.published / "gold"
    for rel in files:
        _write(layout.gold / rel.split("/")[0], 6 if "fct" in rel else 2, dates=() if "fct" in rel else (DAY,))

    copied: list[str] = []

    def crash_on_second(name: str, where: str = "") -> None:
        if name == "publish.upload":
            copied.append(where)
            if len(copied) == 2:
                raise KeyboardInterrupt("killed mid publish")

    monkeypatch.setattr(publish, "failpoint", crash_on_second)
    stale_tmp = root / "fct_device_daily" / f".tmp-fct_device_daily-0123456789abcdef.parquet.{'f' * 32}"
    stale_tmp.write_bytes(b"PAR1 half a file")  # what a copy killed mid-write leaves
    with pytest.raises(KeyboardInterrupt):
        publish_gold(DAY, marts=MARTS, run_id="new")

    latest = json.loads((root / "_manifests" / "latest.json").read_text())
    assert latest["run_id"] == "old"
    for obj in latest["objects"]:
        path = layout.published / obj["key"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == obj["sha256"], obj["key"]
    assert all((layout.published / key).exists() for key in copied), "the new files are there, unlisted"

    monkeypatch.setattr(publish, "failpoint", failpoint)
    result = publish_gold(DAY, marts=MARTS, run_id="new")
    on_disk = {p.relative_to(layout.published).as_posix() for p in root.rglob("*") if p.is_file()}
    listed = {o["key"] for o in result["objects"]}
    assert on_disk == listed | {"gold/_manifests/date=2026-11-01/manifest.json", "gold/_manifests/latest.json"}
    for rel, src in files.items():
        assert (root / published_rel(rel, src)).read_bytes() == src.read_bytes()


@pytest.mark.parametrize("bad", ["../x", "/abs", "a//b", "a/", "a b", "_manifests", "a/../b", ""])
def test_bad_prefix_is_rejected_naming_it(layout: Layout, bad: str) -> None:
    make_gold(layout.gold)
    with pytest.raises(ConfigError) as excinfo:
        publish_gold(DAY, marts=MARTS, prefix=bad)
    assert repr(bad) in str(excinfo.value)
    assert not layout.published.exists()


def test_bad_prefix_from_env_is_rejected(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    make_gold(layout.gold)
    monkeypatch.setenv("LAKEHOUSE_S3_PREFIX", "../x")
    with pytest.raises(ConfigError, match=r"LAKEHOUSE_S3_PREFIX.*'\.\./x'"):
        publish_gold(DAY)


@pytest.mark.parametrize("good", ["gold", "exports/gold", "a.b/c-d/e_f/v=1"])
def test_good_prefixes(good: str) -> None:
    assert validate_prefix(good) == good


@pytest.mark.parametrize("bad", ["ab", "Upper", "a..b", "192.168.1.1", "-abc", "abc-", "a_b", "x" * 64])
def test_bad_bucket_is_rejected(bad: str) -> None:
    with pytest.raises(ConfigError, match="LAKEHOUSE_S3_BUCKET"):
        validate_bucket(bad)


def test_missing_bucket_with_connection_names_the_env_var(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    make_gold(layout.gold)
    conn = {"conn_type": "aws", "extra": {"endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1"}}
    monkeypatch.setenv("AIRFLOW_CONN_LAKEHOUSE_S3", json.dumps(conn))
    with pytest.raises(ConfigError, match="LAKEHOUSE_S3_BUCKET"):
        publish_gold(DAY)


def test_empty_gold_is_a_clear_error(layout: Layout) -> None:
    with pytest.raises(PublishError, match=r"nothing to publish: gold mart\(s\) dim_devices .*no Delta table"):
        publish_gold(DAY, marts=["dim_devices"])
    (layout.gold / "dim_devices").mkdir(parents=True)  # a folder is not a table
    with pytest.raises(PublishError, match=r"dim_devices listed for publishing have no Delta table"):
        publish_gold(DAY, marts=["dim_devices"])
    assert not layout.published.exists()


def test_the_default_list_is_the_appmetrica_marts_and_other_marts_stay(layout: Layout) -> None:
    """By default exactly lakehouse.assets.GOLD_MART_NAMES are published; a declared source's mart is not."""
    from lakehouse.assets import GOLD_MART_NAMES

    assert publish.appmetrica_marts() == GOLD_MART_NAMES
    for mart in GOLD_MART_NAMES:
        _write(layout.gold / mart, 2)
    vacancies = _write(layout.gold / "vacancy_skills_daily", 3)
    root = layout.published / "gold"
    other = root / "vacancy_skills_daily" / "published-by-its-own-dag.parquet"  # another mart's object
    other.parent.mkdir(parents=True)
    other.write_bytes(b"keep me")

    manifest = publish_gold(DAY, run_id="a")

    assert sorted(manifest["totals"]["marts"]) == sorted(GOLD_MART_NAMES)
    assert {o["mart"] for o in manifest["objects"]} == set(GOLD_MART_NAMES)
    assert other.read_bytes() == b"keep me" and sorted(p.name for p in other.parent.iterdir()) == [other.name]
    assert not vacancies.exists() and (layout.gold / "vacancy_skills_daily" / "_delta_log").is_dir()


def test_a_missing_listed_mart_is_refused_before_anything_is_written(layout: Layout) -> None:
    from lakehouse.assets import GOLD_MART_NAMES

    for mart in GOLD_MART_NAMES[1:]:
        _write(layout.gold / mart, 2)
    _write(layout.gold / "vacancy_skills_daily", 3)
    with pytest.raises(PublishError, match=rf"gold mart\(s\) {GOLD_MART_NAMES[0]} listed for publishing have no"):
        publish_gold(DAY)
    assert not layout.published.exists()


def test_another_list_publishes_only_its_marts_without_the_registry(layout: Layout) -> None:
    """A declared source's marts go to a prefix of their own; the AppMetrica publish there is untouched."""
    make_gold(layout.gold)
    (layout.gold / "_registry").mkdir()
    (layout.gold / "_registry" / "feature_registry.json").write_text('{"features": []}')
    src = _write(layout.gold / "vacancy_skills_daily", 3)
    appmetrica = publish_gold(DAY, marts=MARTS, run_id="app")
    before = published_files(layout.published / "gold")

    result = publish_gold(DAY, marts=["vacancy_skills_daily"], prefix="sources/vacancies", run_id="vac")

    assert [o["key"] for o in result["objects"]] == [
        "sources/vacancies/" + published_rel("vacancy_skills_daily/vacancy_skills_daily.parquet", src)
    ]
    assert "registry" not in result and "registry" in appmetrica
    assert published_files(layout.published / "gold") == before


@pytest.mark.parametrize(
    ("marts", "message"),
    [([], "is empty"), ("dim_devices", "not the string"), (["a", "a"], "a more than once"), (["../x"], "mart")],
)
def test_a_bad_mart_list_is_a_config_error(layout: Layout, marts: Any, message: str) -> None:
    make_gold(layout.gold)
    with pytest.raises(ConfigError, match=message):
        publish_gold(DAY, marts=marts)


def test_find_connection_not_found_is_none(layout: Layout) -> None:
    assert find_connection("lakehouse_s3") is None


def test_find_connection_other_errors_propagate(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(conn_id: str) -> Any:
        raise PermissionError("secrets backend denied access")

    monkeypatch.setattr(BaseHook, "get_connection", boom)
    with pytest.raises(PermissionError):
        find_connection("lakehouse_s3")


def test_multipart_etag_matches_part_md5s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The expected ETag of a file at/above the threshold is md5(concat(part md5s))-N with the chunk size."""
    data = bytes(range(256)) * (4096 * 21)  # 21 MiB + change: 3 parts of 8 MiB
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    sha, md5, etag = publish._digest(path, len(data))
    chunk = publish.MULTIPART_CHUNKSIZE
    parts = [hashlib.md5(data[i : i + chunk]).digest() for i in range(0, len(data), chunk)]  # noqa: S324
    assert etag == hashlib.md5(b"".join(parts)).hexdigest() + f"-{len(parts)}"  # noqa: S324
    assert len(parts) == 3
    assert sha == hashlib.sha256(data).hexdigest() and md5 == hashlib.md5(data).hexdigest()  # noqa: S324
    small = tmp_path / "s.bin"
    small.write_bytes(b"abc")
    assert publish._digest(small, 3)[2] is None
