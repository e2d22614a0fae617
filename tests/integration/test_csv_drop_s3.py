"""A CSV drop source whose inbox is an S3 prefix (moto's server over HTTP, the lakehouse_s3 connection):
picked up, checked, to bronze and silver or quarantined whole, removed from the prefix only after that,
never loaded twice, names still being written left alone."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

# Imported at collection: importing Airflow reconfigures logging.
from airflow.providers.amazon.aws.hooks.s3 import S3Hook  # noqa: F401
from moto_s3 import SECRET, ensure_bucket, record_s3_calls, s3_client, use_lakehouse_s3

from ingest.sources import csv_drop
from ingest.sources.config import SourceConfigError
from ingest.sources.csv_drop import s3_inbox
from lakehouse import sources
from lakehouse.settings import Layout

pytestmark = pytest.mark.integration

BUCKET = "finance-drops"
HEADER = "rate_date,currency,units,rate\n"
GOOD = HEADER + "2026-11-01,USD,1,95.5\n2026-11-01,JPY,100,61.2\n"


@pytest.fixture(scope="module")
def endpoint(s3_endpoint: str) -> str:
    return ensure_bucket(s3_endpoint, BUCKET)


@pytest.fixture
def s3(endpoint: str) -> Any:
    return s3_client(endpoint)


@pytest.fixture
def inbox(endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The source ``rates`` with its inbox at s3://finance-drops/<unique>/rates/, declared in a sources file."""
    prefix = f"in-{uuid.uuid4().hex[:8]}/rates/"
    doc = {"version": 1, "sources": {"rates": {
        "kind": "csv_drop", "inbox": f"s3://{BUCKET}/{prefix}", "timezone": "UTC", "schedule": None,
        "resources": {"daily": {
            "file_pattern": "rates*.csv", "write_disposition": "merge", "primary_key": ["rate_date", "currency"],
            "fields": {"rate_date": {"type": "date", "required": True},
                       "currency": {"type": "string", "required": True},
                       "units": "integer", "rate": {"type": "number", "required": True}}}}}}}  # fmt: skip
    path = tmp_path / "sources.yml"
    path.write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("LAKEHOUSE_SOURCES_FILE", str(path))
    data = tmp_path / "data"
    use_lakehouse_s3(monkeypatch, endpoint, bucket=BUCKET, prefix="gold", tmp_path=tmp_path, data_dir=data)
    return {"prefix": prefix, "layout": Layout(data.resolve())}


def put(s3: Any, key: str, text: str) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=text.encode())


