"""Silver of a REST source from bronze pages: typed, deduplicated on the key, window, quarantine, threshold."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow.parquet as pq
import pytest
from sources_fakes import source_doc

from ingest.sources.config import parse_declarations
from lakehouse.settings import Layout
from transforms.sources import SourceSilverError, build_source_silver, silver_schema

DAY = dt.date(2026, 11, 1)


def spec(**overrides):
    return parse_declarations(source_doc(**overrides))["api"]


def write_bronze(layout, pages, source="api", resource="items"):
    folder = layout.bronze(resource, DAY, source=source)
    folder.mkdir(parents=True)
    entries = []
    for i, page in enumerate(pages, start=1):
        name = f"page-{i:05d}.json"
        (folder / name).write_text(json.dumps(page))
        entries.append({"file": name})
    (folder / "_manifest.json").write_text(json.dumps({"pages": entries}))


def rec(i, updated, name="n"):
    return {"id": i, "name": name, "updated_at": updated}


def silver_rows(layout, table="api__items"):
    return pq.read_table(layout.root / f"silver/{table}/date={DAY}").to_pylist()


def test_merge_keeps_the_latest_version_per_key(tmp_path):
    layout = Layout(tmp_path)
    write_bronze(layout, [
        {"items": [rec(2, "2026-11-01T10:00:00Z", "v2"), rec(1, "2026-11-01T08:00:00Z", "old")]},
        {"items": [rec(1, "2026-11-01T09:00:00Z", "new"), rec(2, "2026-11-01T09:00:00Z", "older, read later")]},
    ])  # fmt: skip
    result = build_source_silver(spec(incremental={"cursor_field": "updated_at", "start_param": "s"}), DAY, layout)
    stats = result["resources"]["items"]
    assert (stats["records_read"], stats["duplicates"], stats["rows"]) == (4, 2, 2)
    rows = silver_rows(layout)
    assert [(r["id"], r["name"]) for r in rows] == [(1, "new"), (2, "v2")]
    assert rows[0]["updated_at"] == dt.datetime(2026, 11, 1, 9, 0)
    assert (rows[0]["bronze_file"], rows[0]["bronze_row"]) == ("bronze/api/items/date=2026-11-01/page-00002.json", 1)
    assert rows[0]["export_date"] == DAY


def test_append_keeps_every_row(tmp_path):
    layout = Layout(tmp_path)
    write_bronze(layout, [{"items": [rec(1, "2026-11-01T08:00:00Z"), rec(1, "2026-11-01T08:00:00Z")]}])
    result = build_source_silver(spec(write_disposition="append"), DAY, layout)
    assert result["resources"]["items"]["rows"] == 2 and result["resources"]["items"]["duplicates"] == 0


def test_records_outside_the_window_are_dropped_for_updated_after_apis(tmp_path):
    layout = Layout(tmp_path)
    records = [rec(1, "2026-11-01T23:59:59Z"), rec(2, "2026-11-02T00:00:00Z"), rec(3, "2026-10-31T23:00:00-02:00"),
               rec(4, "2026-10-31T23:59:59Z")]  # fmt: skip
    write_bronze(layout, [{"items": records}])
    result = build_source_silver(spec(incremental={"cursor_field": "updated_at", "start_param": "s"}), DAY, layout)
    assert result["resources"]["items"]["outside_window"] == 2
    assert [r["id"] for r in silver_rows(layout)] == [1, 3]  # 3 is 2026-11-01 01:00 UTC


def test_bad_records_are_quarantined_with_reason_and_position(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_QUARANTINE_MAX_RATE", "0.9")
    layout = Layout(tmp_path)
    write_bronze(layout, [{"items": [rec(1, "2026-11-01T01:00:00Z"), rec("x", "2026-11-01T01:00:00Z"),
                                     {"name": "no id", "updated_at": "2026-11-01T01:00:00Z"}, "not a record",
                                     rec(5, "soon")]}])  # fmt: skip
    result = build_source_silver(spec(), DAY, layout)["resources"]["items"]
    assert result["quarantined_by_reason"] == {"invalid_integer": 1, "invalid_datetime": 1,
                                               "missing_required_field": 1, "not_an_object": 1}  # fmt: skip
    q = pq.read_table(layout.root / f"quarantine/api__items/date={DAY}").to_pylist()
    assert [(r["bronze_row"], r["reason"], r["detail"]) for r in q] == [
        (2, "invalid_integer", "id=x"),
        (3, "missing_required_field", "id=<missing>"),
        (4, "not_an_object", "record=not a record"),
        (5, "invalid_datetime", "updated_at=soon"),
    ]
    assert json.loads(q[0]["raw"])["id"] == "x" and q[0]["resource"] == "api__items"
    assert [r["id"] for r in silver_rows(layout)] == [1]


def test_too_many_bad_records_keep_the_old_silver_and_show_the_quarantine(tmp_path):
    layout = Layout(tmp_path)
    write_bronze(layout, [{"items": [rec(1, "2026-11-01T01:00:00Z")]}])
    source = spec()
    build_source_silver(source, DAY, layout)
    before = silver_rows(layout)
    for path in (layout.root / "bronze").rglob("page-00001.json"):
        path.write_text(json.dumps({"items": [rec(1, "nope"), rec(2, "2026-11-01T02:00:00Z")]}))
    with pytest.raises(
        SourceSilverError, match=r"items: 1 of 2 records \(50\.00%\) quarantined \(invalid_datetime 1\)"
    ):
        build_source_silver(source, DAY, layout)
    assert silver_rows(layout) == before
    assert pq.read_table(layout.root / f"quarantine/api__items/date={DAY}").num_rows == 1


def test_missing_or_damaged_bronze_is_an_error(tmp_path):
    layout = Layout(tmp_path)
    with pytest.raises(SourceSilverError, match=r"no bronze for api/items on 2026-11-01: .*_manifest.json is missing"):
        build_source_silver(spec(), DAY, layout)
    write_bronze(layout, [{"results": []}])
    with pytest.raises(SourceSilverError, match="records_path 'items' does not hold a list"):
        build_source_silver(spec(), DAY, layout)
    assert [p for p in (layout.root / "silver").rglob("*") if p.is_file()] == []


def test_the_silver_schema_follows_the_declaration():
    fields = {"id": {"type": "integer", "required": True}, "tags": {"type": "array[string]", "path": "t[].n"},
              "at": "timestamp", "ok": "boolean", "on": "date", "blob": "json", "updated_at": "timestamp"}  # fmt: skip
    schema = silver_schema(spec(fields=fields).resources["items"])
    assert [(f.name, str(f.type)) for f in schema] == [
        ("id", "int64"), ("tags", "list<item: string>"), ("at", "timestamp[us]"), ("ok", "bool"),
        ("on", "date32[day]"), ("blob", "string"), ("updated_at", "timestamp[us]"),
        ("export_date", "date32[day]"), ("bronze_file", "string"), ("bronze_row", "int64"),
    ]  # fmt: skip
    assert not schema.field("id").nullable and schema.field("tags").nullable
