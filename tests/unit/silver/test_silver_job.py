"""Bronze -> silver on hand-made exports with the quirks real exports have."""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lake_tables import quarantine_table, silver_table
from silver_helpers import DAY, csv_bytes, row

from ingest.appmetrica.resources import RESOURCES
from lakehouse.delta import latest_commit, locate, open_table, partition_files
from lakehouse.settings import ConfigError
from transforms.silver import SilverError, build_silver
from transforms.silver.schemas import SILVER_TABLES

BIG_ID = "18446744073709551000"  # above 2**63: must survive as UInt64
TRICKY_JSON = json.dumps(
    {"screen": {"name": 'Главная, "home"\nsecond line', "params": {"tab": 2}}, "price": 9.5, "ok": True,
     "tags": ["a", "b"], "none": None, "empty": {}},
    ensure_ascii=False,
)  # fmt: skip


def event(**kw: str) -> dict[str, str]:
    base = {
        "event_name": "app_open",
        "event_datetime": "2026-11-01 01:30:00",  # 2026-10-31 22:30 UTC: the local date is what counts
        "event_timestamp": "1762036200",
        "session_id": "10000000001",
        "installation_id": "a" * 32,
        "appmetrica_device_id": BIG_ID,
        "os_name": "android",
        "city": "Москва",
        "country_iso_code": "RU",
        "application_id": "1234567",
    }
    return row("events", **(base | kw))


def read(layout, table: str, day: dt.date = DAY) -> pa.Table:
    return silver_table(layout, table, day)


def test_tricky_csv_is_typed_deduplicated_and_traceable(layout, write_bronze, empty_bronze):
    empty_bronze()
    rows = [
        event(event_json=TRICKY_JSON),
        event(event_json=TRICKY_JSON),  # exact duplicate of the row above: one event
        event(event_name="purchase", event_datetime="2026-11-01 23:59:59", event_timestamp="1762030799",
              profile_id="", mcc="", app_build_number="120"),
    ]  # fmt: skip
    fields = list(RESOURCES["events"].fields)
    write_bronze("events", csv_bytes(fields, [[r[f] for f in fields] for r in rows], bom=True))

    summary = build_silver(DAY, layout)

    events = read(layout, "events_part")
    assert events.num_rows == 2
    assert summary["resources"]["events"]["duplicates"] == 1
    assert events.schema.field("appmetrica_device_id").type == pa.uint64()
    assert events.column("appmetrica_device_id").to_pylist() == [int(BIG_ID)] * 2
    assert events.column("event_date").to_pylist() == [DAY, DAY]
    assert events.column("event_json").to_pylist()[0] == TRICKY_JSON  # embedded newline and quotes intact
    assert events.column("city").to_pylist() == ["Москва", "Москва"]
    purchase = events.filter(pa.compute.equal(events.column("event_name"), "purchase")).to_pylist()[0]
    assert purchase["profile_id"] is None and purchase["mcc"] is None  # empty fields are nulls
    assert purchase["app_build_number"] == 120
    # Row numbers count records, not lines: the first row spans two lines, the purchase is record 3.
    assert purchase["bronze_row"] == 3
    assert purchase["bronze_file"] == "bronze/appmetrica/events/date=2026-11-01/events.part-00000-of-00001.csv.gz"
    assert len(set(events.column("event_id").to_pylist())) == 2


def test_event_properties_are_flattened_to_dotted_paths(layout, write_bronze, empty_bronze):
    empty_bronze()
    write_bronze("events", [event(event_json=TRICKY_JSON), event(event_name="no_payload", event_json="")])
    build_silver(DAY, layout)
    rows = read(layout, "tmp_event_properties").to_pylist()
    props = {r["property_path"]: (r["value_text"], r["value_type"]) for r in rows}
    assert props == {
        "screen.name": ('Главная, "home"\nsecond line', "string"),
        "screen.params.tab": ("2", "integer"),
        "price": ("9.5", "number"),
        "ok": ("true", "boolean"),
        "tags": ('["a","b"]', "array"),
        "none": (None, "null"),
        "empty": ("{}", "object"),
    }


