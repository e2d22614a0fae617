"""Declared sources reach dbt: the generated sources YAML is the checked-in one, and selectors keep builds apart."""

from __future__ import annotations

import yaml

from ingest.sources.config import load_declarations
from lakehouse.settings import REPO_ROOT
from transforms.sources.dbt import dbt_source_name, dbt_sources_path, dbt_sources_yaml

SELECTORS = REPO_ROOT / "dbt_project" / "selectors.yml"


def test_checked_in_dbt_sources_match_the_declarations():
    for spec in load_declarations().values():
        if spec.dbt_selector is None:
            continue
        path = dbt_sources_path(spec)
        assert path.exists(), f"run: lakehouse sources dbt-sources {spec.name} --write"
        assert path.read_text(encoding="utf-8") == dbt_sources_yaml(spec), (
            f"{path.relative_to(REPO_ROOT)} is stale: run `lakehouse sources dbt-sources {spec.name} --write`"
        )


def test_generated_yaml_reads_each_resource_from_its_silver_folder():
    spec = load_declarations()["vacancies"]
    doc = yaml.safe_load(dbt_sources_yaml(spec))
    [source] = doc["sources"]
    assert source["name"] == dbt_source_name(spec) == "vacancies_silver"
    assert source["config"]["tags"] == ["declared_source", "source_vacancies"]
    [table] = source["tables"]
    location = table["config"]["meta"]["external_location"]
    assert "/silver/vacancies__vacancies/date=*/*.parquet" in location
    columns = {c["name"]: c["data_type"] for c in table["columns"]}
    assert columns["key_skills"] == "varchar[]" and columns["salary_from"] == "bigint"
    assert list(columns)[-3:] == ["export_date", "bronze_file", "bronze_row"]


def test_each_declared_selector_exists_and_the_appmetrica_gold_selector_leaves_sources_out():
    selectors = {s["name"]: s for s in yaml.safe_load(SELECTORS.read_text())["selectors"]}
    for spec in load_declarations().values():
        if spec.dbt_selector is not None:
            definition = selectors[spec.dbt_selector]["definition"]
            assert definition["method"] == "tag" and definition["value"] == f"source_{spec.name}"
    gold = selectors["gold"]["definition"]["union"]
    assert {"exclude": [{"method": "tag", "value": "declared_source"}]} in gold