def keys(s3: Any, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"].removeprefix(prefix) for page in pages for o in page.get("Contents", []))


def test_a_good_file_goes_to_bronze_and_silver_and_leaves_the_inbox(inbox, s3):
    prefix, layout = inbox["prefix"], inbox["layout"]
    put(s3, f"{prefix}rates 2026-11-01.csv", GOOD)

    report = sources.run("rates")

    picked = report["pick_up"]
    assert picked["inbox"] == f"s3://{BUCKET}/{prefix}" and picked["rejected"] == [] and picked["skipped"] == []
    [loaded] = picked["loaded"]
    bronze = layout.root / loaded["bronze"]
    assert bronze.read_text() == GOOD and loaded["file"] == "rates 2026-11-01.csv" and loaded["rows"] == 2
    manifest = json.loads((bronze.parent / "_manifest.json").read_text())
    assert manifest["files"][0]["origin"] == f"s3://{BUCKET}/{prefix}rates 2026-11-01.csv"
    day = picked["date"]
    assert report["silver"][day]["resources"]["daily"]["rows"] == 2
    table = pq.read_table(layout.root / f"silver/rates__daily/date={day}/part-00000.parquet")
    assert table.column("currency").to_pylist() == ["JPY", "USD"] and table.column("rate").to_pylist() == [61.2, 95.5]
    assert keys(s3, prefix) == []
    assert not any(p.is_file() for p in (layout.root / "inbox" / "rates" / ".s3-download").rglob("*"))


def test_a_bad_file_is_quarantined_whole_with_its_reason_and_removed(inbox, s3):
    prefix, layout = inbox["prefix"], inbox["layout"]
    bad = HEADER + "2026-11-01,USD,1,95.5\n2026-11-01,EUR,one,101.0\n"
    put(s3, f"{prefix}rates-bad.csv", bad)

    picked = csv_drop.csv_drop_source("rates").pick_up()

    assert picked["loaded"] == [] and picked["days"] == []
    [rejected] = picked["rejected"]
    assert rejected["reason"] == "1 of 2 rows do not fit the declared schema: row 2: invalid_integer (units=one)"
    copy = layout.root / rejected["quarantine"]
    assert copy.read_text() == bad  # the whole file
    reason = json.loads(Path(f"{copy}.reason.json").read_text())
    assert reason["origin"] == f"s3://{BUCKET}/{prefix}rates-bad.csv" and reason["bad_rows"] == 1
    assert keys(s3, prefix) == [] and not (layout.root / "bronze").exists()


def test_the_same_file_again_is_not_loaded_twice(inbox, s3):
    prefix, layout = inbox["prefix"], inbox["layout"]
    put(s3, f"{prefix}rates-1.csv", GOOD)
    first = csv_drop.csv_drop_source("rates").pick_up()["loaded"][0]
    put(s3, f"{prefix}rates-again.csv", GOOD)  # the same bytes under another name

    picked = csv_drop.csv_drop_source("rates").pick_up()

    assert picked["loaded"] == [] and picked["days"] == []
    [rejected] = picked["rejected"]
    assert rejected["reason"].startswith("duplicate_file") and first["bronze"] in rejected["reason"]
    assert len(list((layout.root / "bronze").rglob("*.csv"))) == 1 and keys(s3, prefix) == []


def test_names_still_being_written_and_sub_folders_are_left_alone(inbox, s3):
    prefix = inbox["prefix"]
    waiting = [".rates.csv", "_rates.csv", "rates.csv.part", "rates.csv.tmp", "rates.csv.filepart", "old/rates-x.csv"]
    for name in waiting:
        put(s3, prefix + name, GOOD)
    put(s3, f"{prefix}rates-now.csv", GOOD)

    picked = csv_drop.csv_drop_source("rates").pick_up()

    assert [e["file"] for e in picked["loaded"]] == ["rates-now.csv"] and picked["rejected"] == []
    assert keys(s3, prefix) == sorted(waiting)


def test_a_listing_of_many_pages_picks_up_every_file(inbox, s3, monkeypatch):
    prefix, layout = inbox["prefix"], inbox["layout"]
    for i in range(7):
        put(s3, f"{prefix}rates-{i}.csv", HEADER + f"2026-11-0{i + 1},USD,1,9{i}.5\n")
    monkeypatch.setattr(s3_inbox, "LIST_PAGE_SIZE", 2)
    calls = record_s3_calls(monkeypatch)

    picked = csv_drop.csv_drop_source("rates").pick_up()

    assert len(picked["loaded"]) == 7 and keys(s3, prefix) == []
    assert [op for op, _ in calls].count("ListObjectsV2") == 4  # 7 keys, 2 per request
    assert len(list((layout.root / "bronze").rglob("*.csv"))) == 7


def test_killed_after_bronze_before_the_delete_the_rerun_loads_nothing_twice(inbox, s3, monkeypatch):
    prefix, layout = inbox["prefix"], inbox["layout"]
    put(s3, f"{prefix}rates-k.csv", GOOD)
    calls = record_s3_calls(monkeypatch)

    def killed(self: Any, obj: Any) -> bool:
        raise KeyboardInterrupt("killed between bronze and the delete")

    with monkeypatch.context() as mp:
        mp.setattr(s3_inbox.S3Inbox, "remove", killed)
        with pytest.raises(KeyboardInterrupt):
            csv_drop.csv_drop_source("rates").pick_up()
    [bronze] = list((layout.root / "bronze").rglob("*.csv"))
    assert bronze.read_text() == GOOD and keys(s3, prefix) == ["rates-k.csv"]  # still in the inbox
    assert ("DeleteObject", f"{prefix}rates-k.csv") not in calls

    picked = csv_drop.csv_drop_source("rates").pick_up()

    assert picked["loaded"] == [] and picked["rejected"][0]["reason"].startswith("duplicate_file")
    assert list((layout.root / "bronze").rglob("*.csv")) == [bronze] and keys(s3, prefix) == []
    order = [op for op, key in calls if key == f"{prefix}rates-k.csv"]
    assert order[-3:] == ["GetObject", "HeadObject", "DeleteObject"]  # deleted only after quarantine was written


def test_a_file_replaced_while_it_was_picked_up_stays_for_next_time(inbox, s3, monkeypatch):
    prefix = inbox["prefix"]
    put(s3, f"{prefix}rates-r.csv", GOOD)
    newer = HEADER + "2026-11-01,USD,1,96.0\n"
    original = csv_drop.CsvDropSource._process

    def replaced_meanwhile(self: Any, *args: Any, **kwargs: Any) -> str:
        put(s3, f"{prefix}rates-r.csv", newer)  # the producer uploads a corrected file
        return original(self, *args, **kwargs)

    with monkeypatch.context() as mp:
        mp.setattr(csv_drop.CsvDropSource, "_process", replaced_meanwhile)
        picked = csv_drop.csv_drop_source("rates").pick_up()
    assert [e["rows"] for e in picked["loaded"]] == [2] and "replaced in the inbox" in picked["skipped"][0]["reason"]
    assert s3.get_object(Bucket=BUCKET, Key=f"{prefix}rates-r.csv")["Body"].read().decode() == newer

    again = csv_drop.csv_drop_source("rates").pick_up()
    assert [e["rows"] for e in again["loaded"]] == [1] and keys(s3, prefix) == []


def test_without_the_connection_the_error_names_it(inbox, monkeypatch, capsys):
    monkeypatch.delenv("AIRFLOW_CONN_LAKEHOUSE_S3")
    with pytest.raises(SourceConfigError, match=r"needs the Airflow connection 'lakehouse_s3' \(type aws\)"):
        csv_drop.csv_drop_source("rates").pick_up()
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