def test_bad_rows_are_quarantined_with_reason_and_position_and_good_rows_kept(
    layout, write_bronze, empty_bronze, monkeypatch
):
    monkeypatch.setenv("LAKEHOUSE_QUARANTINE_MAX_RATE", "1")  # 7 of 9 rows are bad on purpose
    empty_bronze()
    fields = list(RESOURCES["events"].fields)
    good = event()
    lines = [
        good,
        event(event_json="{not json"),
        event(event_datetime="2026-02-30 10:00:00"),  # impossible date
        event(appmetrica_device_id=""),
        event(appmetrica_device_id="12ab"),
        event(appmetrica_device_id="18446744073709551616"),  # one past UInt64 max
        event(event_name="later_good", session_id="7"),
    ]
    body = csv_bytes(fields, [[r[f] for f in fields] for r in lines])
    body += b"too,few,fields\n"
    body += (
        csv_bytes(fields, [[r[f] for f in fields] for r in [event(city="bad")]])
        .split(b"\n", 1)[1]
        .replace(b"bad", b"\xff\xfe")
    )
    write_bronze("events", body)

    summary = build_silver(DAY, layout)

    events = read(layout, "events_part")
    assert sorted(events.column("event_name").to_pylist()) == ["app_open", "later_good"]
    q = quarantine_table(layout, "events", DAY).to_pylist()
    got = {(r["bronze_row"], r["reason"]) for r in q}
    assert got == {
        (2, "invalid_json"),
        (3, "invalid_datetime"),
        (4, "missing_required_field"),
        (5, "invalid_integer"),
        (6, "invalid_integer"),
        (8, "wrong_field_count"),
        (9, "invalid_utf8"),
    }
    by_row = {r["bronze_row"]: r for r in q}
    assert "event_datetime=2026-02-30 10:00:00" in by_row[3]["detail"]
    assert "appmetrica_device_id" in by_row[4]["detail"]
    assert by_row[8]["raw"] == "too,few,fields"
    assert "{not json" in by_row[2]["raw"]
    assert summary["resources"]["events"]["quarantined"] == 7
    assert summary["quarantined"]["events"] == 7


def test_same_bronze_gives_identical_silver_tables(layout, write_bronze, empty_bronze):
    """A rebuild of the day is a new version of each table (new data files) holding the same rows in the same order."""
    empty_bronze()
    write_bronze("events", [event(event_json=TRICKY_JSON, session_id=str(i)) for i in range(50)])
    first = build_silver(DAY, layout, metadata={"lakehouse.run": "a"})
    rows = {t: read(layout, t) for t in SILVER_TABLES}
    files = {t: partition_files(locate(f"silver/{t}", layout), "export_date") for t in SILVER_TABLES}
    second = build_silver(DAY, layout, metadata={"lakehouse.run": "b"})
    assert all(read(layout, t).equals(rows[t]) for t in SILVER_TABLES)
    assert all(second["versions"][t] == first["versions"][t] + 1 for t in SILVER_TABLES)
    rewritten = [t for t in SILVER_TABLES if partition_files(locate(f"silver/{t}", layout), "export_date") != files[t]]
    assert rewritten == [t for t in SILVER_TABLES if files[t]] and "events_part" in rewritten  # empty days: no file
    commit = latest_commit(locate("silver/events_part", layout), {"lakehouse.export_date": DAY.isoformat()})
    assert commit["lakehouse.run"] == "b" and commit["version"] == second["versions"]["events_part"]


