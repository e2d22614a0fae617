"""Source declarations: the repo's file is valid, and every mistake names the entry and the field."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from ingest.sources.config import SourceConfigError, get_source, load_declarations, parse_declarations
from lakehouse.settings import ConfigError


def rest_doc() -> dict[str, Any]:
    return {
        "version": 1,
        "sources": {
            "shop": {
                "kind": "rest_api",
                "connection": "shop_api",
                "auth": {"type": "bearer"},
                "resources": {
                    "orders": {
                        "path": "/v1/orders",
                        "records_path": "data.items",
                        "pagination": {"type": "cursor", "cursor_param": "after", "cursor_path": "data.next"},
                        "incremental": {"cursor_field": "updated_at", "start_param": "since"},
                        "write_disposition": "merge",
                        "primary_key": ["order_id"],
                        "fields": {
                            "order_id": {"type": "integer", "path": "id"},
                            "total": "number",
                            "tags": {"type": "array[string]", "path": "tags[].name"},
                            "updated_at": {"type": "timestamp", "required": True},
                        },
                    }
                },
            }
        },
    }


def csv_doc() -> dict[str, Any]:
    return {
        "sources": {
            "rates": {
                "kind": "csv_drop",
                "resources": {
                    "daily": {
                        "file_pattern": "rates*.csv",
                        "write_disposition": "merge",
                        "primary_key": ["day", "ccy"],
                        "fields": {"day": "date", "ccy": "string", "rate": "number"},
                    }
                },
            }
        }
    }


def test_the_repos_sources_file_is_valid():
    sources = load_declarations()
    vacancies = sources["vacancies"]
    assert vacancies.kind == "rest_api" and vacancies.dag_id == "source_vacancies"
    res = vacancies.resources["vacancies"]
    assert res.primary_key == ("vacancy_id",) and res.write_disposition == "merge"
    assert res.incremental is not None and res.incremental.cursor_field == "updated_at"
    assert res.field("key_skills").type == "array[string]" and res.field("key_skills").path == "key_skills[].name"
    assert res.field("vacancy_id").required  # key fields are always required
    assert sources["exchange_rates"].kind == "csv_drop"


def test_a_valid_rest_declaration_parses_with_defaults():
    spec = parse_declarations(rest_doc())["shop"]
    res = spec.resources["orders"]
    assert spec.timezone == "UTC" and spec.schedule == "0 1 * * *" and spec.start_date == dt.date(2026, 1, 1)
    assert res.pagination.type == "cursor" and res.pagination.cursor_param == "after"
    assert res.incremental.end_param is None  # "updated after" style
    assert res.field("total").path == "total" and res.field("total").type == "number"
    assert spec.table("orders") == "shop__orders"
    start, end = spec.window(dt.date(2026, 3, 29))
    assert (end - start) == dt.timedelta(days=1)


def test_window_follows_the_sources_time_zone_across_dst():
    doc = rest_doc()
    doc["sources"]["shop"]["timezone"] = "Europe/Berlin"
    spec = parse_declarations(doc)["shop"]
    start, end = spec.window(dt.date(2026, 3, 29))  # 23-hour day in Berlin
    assert start.isoformat() == "2026-03-29T00:00:00+01:00" and end.isoformat() == "2026-03-30T00:00:00+02:00"


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    keys = path.split(".")
    node = doc
    for key in keys[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return doc


_DELETE = object()
R = "sources.shop.resources.orders"

REST_MISTAKES = [
    ("sources.shop.kind", "rest", "sources.shop.kind: must be one of rest_api, csv_drop; got 'rest'"),
    ("sources.shop.connection", _DELETE, "sources.shop.connection: is required for auth type bearer"),
    ("sources.shop.auth", {"type": "header"}, "sources.shop.auth.name: is required for auth type header"),
    ("sources.shop.auth", {"type": "oauth"}, "sources.shop.auth.type: must be one of bearer, header"),
    ("sources.shop.base_url", "ftp://x", "sources.shop.base_url: must be an http(s):// URL"),
    ("sources.shop.base_url", "https://u:p@x.io", "sources.shop.base_url: must not carry credentials"),
    ("sources.shop.timezone", "Mars/Base", "sources.shop.timezone: 'Mars/Base' is not an IANA time zone"),
    ("sources.shop.schedule", "every day", "sources.shop.schedule: must be a 5-field cron"),
    ("sources.shop.start_date", "01.01.2026", "sources.shop.start_date: must be a date YYYY-MM-DD"),
    ("sources.shop.rate_limit", {"requests_per_second": 0}, "sources.shop.rate_limit.requests_per_second: must be"),
    ("sources.shop.retry", {"max_attempts": 0}, "sources.shop.retry.max_attempts: must be an integer >= 1"),
    ("sources.shop.resourcez", {}, "sources.shop: unknown key 'resourcez'"),
    (f"{R}.path", "v1/orders", f"{R}.path: must be a path starting with '/'"),
    (f"{R}.path", _DELETE, f"{R}.path: is required"),
    (f"{R}.pagination", {"type": "pages"}, f"{R}.pagination.type: must be one of page, offset, cursor"),
    (f"{R}.pagination", {"type": "cursor"}, f"{R}.pagination.cursor_path: is required for cursor pagination"),
    (f"{R}.pagination", {"type": "offset"}, f"{R}.pagination.limit: is required for offset pagination"),
    (f"{R}.pagination", {"type": "page", "size_param": "n"}, f"{R}.pagination.page_size: is required"),
    (f"{R}.pagination", {"type": "page", "cursor_path": "x"}, f"{R}.pagination: unknown key 'cursor_path'"),
    (f"{R}.pagination", {"type": "page", "page_size": 0}, f"{R}.pagination.page_size: must be an integer >= 1"),
    (f"{R}.records_path", "data..items", f"{R}.records_path: 'data..items' is not a dotted path"),
    (f"{R}.incremental", {"cursor_field": "nope", "start_param": "s"}, f"{R}.incremental.cursor_field: 'nope' is"),
    (f"{R}.incremental", {"cursor_field": "total", "start_param": "s"}, f"{R}.incremental.cursor_field: 'total' must"),
    (f"{R}.incremental", {"cursor_field": "updated_at"}, f"{R}.incremental.start_param: is required"),
    (f"{R}.write_disposition", "upsert", f"{R}.write_disposition: must be one of merge, append, replace"),
    (f"{R}.write_disposition", "replace", f"{R}.write_disposition: replace needs a full snapshot"),
    (f"{R}.primary_key", [], f"{R}.primary_key: is required with write_disposition merge"),
    (f"{R}.primary_key", ["id"], f"{R}.primary_key: 'id' is not a declared field"),
    (f"{R}.primary_key", ["tags"], f"{R}.primary_key: 'tags' is a array[string] field"),
    (f"{R}.fields.total", {"type": "float"}, f"{R}.fields.total.type: must be one of string, integer"),
    (f"{R}.fields.total", {"type": "number", "path": "a.b[].c"}, f"{R}.fields.total.path: 'a.b[].c' maps over a list"),
    (f"{R}.fields.total", {"type": "number", "required": "yes"}, f"{R}.fields.total.required: must be true or false"),
    (f"{R}.fields.export_date", "date", f"{R}.fields.export_date: 'export_date' is a lineage column"),
    (f"{R}.fields.Bad-Name", "string", f"{R}.fields.Bad-Name: field names must match"),
    (f"{R}.fields", {}, f"{R}.fields: declares no field"),
]


@pytest.mark.parametrize(("path", "value", "message"), REST_MISTAKES, ids=[m[2][:60] for m in REST_MISTAKES])
def test_rest_mistakes_name_the_entry_and_field(path, value, message):
    with pytest.raises(SourceConfigError) as info:
        parse_declarations(_set(rest_doc(), path, value), "sources.yml")
    assert str(info.value).startswith("sources.yml: ")
    assert message in str(info.value)
    assert isinstance(info.value, ConfigError)  # Airflow tasks fail fast on ConfigError


C = "sources.rates.resources.daily"
CSV_MISTAKES = [
    (f"{C}.fields.tags", "array[string]", f"{C}.fields.tags.type: array[string] cannot come from a CSV column"),
    (f"{C}.file_pattern", "in/*.csv", f"{C}.file_pattern: must be a file name pattern"),
    (f"{C}.delimiter", ";;", f"{C}.delimiter: must be a single character"),
    (f"{C}.encoding", "klingon-8", f"{C}.encoding: 'klingon-8' is not a known text encoding"),
    (f"{C}.path", "/x", f"{C}: unknown key 'path'"),
    ("sources.rates.connection", "x", "sources.rates.connection: is only used with an S3 inbox"),
    ("sources.rates.inbox", "/srv/drops/", "sources.rates.inbox: must be s3://<bucket>/<prefix>/"),
    ("sources.rates.inbox", "s3://Drops_Bucket/rates/", "'Drops_Bucket' is not a valid bucket name"),
    ("sources.rates.inbox", "s3://drops/", "the prefix must be non-empty"),
    ("sources.rates.inbox", "s3://drops/a/../b/", "without '//', '.' or '..' segments"),
    ("sources.rates.inbox", "s3://drops/rates/?x=1", "no query, fragment or control character"),
]


@pytest.mark.parametrize(("path", "value", "message"), CSV_MISTAKES, ids=[m[2][:60] for m in CSV_MISTAKES])
def test_csv_mistakes_name_the_entry_and_field(path, value, message):
    with pytest.raises(SourceConfigError, match=r"^sources\.yml: ") as info:
        parse_declarations(_set(csv_doc(), path, value), "sources.yml")
    assert message in str(info.value)


def test_source_names_are_checked_and_reserved_ones_refused():
    doc = csv_doc()
    for bad, message in (("Rates", "source names must match"), ("appmetrica", "'appmetrica' is reserved")):
        with pytest.raises(SourceConfigError, match=message):
            parse_declarations({"sources": {bad: doc["sources"]["rates"]}})


def test_file_level_errors(tmp_path, monkeypatch):
    bad_yaml = tmp_path / "broken.yml"
    bad_yaml.write_text("sources:\n  x: [unclosed\n")
    with pytest.raises(SourceConfigError, match=r"broken.yml: not valid YAML at line \d+"):
        load_declarations(bad_yaml)
    with pytest.raises(SourceConfigError, match="cannot read the sources file"):
        load_declarations(tmp_path / "missing.yml")
    with pytest.raises(SourceConfigError, match=r"version: only version 1"):
        parse_declarations({"version": 2, "sources": {}})
    good = tmp_path / "mine.yml"
    import yaml

    good.write_text(yaml.safe_dump(csv_doc()))
    monkeypatch.setenv("LAKEHOUSE_SOURCES_FILE", str(good))
    assert list(load_declarations()) == ["rates"]
    with pytest.raises(SourceConfigError, match=r"no source 'nope' is declared in mine\.yml; declared: rates"):
        get_source("nope")


def test_an_s3_inbox_is_normalised_and_gets_the_lakehouse_s3_connection():
    from ingest.sources.config import parse_declarations

    raw = {"kind": "csv_drop", "inbox": "s3://finance-drops/exchange/rates",
           "resources": {"r": {"write_disposition": "append", "fields": {"d": {"type": "date"}}}}}  # fmt: skip
    spec = parse_declarations({"sources": {"rates": raw}})["rates"]
    assert (spec.inbox, spec.s3_inbox, spec.connection) == (
        "s3://finance-drops/exchange/rates/",
        ("finance-drops", "exchange/rates/"),
        "lakehouse_s3",
    )
    spec = parse_declarations({"sources": {"rates": {**raw, "connection": "finance_s3"}}})["rates"]
    assert spec.connection == "finance_s3"
    local = {k: v for k, v in raw.items() if k != "inbox"}
    assert parse_declarations({"sources": {"rates": local}})["rates"].s3_inbox is None
