"""The GX suites and the silver code state the same allowed values: one cannot drift from the other."""

from __future__ import annotations

import json

import pytest

from transforms.quality.gx_gate import SUITES_DIR
from transforms.silver.schemas import ENUM_VALUES, SILVER_TABLES


@pytest.mark.parametrize("table", SILVER_TABLES)
def test_value_sets_in_the_suite_equal_the_silver_enums(table):
    suite = json.loads((SUITES_DIR / f"{table}.json").read_text())
    checked = {
        e["kwargs"]["column"]: sorted(e["kwargs"]["value_set"])
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] in ENUM_VALUES
    }
    for column, values in checked.items():
        assert values == sorted(ENUM_VALUES[column]), f"{table}.{column}"


def test_every_enum_column_is_checked_somewhere():
    checked = set()
    for table in SILVER_TABLES:
        suite = json.loads((SUITES_DIR / f"{table}.json").read_text())
        checked |= {
            e["kwargs"]["column"] for e in suite["expectations"] if e["type"] == "expect_column_values_to_be_in_set"
        }
    assert set(ENUM_VALUES) <= checked


@pytest.mark.parametrize("table", SILVER_TABLES)
def test_the_suite_states_the_silver_columns_key_and_grain(table):
    suite = json.loads((SUITES_DIR / f"{table}.json").read_text())
    silver = SILVER_TABLES[table]
    columns = next(e for e in suite["expectations"] if e["type"] == "expect_table_columns_to_match_set")
    assert sorted(columns["kwargs"]["column_set"]) == sorted(silver.schema.names)
    assert tuple(suite["meta"]["key"]) == silver.key
    assert suite["meta"]["grain"] == silver.grain
    compound = [e["kwargs"]["column_list"] for e in suite["expectations"]
                if e["type"] == "expect_compound_columns_to_be_unique"]  # fmt: skip
    assert [tuple(c) for c in compound] == ([silver.key] if len(silver.key) > 1 else [])