def test_device_session_and_location_tables(layout, write_bronze, empty_bronze):
    empty_bronze()
    write_bronze(
        "events",
        [
            event(event_datetime="2026-11-01 08:00:00", os_version="13", app_version_name="1.0"),
            event(event_datetime="2026-11-01 09:00:00", os_version="14", app_version_name="1.1", city="Казань"),
            event(event_datetime="2026-11-01 10:00:00", session_id="20000000002", connection_type="cell"),
        ],
    )
    write_bronze(
        "sessions_starts",
        [row("sessions_starts", session_start_datetime="2026-11-01 07:59:58", session_id="10000000001",
             appmetrica_device_id=BIG_ID, app_version_name="1.0",
             connection_type="wifi", city="Москва", country_iso_code="RU"),
         row("sessions_starts", session_start_datetime="2026-11-01 09:30:00", session_id="30000000003",
             appmetrica_device_id=BIG_ID, city="Москва", country_iso_code="RU")],
    )  # fmt: skip
    write_bronze(
        "profiles_v2",
        [row("profiles_v2", profile_id="u1", appmetrica_device_id=BIG_ID, appmetrica_sdk_version="6002000"),
         row("profiles_v2", profile_id="u2", appmetrica_device_id=BIG_ID, appmetrica_sdk_version="10000000"),
         row("profiles_v2", profile_id="u3", appmetrica_device_id="5", appmetrica_sdk_version="99999999")],
    )  # fmt: skip
    build_silver(DAY, layout)

    devices = read(layout, "mobile_devices").to_pylist()
    assert len(devices) == 1
    assert devices[0]["os_version"] == "14"  # latest known value of the day
    assert devices[0]["first_seen_at"] == dt.datetime(2026, 11, 1, 7, 59, 58)
    assert devices[0]["observations"] == 5

    tech = {r["session_id"]: r for r in read(layout, "technical_data").to_pylist()}
    assert set(tech) == {10000000001, 20000000002, 30000000003}  # a session is (device, session_id)
    # sessions_starts has no installation_id: a session's comes from its events, none without events
    assert tech[10000000001]["installation_id"] == "a" * 32
    assert tech[30000000003]["installation_id"] is None
    # the SDK version is the device's profile's (the highest of its profiles), numerically compared
    assert {r["appmetrica_sdk_version"] for r in tech.values()} == {"10000000"}
    assert tech[10000000001]["source"] == "sessions_starts"
    assert tech[10000000001]["session_started_at"] == dt.datetime(2026, 11, 1, 7, 59, 58)
    assert tech[10000000001]["connection_type"] == "wifi"
    assert tech[20000000002]["source"] == "events" and tech[20000000002]["connection_type"] == "cell"

    locations = {(r["city"], r["observations"]) for r in read(layout, "user_locations").to_pylist()}
    assert locations == {("Москва", 4), ("Казань", 1)}

    # Derived rows name the bronze record their values came from.
    events_file = "bronze/appmetrica/events/date=2026-11-01/events.part-00000-of-00001.csv.gz"
    sessions_file = "bronze/appmetrica/sessions_starts/date=2026-11-01/sessions_starts.part-00000-of-00001.csv.gz"
    assert (devices[0]["bronze_file"], devices[0]["bronze_row"]) == (events_file, 3)  # the latest observation
    assert (tech[10000000001]["bronze_file"], tech[10000000001]["bronze_row"]) == (sessions_file, 1)
    assert (tech[20000000002]["bronze_file"], tech[20000000002]["bronze_row"]) == (events_file, 3)
    moscow = next(r for r in read(layout, "user_locations").to_pylist() if r["city"] == "Москва")
    assert (moscow["bronze_file"], moscow["bronze_row"]) == (sessions_file, 1)  # first seen at 07:59:58


def test_every_silver_row_is_traceable_to_a_bronze_record(layout, write_bronze, empty_bronze):
    empty_bronze()
    write_bronze("events", [event(event_json=TRICKY_JSON, session_id=str(i)) for i in range(1, 4)])
    write_bronze("profiles_v2", [row("profiles_v2", ("plan",), profile_id="u1", plan="pro")], attributes=("plan",))
    write_bronze("revenue_events", [row("revenue_events", appmetrica_device_id="1",
                                        event_datetime="2026-11-01 10:00:00", revenue_price="4.99")])  # fmt: skip
    write_bronze("ad_revenue_events", [row("ad_revenue_events", appmetrica_device_id="1", ad_revenue="0.001",
                                           ad_revenue_datetime="2026-11-01 10:00:00")])  # fmt: skip
    write_bronze("crashes", [row("crashes", appmetrica_device_id="1", crash_datetime="2026-11-01 10:00:00")])
    write_bronze("errors", [row("errors", appmetrica_device_id="1", error_datetime="2026-11-01 10:00:00")])
    build_silver(DAY, layout)
    for table in SILVER_TABLES:
        rows = read(layout, table).to_pylist()
        assert rows, table
        for r in rows:
            bronze = layout.root / r["bronze_file"]
            assert bronze.is_file() and r["bronze_row"] >= 1, (table, r)


