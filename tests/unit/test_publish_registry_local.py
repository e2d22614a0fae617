"""The feature registry goes out with the marts in the local publish fallback too."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

# Imported at collection: importing Airflow reconfigures logging.
from airflow.sdk import BaseHook  # noqa: F401

from lakehouse.delta import locate, replace_table
from lakehouse.publish import PublishError, appmetrica_marts, publish_gold
from lakehouse.settings import Layout


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    for name in ("AIRFLOW_CONN_LAKEHOUSE_S3", "LAKEHOUSE_S3_BUCKET", "LAKEHOUSE_S3_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LAKEHOUSE_STORAGE_URL", raising=False)
    layout = Layout.from_env()
    for name in appmetrica_marts():  # what publish_gold publishes by default, with the registry
        replace_table(locate(f"gold/{name}", layout), pa.table({"n": [1, 2]}))
    return layout


def test_registry_files_are_published_and_listed(layout: Layout) -> None:
    registry = layout.gold / "_registry"
    registry.mkdir()
    (registry / "feature_registry.json").write_text(json.dumps({"feature_set_version": "v", "features": [{}, {}]}))
    pq.write_table(pa.table({"name": ["a", "b"]}), registry / "feature_registry.parquet")
    (registry / ".tmp-feature_registry.json.x").write_text("partial")
    manifest = publish_gold(dt.date(2026, 11, 1))
    root = layout.published / "gold"
    keys = [e["key"] for e in manifest["registry"]]
    assert [re.sub(r"-[0-9a-f]{16}\.", ".", k) for k in keys] == [
        "gold/_registry/feature_registry.json",
        "gold/_registry/feature_registry.parquet",
    ]  # names carry the content hash, like the marts' objects
    assert [e["rows"] for e in manifest["registry"]] == [2, 2]
    published_json = layout.published / keys[0]
    assert published_json.read_bytes() == (registry / "feature_registry.json").read_bytes()
    assert sorted(p.name for p in (root / "_registry").iterdir()) == sorted(k.rsplit("/", 1)[1] for k in keys)
    assert [o["mart"] for o in manifest["objects"]] == sorted(appmetrica_marts())
    written = json.loads((root / "_manifests" / "date=2026-11-01" / "manifest.json").read_text())
    assert written["registry"] == manifest["registry"]


def test_without_registry_the_manifest_has_no_registry_section(layout: Layout) -> None:
    assert "registry" not in publish_gold(dt.date(2026, 11, 1))


def test_a_broken_registry_file_is_an_error(layout: Layout) -> None:
    (layout.gold / "_registry").mkdir()
    (layout.gold / "_registry" / "feature_registry.json").write_text("{not json")
    with pytest.raises(PublishError, match=r"feature_registry\.json is not a registry JSON file"):
        publish_gold(dt.date(2026, 11, 1))
