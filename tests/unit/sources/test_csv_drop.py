"""CSV drop: inbox -> checked -> bronze (or quarantined whole with its reason), never loaded twice; then silver."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow.parquet as pq
import pytest

from ingest.sources.config import parse_declarations
from ingest.sources.csv_drop import csv_drop_source
from lakehouse.settings import Layout
from transforms.sources import build_source_silver

NOW = dt.datetime(2026, 11, 1, 21, 30, tzinfo=dt.UTC)  # 2026-11-02 00:30 in Moscow
DAY = "2026-11-02"
HEADER = "rate_date,currency,units,rate\n"


@pytest.fixture
def source():
    doc = {
        "sources": {
            "rates": {
                "kind": "csv_drop",
                "timezone": "Europe/Moscow",
                "resources": {
                    "daily": {
                        "file_pattern": "rates*.csv",
                        "write_disposition": "merge",
                        "primary_key": ["rate_date", "currency"],
                        "fields": {
                            "rate_date": {"type": "date", "required": True},
                            "currency": {"type": "string", "required": True},
                            "units": "integer",
                            "rate": {"type": "number", "required": True},
                        },
                    }
                },
            }
        }
    }
    return csv_drop_source(parse_declarations(doc)["rates"])


@pytest.fixture
def layout(tmp_path):
    return Layout(tmp_path)


def drop(layout, name, text, encoding="utf-8"):
    inbox = layout.root / "inbox" / "rates"
    inbox.mkdir(parents=True, exist_ok=True)
    path = inbox / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_a_good_file_goes_to_bronze_and_silver(source, layout):
    text = HEADER + "2026-11-01,USD,1,95.5\n2026-11-01,JPY,100,61.2\n"
    drop(layout, "rates 2026-11-01.csv", text)
    summary = source.pick_up(layout=layout, now=NOW)
    assert summary["days"] == [DAY] and summary["rejected"] == []
    [loaded] = summary["loaded"]
    bronze = layout.root / loaded["bronze"]
    assert bronze.parent == layout.root / f"bronze/rates/daily/date={DAY}"
    assert bronze.name.endswith("-rates_2026-11-01.csv") and bronze.read_text() == text
    assert not list((layout.root / "inbox/rates").glob("*.csv"))
    manifest = json.loads((bronze.parent / "_manifest.json").read_text())
    assert [(f["original_name"], f["rows"]) for f in manifest["files"]] == [("rates 2026-11-01.csv", 2)]

    result = build_source_silver(source.spec, DAY, layout)
    assert result["resources"]["daily"]["rows"] == 2
    table = pq.read_table(layout.root / f"silver/rates__daily/date={DAY}/part-00000.parquet")
    assert table.column("currency").to_pylist() == ["JPY", "USD"]  # ordered by the primary key
    assert table.column("units").to_pylist() == [100, 1] and table.column("rate").to_pylist() == [61.2, 95.5]
    assert table.column("bronze_row").to_pylist() == [2, 1]
    assert str(table.schema.field("rate_date").type) == "date32[day]"


def test_a_later_file_of_the_day_corrects_an_earlier_one(source, layout):
    drop(layout, "rates-a.csv", HEADER + "2026-11-01,USD,1,95.5\n2026-11-01,EUR,1,101\n")
    source.pick_up(layout=layout, now=NOW)
    drop(layout, "rates-b.csv", HEADER + "2026-11-01,USD,1,96.0\n")
    source.pick_up(layout=layout, now=NOW + dt.timedelta(hours=1))
    result = build_source_silver(source.spec, DAY, layout)["resources"]["daily"]
    assert (result["records_read"], result["duplicates"], result["rows"]) == (3, 1, 2)
    table = pq.read_table(layout.root / f"silver/rates__daily/date={DAY}").to_pydict()
    assert dict(zip(table["currency"], table["rate"], strict=True)) == {"EUR": 101.0, "USD": 96.0}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (HEADER + "2026-11-01,USD,1,95.5\n2026-11-01,EUR,one,101\n",
         "1 of 2 rows do not fit the declared schema: row 2: invalid_integer (units=one)"),
        (HEADER + "2026-11-01,USD,1\n", "row 1: wrong_field_count (3 fields, the header has 4)"),
        (HEADER + "2026-02-30,USD,1,95\n", "row 1: invalid_date (rate_date=2026-02-30)"),
        (HEADER + ",USD,1,95\n", "row 1: missing_required_field (rate_date=<missing>)"),
        ("rate_date,currency,rate\n2026-11-01,USD,95\n", "missing_columns: units"),
        ("rate_date,currency,units,rate,rate\n", "duplicate_columns: rate"),
        ("", "empty_file: no header row"),
        ((HEADER + "2026-11-01,R\u00fcb,1,1\n").encode("latin-1"), "invalid_encoding: not utf-8 text"),
    ],
)  # fmt: skip
def test_a_bad_file_is_quarantined_whole_with_its_reason(source, layout, content, reason):
    drop(layout, "rates.csv", content)
    summary = source.pick_up(layout=layout, now=NOW)
    assert summary["loaded"] == [] and summary["days"] == []
    [rejected] = summary["rejected"]
    assert reason in rejected["reason"]
    kept = layout.root / rejected["quarantine"]
    assert kept.parent == layout.root / f"quarantine/inbox/rates/date={DAY}"
    assert kept.read_bytes() == (content.encode() if isinstance(content, str) else content)  # the whole file
    record = json.loads(kept.with_name(kept.name + ".reason.json").read_text())
    assert reason in record["reason"] and record["file"] == "rates.csv" and record["resource"] == "daily"
    assert not (layout.root / "bronze").exists()
    assert not (layout.root / "inbox/rates/rates.csv").exists()


def test_many_bad_rows_are_counted_and_the_first_ones_listed(source, layout):
    drop(layout, "rates.csv", HEADER + "".join(f"2026-11-01,C{i},x,1\n" for i in range(9)))
    [rejected] = source.pick_up(layout=layout, now=NOW)["rejected"]
    assert rejected["reason"].startswith("9 of 9 rows do not fit") and "(and 4 more)" in rejected["reason"]


def test_a_file_seen_before_is_not_loaded_twice(source, layout):
    text = HEADER + "2026-11-01,USD,1,95.5\n"
    drop(layout, "rates-1.csv", text)
    first = source.pick_up(layout=layout, now=NOW)["loaded"][0]
    drop(layout, "rates-copy.csv", text)  # same bytes, another name, a day later
    summary = source.pick_up(layout=layout, now=NOW + dt.timedelta(days=1))
    assert summary["loaded"] == [] and summary["days"] == []
    [rejected] = summary["rejected"]
    assert rejected["reason"].startswith("duplicate_file") and first["bronze"] in rejected["reason"]
    assert len(list((layout.root / "bronze").rglob("*.csv"))) == 1


def test_files_in_progress_hidden_or_unmatched(source, layout):
    for name in (".rates.csv", "_rates.csv", "rates.csv.part", "rates.csv.tmp"):
        drop(layout, name, HEADER)
    drop(layout, "prices.csv", HEADER)
    summary = source.pick_up(layout=layout, now=NOW)
    [rejected] = summary["rejected"]
    assert rejected["file"] == "prices.csv" and "no_matching_resource" in rejected["reason"]
    assert "(rates*.csv)" in rejected["reason"] and rejected["resource"] is None
    left = sorted(p.name for p in (layout.root / "inbox/rates").iterdir() if p.name != ".pickup.lock")
    assert left == [".rates.csv", "_rates.csv", "rates.csv.part", "rates.csv.tmp"]


def test_silver_skips_a_resource_without_files_that_day(source, layout):
    result = build_source_silver(source.spec, DAY, layout)
    assert result["skipped"] == ["daily"] and result["tables"] == {}
    assert not (layout.root / "silver").exists()
