"""The Asset names in lakehouse/assets.py match the silver schemas and the dbt gold marts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lakehouse.assets import GOLD_ASSETS, GOLD_MART_NAMES, SILVER_ASSETS, SILVER_TABLE_NAMES, lake_asset

REPO = Path(__file__).resolve().parents[2]


def test_silver_assets_are_the_silver_tables():
    from transforms.silver.schemas import SILVER_TABLES

    assert set(SILVER_TABLE_NAMES) == set(SILVER_TABLES)
    assert [a.name for a in SILVER_ASSETS] == [f"silver.{t}" for t in SILVER_TABLE_NAMES]


def test_gold_assets_are_the_marts_dbt_publishes():
    marts = set()
    # The AppMetrica DAG's marts; a declared source's marts (models/marts/vacancies/) belong to its own DAG.
    for path in (REPO / "dbt_project" / "models").rglob("*.yml"):
        if "vacancies" in path.parts:
            continue
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []):
            meta = (model.get("config") or {}).get("meta") or model.get("meta") or {}
            if "gold" in meta:
                marts.add(model["name"])
    assert marts == set(GOLD_MART_NAMES)
    assert {a.uri for a in GOLD_ASSETS} == {f"x-lakehouse://gold/{m}" for m in GOLD_MART_NAMES}


def test_uris_are_stable_and_layers_checked():
    asset = lake_asset("gold", "dim_devices")
    assert (asset.name, asset.uri) == ("gold.dim_devices", "x-lakehouse://gold/dim_devices")
    assert asset.extra == {"layer": "gold", "path": "gold/dim_devices/"}
    with pytest.raises(ValueError, match="layer"):
        lake_asset("bronze", "events")