def test_profiles_keep_one_row_per_profile_and_one_row_per_set_custom_attribute(layout, write_bronze, empty_bronze):
    empty_bronze()
    attributes = ("plan", "level", "nickname")
    write_bronze(
        "profiles_v2",
        [
            row("profiles_v2", attributes, profile_id="u1", appmetrica_device_id=BIG_ID, appmetrica_sessions="3",
                plan="free"),
            row("profiles_v2", attributes, profile_id="u1", appmetrica_device_id=BIG_ID, appmetrica_sessions="4",
                appmetrica_notifications_enabled="true", plan="pro", level="7", nickname='Ali "the 1st", Zürich'),
            row("profiles_v2", attributes, profile_id="u0", level="2"),
        ],
        attributes=attributes,
    )  # fmt: skip
    build_silver(DAY, layout)
    perm = read(layout, "permanent_user_properties").to_pylist()
    assert [(p["profile_id"], p["sessions"], p["notifications_enabled"]) for p in perm] == [
        ("u0", None, None),
        ("u1", 4, True),
    ]
    rows = read(layout, "tmp_user_properties").to_pylist()
    got = [(r["profile_id"], r["attribute_name"], r["value_text"], r["value_type"]) for r in rows]
    # the latest row of a profile wins; an attribute left empty is not set (no row); exported text, no type
    assert got == [
        ("u0", "level", "2", "string"),
        ("u1", "plan", "pro", "string"),
        ("u1", "level", "7", "string"),
        ("u1", "nickname", 'Ali "the 1st", Zürich', "string"),
    ]
    assert {r["bronze_row"] for r in rows if r["profile_id"] == "u1"} == {2}


def test_no_configured_attributes_give_no_attribute_rows(layout, write_bronze, empty_bronze):
    empty_bronze()
    write_bronze("profiles_v2", [row("profiles_v2", profile_id="u1")])
    assert build_silver(DAY, layout)["tables"]["tmp_user_properties"] == 0


