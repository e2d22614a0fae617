"""The Great Expectations quality gate between silver and gold (transforms.quality.gx_gate).

A small, consistent day of every silver table (written with the exact Arrow schemas of
transforms.silver.schemas) passes; then one defect at a time makes the gate raise
QualityGateError naming the table, the expectation, the column and an example value.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakehouse.delta import locate, replace_partition
from lakehouse.settings import Layout
from transforms.quality.gx_gate import SUITES_DIR, QualityGateError, load_suite, run_gate
from transforms.silver.schemas import SILVER_TABLES

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 10, 5)
MSK = dt.timedelta(hours=3)  # Europe/Moscow, no DST since 2014
DEVICES = (2**63 + 11, 2**64 - 2, 42)
T0 = 1_790_000_000  # 2026-09-21, well inside the day range checks


def _event_rows() -> list[dict[str, Any]]:
    rows = []
    for i in range(6):
        ts = T0 + 600 * i
        local = dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None) + MSK
        rows.append(
            {
                "event_id": f"e{i:03d}",
                "event_date": local.date(),
                "event_datetime": local,
                "event_timestamp": ts,
                "event_receive_datetime": local + dt.timedelta(seconds=5),
                "event_receive_timestamp": ts + 5,
                "event_name": "purchase" if i % 2 else "open",
                "event_json": '{"a": {"b": 1}}',
                "session_id": 10_000_000_001 + i // 3,
                "installation_id": "inst-1",
                "profile_id": f"p{i % 2}",
                "appmetrica_device_id": DEVICES[i % 3],
                "connection_type": ("wifi", "cell", None)[i % 3],
                "device_type": ("phone", "tablet", "unknown")[i % 3],
                "os_name": ("ios", "android", "windows")[i % 3],
                "mcc": 250,
                "mnc": 1,
                "app_build_number": 30_010,
            }
        )
    return rows


def _rows() -> dict[str, list[dict[str, Any]]]:
    events = _event_rows()
    seen = dt.datetime(2026, 10, 5, 9, 0)
    return {
        "events_part": events,
        "mobile_devices": [
            {
                "appmetrica_device_id": d,
                "device_type": "phone",
                "os_name": "android",
                "first_seen_at": seen,
                "last_seen_at": seen,
                "observations": 2,
            }
            for d in DEVICES
        ],
        "technical_data": [
            {
                "appmetrica_device_id": d,
                "installation_id": "inst-1",
                "session_id": 10_000_000_001,
                "session_started_at": seen,
                "connection_type": "wifi",
                "source": "events",
            }
            for d in DEVICES
        ],
        "tmp_event_properties": [
            {
                "event_id": e["event_id"],
                "event_date": e["event_date"],
                "appmetrica_device_id": e["appmetrica_device_id"],
                "event_name": e["event_name"],
                "property_path": "a.b",
                "value_text": "1",
                "value_type": "number",
            }
            for e in events
        ],
        "permanent_user_properties": [
            {"profile_id": "p0", "appmetrica_device_id": DEVICES[0], "os_name": "ios", "sessions": 3},
            {"profile_id": "p1", "appmetrica_device_id": None, "os_name": None},
        ],
        "tmp_user_properties": [
            {"profile_id": "p0", "attribute_name": "plan", "value_text": "pro", "value_type": "string"},
            {"profile_id": "p0", "attribute_name": "age", "value_text": "31", "value_type": "number"},
        ],
        "user_locations": [
            {
                "appmetrica_device_id": d,
                "country_iso_code": c,
                "city": city,
                "first_seen_at": seen,
                "last_seen_at": seen,
                "observations": 1,
            }
            for d, c, city in ((DEVICES[0], "RU", "Moscow"), (DEVICES[0], "RU", None), (DEVICES[1], None, None))
        ],
        **_money_and_stability_rows(events),
    }


def _money_and_stability_rows(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """revenue_events, ad_revenue_events, crashes and errors: one row per event above, at its time."""
    out: dict[str, list[dict[str, Any]]] = {}
    for table, stamp, extra in (
        ("revenue_events", "event", lambda i: {"revenue_price": decimal.Decimal("4.99") * (-1 if i == 5 else 1),
                                               "revenue_currency": ("USD", "RUB")[i % 2], "revenue_quantity": 1,
                                               "is_revenue_verified": "true",
                                               "revenue_order_id_source": "autogenerated"}),
        ("ad_revenue_events", "ad_revenue", lambda i: {"ad_revenue": decimal.Decimal("0.000123456"),
                                                       "ad_revenue_currency": "USD", "ad_revenue_type": "banner",
                                                       "ad_revenue_data_source": "autocollected"}),
        ("crashes", "crash", lambda i: {"crash_id": 2**64 - 1 - i, "crash_group_id": 7, "os_name": "android"}),
        ("errors", "error", lambda i: {"error_id": "network.timeout", "os_name": "ios"}),
    ):  # fmt: skip
        out[table] = [
            {
                "record_id": f"{table}-{i}",
                f"{stamp}_date": e["event_date"],
                f"{stamp}_datetime": e["event_datetime"],
                f"{stamp}_timestamp": e["event_timestamp"],
                f"{stamp}_receive_datetime": e["event_receive_datetime"],
                f"{stamp}_receive_timestamp": e["event_receive_timestamp"],
                "appmetrica_device_id": e["appmetrica_device_id"],
                "connection_type": e["connection_type"],
                **extra(i),
            }
            for i, e in enumerate(events)
        ]
    return out


def _write(layout: Layout, table: str, rows: list[dict[str, Any]], drop: str | None = None) -> None:
    schema = SILVER_TABLES[table].schema
    lineage = {"export_date": DAY, "bronze_file": "bronze.csv.gz"}
    full = [{**lineage, "bronze_row": i + 1, **r} for i, r in enumerate(rows)]
    data = pa.Table.from_pylist([{f: r.get(f) for f in schema.names} for r in full], schema=schema)
    loc = locate(f"silver/{table}", layout)
    if drop:  # a table written by an older schema: made anew without the column
        data = data.drop_columns([drop])
        shutil.rmtree(loc.uri, ignore_errors=True)
    replace_partition(loc, data, column="export_date", value=DAY)


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("LAKEHOUSE_APP_TIMEZONE", raising=False)
    lay = Layout(tmp_path)
    for table, rows in _rows().items():
        _write(lay, table, rows)
    return lay


def test_suites_match_the_arrow_schemas() -> None:
    assert sorted(p.stem for p in SUITES_DIR.glob("*.json")) == sorted(SILVER_TABLES)
    for name, table in SILVER_TABLES.items():
        raw = json.loads((SUITES_DIR / f"{name}.json").read_text())
        (cols,) = [e["kwargs"]["column_set"] for e in raw["expectations"] if e["type"].endswith("match_set")]
        assert cols == table.schema.names
        types = {e["type"] for e in load_suite(name)["expectations"]}
        unique = "expect_column_values_to_be_unique" if len(table.key) == 1 else "expect_compound_columns_to_be_unique"
        assert {unique, "expect_table_row_count_to_be_between", "expect_column_values_to_not_be_null"} <= types


def test_gate_passes_and_builds_docs(layout: Layout) -> None:
    result = run_gate(DAY)
    assert result["success"] is True
    assert set(result["tables"]) == set(SILVER_TABLES)
    for info in result["tables"].values():
        assert info["success"] and info["evaluated"] >= 5 and info["failed"] == []
    assert result["tables"]["events_part"]["rows"] == 6
    index = layout.root / "docs" / "gx" / "index.html"
    assert result["data_docs"] == str(index)
    assert index.exists()
    assert "silver_events_part" in index.read_text()
    # Styled without internet: every script, stylesheet and image of every page is a file of the site.
    pages = list(index.parent.rglob("*.html"))
    assert len(pages) > len(SILVER_TABLES)
    for page in pages:
        for tag in re.findall(r"<(?:script|link|img)\b[^>]*>", page.read_text()):
            ref = re.search(r"""\b(?:src|href)=["']([^"']+)""", tag)
            if ref:
                assert not ref.group(1).startswith(("http:", "https:", "//")), f"{page}: {tag}"
                if "static/vendor/" in ref.group(1):
                    assert (page.parent / ref.group(1)).resolve().is_file(), f"{page}: {tag}"


def test_gate_without_docs_writes_nothing(layout: Layout) -> None:
    result = run_gate(DAY, layout, build_docs=False)
    assert result["success"] and "data_docs" not in result
    assert not (layout.root / "docs").exists()


def _fails(layout: Layout) -> tuple[str, dict[str, Any]]:
    with pytest.raises(QualityGateError) as err:
        run_gate(DAY, layout, build_docs=False)
    return str(err.value), err.value.result


def test_unknown_os_name(layout: Layout) -> None:
    rows = _event_rows()
    rows[4]["os_name"] = "symbian"
    _write(layout, "events_part", rows)
    msg, result = _fails(layout)
    assert "events_part: expect_column_values_to_be_in_set on os_name failed: 1 of 6 rows unexpected" in msg
    assert "['symbian']" in msg
    assert [t for t, i in result["tables"].items() if not i["success"]] == ["events_part"]


def test_duplicate_event_id(layout: Layout) -> None:
    rows = _event_rows()
    rows[2]["event_id"] = rows[1]["event_id"]
    _write(layout, "events_part", rows)
    msg, _ = _fails(layout)
    assert "events_part: expect_column_values_to_be_unique on event_id failed: 2 of 6 rows unexpected" in msg
    assert "'e001'" in msg


def test_timestamp_inconsistent_with_datetime(layout: Layout) -> None:
    rows = _event_rows()
    rows[3]["event_timestamp"] += 3600  # as if the datetime were in UTC+2
    _write(layout, "events_part", rows)
    msg, result = _fails(layout)
    assert "events_part: expect_column_values_to_be_in_set on _tz_offset_ok failed: 1 of 6 rows" in msg
    assert "[False]" in msg
    (failure,) = result["tables"]["events_part"]["failed"]
    assert failure["examples"] == [False]


def test_timezone_setting_is_used(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_APP_TIMEZONE", "UTC")
    msg, _ = _fails(layout)
    assert "_tz_offset_ok failed: 6 of 6 rows unexpected" in msg


def test_missing_column(layout: Layout) -> None:
    _write(layout, "user_locations", _rows()["user_locations"], drop="observations")
    msg, result = _fails(layout)
    assert "user_locations: expect_table_columns_to_match_set on observations failed: missing columns" in msg
    assert "['observations']" in msg
    assert [t for t, i in result["tables"].items() if not i["success"]] == ["user_locations"]


def test_compound_key_duplicate(layout: Layout) -> None:
    rows = _rows()["tmp_user_properties"]
    _write(layout, "tmp_user_properties", [*rows, dict(rows[0], value_text="free")])
    msg, _ = _fails(layout)
    assert "tmp_user_properties: expect_compound_columns_to_be_unique on profile_id, attribute_name, export_date" in msg


def test_empty_events_day_fails(layout: Layout) -> None:
    _write(layout, "events_part", [])
    msg, _ = _fails(layout)
    assert "events_part: expect_table_row_count_to_be_between failed: observed 0" in msg


def test_day_without_revenue_ad_revenue_crashes_or_errors_passes(layout: Layout) -> None:
    for table in ("revenue_events", "ad_revenue_events", "crashes", "errors"):
        _write(layout, table, [])
    result = run_gate(DAY, layout, build_docs=False)
    assert result["success"] and result["tables"]["crashes"]["rows"] == 0


def test_unknown_ad_revenue_type_and_bad_currency_code(layout: Layout) -> None:
    rows = _rows()
    rows["ad_revenue_events"][2]["ad_revenue_type"] = "video"
    rows["revenue_events"][1]["revenue_currency"] = "RUR1"
    for table in ("ad_revenue_events", "revenue_events"):
        _write(layout, table, rows[table])
    msg, result = _fails(layout)
    assert "ad_revenue_events: expect_column_values_to_be_in_set on ad_revenue_type failed: 1 of 6 rows" in msg
    assert "revenue_events: expect_column_value_lengths_to_equal on revenue_currency failed: 1 of 6 rows" in msg
    assert sorted(t for t, i in result["tables"].items() if not i["success"]) == ["ad_revenue_events", "revenue_events"]
