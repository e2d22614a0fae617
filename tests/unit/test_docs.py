"""refresh_dbt_docs (lakehouse/docs.py): the site is swapped in whole, with only the docs files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import transforms.gold
from lakehouse.docs import DBT_DOCS_FILES, refresh_dbt_docs
from lakehouse.settings import Layout
from transforms.gold import GoldBuildError

MANIFEST = {
    "nodes": {
        "model.p.fct_device_daily": {"resource_type": "model", "name": "fct_device_daily",
                                     "config": {"meta": {"gold": {"order_by": ["x"]}}}},
        "model.p.stg_events": {"resource_type": "model", "name": "stg_events", "config": {"meta": {}}},
        "test.p.unique_x": {"resource_type": "test", "name": "unique_x"},
    }
}  # fmt: skip


def fake_dbt(target_name: str = "index"):
    def generate_docs(layout: Layout, target: Path | None = None) -> Path:
        assert target is not None and not target.is_relative_to(layout.root / "docs"), "dbt must not write the site"
        target.mkdir(parents=True, exist_ok=True)
        (target / "index.html").write_text(f"<html>{target_name}</html>")
        (target / "manifest.json").write_text(json.dumps(MANIFEST))
        (target / "catalog.json").write_text(json.dumps({"nodes": {"model.p.fct_device_daily": {}}}))
        (target / "run_results.json").write_text("{}")
        (target / "partial_parse.msgpack").write_bytes(b"\x00")
        return target

    return generate_docs


def test_site_holds_only_the_docs_files_and_summary_names_the_gold_marts(tmp_path, monkeypatch):
    monkeypatch.setattr(transforms.gold, "generate_docs", fake_dbt())
    layout = Layout(tmp_path)
    summary = refresh_dbt_docs(layout)
    site = tmp_path / "docs" / "dbt"
    assert summary == {"path": str(site), "models": 2, "gold_marts": ["fct_device_daily"], "catalog_tables": 1}
    assert {p.name for p in site.iterdir()} == {"index.html", "manifest.json", "catalog.json"}
    assert set(DBT_DOCS_FILES) >= {p.name for p in site.iterdir()}
    assert not [p for p in (tmp_path / "docs").iterdir() if p.name.startswith(".")], "staging left behind"


def test_a_new_site_replaces_the_old_one_and_a_failed_one_keeps_it(tmp_path, monkeypatch):
    layout = Layout(tmp_path)
    monkeypatch.setattr(transforms.gold, "generate_docs", fake_dbt("first"))
    refresh_dbt_docs(layout)
    site = tmp_path / "docs" / "dbt"
    (site / "stale.html").write_text("old")
    monkeypatch.setattr(transforms.gold, "generate_docs", fake_dbt("second"))
    refresh_dbt_docs(layout)
    assert (site / "index.html").read_text() == "<html>second</html>" and not (site / "stale.html").exists()

    def failing(layout: Layout, target: Path | None = None) -> Path:
        raise GoldBuildError("dbt docs generate exited with status 2")

    monkeypatch.setattr(transforms.gold, "generate_docs", failing)
    with pytest.raises(GoldBuildError, match="status 2"):
        refresh_dbt_docs(layout)
    assert (site / "index.html").read_text() == "<html>second</html>"