def test_missing_column_fails_naming_it_and_keeps_previous_silver(layout, write_bronze, empty_bronze):
    empty_bronze()
    write_bronze("events", [event()])
    version = build_silver(DAY, layout)["versions"]["events_part"]
    before = read(layout, "events_part")

    fields = [f for f in RESOURCES["events"].fields if f != "event_name"]
    write_bronze("events", csv_bytes(fields, [["x"] * len(fields)]))
    with pytest.raises(SilverError, match=r"events lacks required column.*event_name"):
        build_silver(DAY, layout)
    assert open_table(locate("silver/events_part", layout)).version() == version
    assert read(layout, "events_part").equals(before)
    leftovers = [p for p in layout.root.rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []


def test_missing_bronze_names_the_manifest(layout):
    with pytest.raises(SilverError, match=r"no bronze export for events on 2026-11-01: .*_manifest.json"):
        build_silver(DAY, layout)


def test_silver_tables_are_delta_tables_partitioned_by_export_date(layout, write_bronze, empty_bronze):
    empty_bronze()
    write_bronze("events", [event(session_id=str(i)) for i in range(25)])
    build_silver(DAY, layout)
    for table in SILVER_TABLES:
        loc = locate(f"silver/{table}", layout)
        assert loc.uri == str(layout.root / "silver" / table)
        assert open_table(loc).metadata().partition_columns == ["export_date"]
    (data,) = partition_files(locate("silver/events_part", layout), "export_date")[DAY]
    meta = pq.read_metadata(layout.root / "silver" / "events_part" / data["path"])
    assert data["path"].startswith(f"export_date={DAY.isoformat()}/") and meta.num_rows == data["num_records"] == 25
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert "export_date" not in meta.schema.names  # the partition value lives in the path and the log


def test_quarantine_rate_above_threshold_fails_keeps_silver_and_writes_quarantine(
    layout, write_bronze, empty_bronze, monkeypatch
):
    empty_bronze()
    good = [event(session_id=str(i)) for i in range(1, 100)]
    write_bronze("events", good)
    build_silver(DAY, layout)
    before = read(layout, "events_part")

    write_bronze("events", [*good, event(event_json="{broken"), event(event_datetime="2026-11-01 25:00:00")])
    with pytest.raises(SilverError) as err:  # 2 of 101 rows = 1.98 % > 1 %
        build_silver(DAY, layout)
    message = str(err.value)
    assert "events: 2 of 101 rows (1.98%) quarantined (invalid_json 1, invalid_datetime 1)" in message
    assert "LAKEHOUSE_QUARANTINE_MAX_RATE" in message
    assert read(layout, "events_part").equals(before)
    quarantined = quarantine_table(layout, "events", DAY)
    assert sorted(quarantined.column("reason").to_pylist()) == ["invalid_datetime", "invalid_json"]

    monkeypatch.setenv("LAKEHOUSE_QUARANTINE_MAX_RATE", "0.05")
    summary = build_silver(DAY, layout)  # below a looser threshold the good rows go on
    assert summary["tables"]["events_part"] == 99 and summary["quarantined"]["events"] == 2

    monkeypatch.setenv("LAKEHOUSE_QUARANTINE_MAX_RATE", "5%")
    with pytest.raises(ConfigError, match=r"LAKEHOUSE_QUARANTINE_MAX_RATE.*'5%'"):
        build_silver(DAY, layout)


def test_extra_export_column_is_reported_not_dropped_silently(layout, write_bronze, empty_bronze, caplog):
    empty_bronze()
    fields = [*RESOURCES["events"].fields, "session_type"]
    values = event()
    path = write_bronze("events", csv_bytes(fields, [[*(values[f] for f in RESOURCES["events"].fields), "fg"]]))
    with caplog.at_level("WARNING"):
        summary = build_silver(DAY, layout)
    assert summary["tables"]["events_part"] == 1
    assert summary["schema_drift"] == {"events": ["session_type"]}
    assert any("session_type" in r.getMessage() for r in caplog.records)
    drift = json.loads((layout.reports / "schema_drift" / "date=2026-11-01" / "drift.json").read_text())
    assert drift == {"date": "2026-11-01", "extra_columns": {"events": ["session_type"]}, "type_mismatches": {}}
    assert b"session_type" in gzip.decompress(path.read_bytes())  # still in bronze


def test_revenue_amounts_are_exact_decimals_deduplicated_and_bad_ones_quarantined(layout, write_bronze, empty_bronze,
                                                                                  monkeypatch):  # fmt: skip
    monkeypatch.setenv("LAKEHOUSE_QUARANTINE_MAX_RATE", "0.5")
    empty_bronze()

    def purchase(price: str, order: str) -> dict[str, str]:
        return row("revenue_events", appmetrica_device_id=BIG_ID, event_datetime="2026-11-01 01:30:00",
                   event_timestamp="1762036200", revenue_price=price, revenue_currency="RUB", revenue_quantity="2",
                   revenue_order_id=order, is_revenue_verified="undefined")  # fmt: skip

    prices = ("0.1", "0.1", "-449.00", "0.0000000015", "1,99", "NaN")  # the second is a duplicate of the first
    write_bronze("revenue_events", [purchase(p, order) for p, order in zip(prices, "aabcde", strict=True)])
    summary = build_silver(DAY, layout)

    table = read(layout, "revenue_events")
    assert table.schema.field("revenue_price").type == pa.decimal128(38, 9)
    assert table.column("revenue_price").to_pylist() == [
        decimal.Decimal("0.100000000"),
        decimal.Decimal("-449.000000000"),
        decimal.Decimal("0.000000002"),
    ]  # half to even at 1e-9; never a binary float
    assert table.column("event_date").to_pylist() == [DAY] * 3
    assert table.column("appmetrica_device_id").to_pylist() == [int(BIG_ID)] * 3
    assert len(set(table.column("record_id").to_pylist())) == 3
    stats = summary["resources"]["revenue_events"]
    assert stats["duplicates"] == 1 and stats["quarantined_by_reason"] == {"invalid_decimal": 2}
