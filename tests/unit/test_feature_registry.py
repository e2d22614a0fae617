"""The feature registry built from a (synthetic) dbt manifest: completeness checks and content versions."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from transforms import gold
from transforms.feature_registry import (
    RegistryError,
    build_registry,
    read_registry,
    registry_paths,
    write_registry,
)


def _column(name: str, role: str = "feature", **meta: Any) -> dict[str, Any]:
    feature = {"role": role, "entity": "device", "value_type": "int64", "owner": "team", "tags": ["t"], "window": "7d"}
    feature.update(meta)
    return {
        "name": name,
        "description": f"{name} described",
        "data_type": "bigint",
        "config": {"meta": {"feature": feature}},
    }


def manifest() -> dict[str, Any]:
    features_meta = {"grain": ["device", "day"], "entity": "device", "entity_key": "device", "timestamp": "day"}
    return {
        "nodes": {
            "model.p.int_base": {
                "resource_type": "model",
                "name": "int_base",
                "config": {"meta": {}, "materialized": "table"},
                "checksum": {"checksum": "base-v1"},
                "depends_on": {"nodes": []},
                "columns": {},
            },
            "model.p.mart_a": {
                "resource_type": "model",
                "name": "mart_a",
                "description": "One row per device per day.",
                "config": {"meta": {"gold": {"order_by": ["device"]}, "features": features_meta}},
                "compiled_code": "select device, day, x, y from base",
                "checksum": {"checksum": "a-v1"},
                "depends_on": {"nodes": ["model.p.int_base"]},
                "columns": {
                    "device": _column("device", role="entity_key"),
                    "day": _column("day", role="timestamp", value_type="date", window="none"),
                    "x": _column("x"),
                    "y": _column("y", window="28d"),
                },
            },
            "test.p.something": {"resource_type": "test", "name": "something", "config": {"meta": {}}},
        }
    }


def test_registry_has_one_entry_per_column_with_its_metadata() -> None:
    registry = build_registry(manifest())
    assert [f["name"] for f in registry["features"]] == ["mart_a.device", "mart_a.day", "mart_a.x", "mart_a.y"]
    y = registry["features"][3]
    assert y["window"] == "28d" and y["tags"] == ["t"] and y["owner"] == "team" and y["entity"] == "device"
    assert y["description"] == "y described" and y["data_type"] == "bigint" and y["grain"] == ["device", "day"]
    assert y["timestamp_column"] == "day" and y["entity_key"] == "device"
    assert registry["models"]["mart_a"]["columns"] == ["device", "day", "x", "y"]
    assert len(registry["feature_set_version"]) == 16


def test_same_manifest_same_versions() -> None:
    assert build_registry(manifest()) == build_registry(manifest())


@pytest.mark.parametrize(
    ("change", "changed"),
    [
        (lambda m: m["nodes"]["model.p.mart_a"].__setitem__("compiled_code", "select 2"), {"device", "day", "x", "y"}),
        (
            lambda m: m["nodes"]["model.p.int_base"]["checksum"].__setitem__("checksum", "base-v2"),
            {"device", "day", "x", "y"},
        ),
        (
            lambda m: m["nodes"]["model.p.mart_a"]["columns"]["x"]["config"]["meta"]["feature"].__setitem__(
                "window", "1d"
            ),
            {"x"},
        ),
        (lambda m: m["nodes"]["model.p.mart_a"]["columns"]["y"].__setitem__("description", "new words"), {"y"}),
        (
            lambda m: m["nodes"]["model.p.mart_a"]["columns"]["y"]["config"]["meta"]["feature"]["tags"].append("u"),
            {"y"},
        ),
    ],
    ids=["compiled-sql", "upstream-sql", "meta-window", "description", "meta-tags"],
)
def test_a_change_of_sql_or_meta_changes_exactly_the_affected_versions(change: Any, changed: set[str]) -> None:
    before = build_registry(manifest())
    edited = manifest()
    change(edited)
    after = build_registry(edited)
    assert after["feature_set_version"] != before["feature_set_version"]
    differs = {
        b["column"] for b, a in zip(before["features"], after["features"], strict=True) if a["version"] != b["version"]
    }
    assert differs == changed


def test_incremental_models_hash_their_raw_sql() -> None:
    m = manifest()
    node = m["nodes"]["model.p.mart_a"]
    node["config"]["materialized"] = "incremental"
    node["raw_code"] = "select ... {% if is_incremental() %} where day > max(day) {% endif %}"
    first = build_registry(m)
    node["compiled_code"] = "a different compiled branch"
    assert build_registry(m)["feature_set_version"] == first["feature_set_version"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda m: m["nodes"]["model.p.mart_a"]["columns"]["x"]["config"]["meta"].pop("feature"),
            r"mart_a\.x: config\.meta\.feature",
        ),
        (
            lambda m: m["nodes"]["model.p.mart_a"]["columns"]["y"]["config"]["meta"]["feature"].pop("owner"),
            r"mart_a\.y: .* lacks owner",
        ),
        (
            lambda m: m["nodes"]["model.p.mart_a"]["columns"]["y"]["config"]["meta"]["feature"].update(role="magic"),
            r"role 'magic'",
        ),
        (
            lambda m: m["nodes"]["model.p.mart_a"]["columns"]["y"]["config"]["meta"]["feature"].update(tags="a,b"),
            r"tags must be a list",
        ),
        (
            lambda m: m["nodes"]["model.p.mart_a"]["columns"]["y"].update(description=""),
            r"mart_a\.y: has no description",
        ),
        (
            lambda m: m["nodes"]["model.p.mart_a"]["config"]["meta"].pop("features"),
            r"model mart_a: config\.meta\.features",
        ),
        (lambda m: m["nodes"]["model.p.mart_a"]["config"]["meta"]["features"].update(grain=["nope"]), r"grain column"),
        (lambda m: m["nodes"]["model.p.mart_a"].pop("compiled_code"), r"no compiled SQL"),
    ],
    ids=["no-meta", "no-owner", "bad-role", "bad-tags", "no-description", "no-model-meta", "bad-grain", "not-compiled"],
)
def test_incomplete_metadata_is_an_error_naming_the_column(edit: Any, message: str) -> None:
    m = manifest()
    edit(m)
    with pytest.raises(RegistryError, match=message):
        build_registry(m)


def test_gold_build_turns_a_registry_problem_into_a_build_error() -> None:
    m = manifest()
    m["nodes"]["model.p.mart_a"]["columns"]["x"]["config"]["meta"].pop("feature")
    with pytest.raises(gold.GoldBuildError, match=r"mart_a\.x.*gold left unchanged"):
        gold._feature_registry(m)
    partial = copy.deepcopy(manifest())
    partial["nodes"]["model.p.mart_a"].pop("compiled_code")
    assert gold._feature_registry(partial) is None  # a --select build leaves the registry alone


def test_written_files_hold_the_same_entries(tmp_path: Path) -> None:
    registry = build_registry(manifest())
    info = write_registry(tmp_path / "gold", registry)
    paths = registry_paths(tmp_path / "gold")
    assert info["features"] == 4 and read_registry(paths["json"]) == registry
    table = pq.read_table(paths["parquet"])
    assert table.column("name").to_pylist() == [f["name"] for f in registry["features"]]
    assert set(table.column("feature_set_version").to_pylist()) == {registry["feature_set_version"]}
    assert table.column("tags").to_pylist()[3] == ["t"]
    first = paths["json"].read_bytes(), paths["parquet"].read_bytes()
    write_registry(tmp_path / "gold", registry)
    assert (paths["json"].read_bytes(), paths["parquet"].read_bytes()) == first
    with pytest.raises(RegistryError, match="no feature registry"):
        read_registry(tmp_path / "missing.json")


def test_a_declared_source_mart_is_not_an_appmetrica_feature_mart():
    from transforms.feature_registry import gold_models

    manifest = {
        "nodes": {
            "model.p.fct": {
                "resource_type": "model",
                "name": "fct",
                "tags": ["gold"],
                "config": {"meta": {"gold": {}}},
            },
            "model.p.vac": {
                "resource_type": "model",
                "name": "vac",
                "tags": ["declared_source", "source_vacancies"],
                "config": {"meta": {"gold": {}}},
            },
        }
    }
    assert list(gold_models(manifest)) == ["fct"]
