"""The gold marts, end to end: synthetic silver events -> dbt build -> gold Parquet.

Every row and column of the three marts is compared with a brute-force computation made here
directly from the generated events (plain Python per device and per feature date; no SQL shared
with the dbt models). Also: a rebuild gives byte-identical files, and a failing dbt test raises
GoldBuildError naming the test while leaving the published files untouched.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import random
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from gold_tables import gold_location, read_gold, scan_gold
from lake_tables import silver_table

from lakehouse.delta import commit_metadata, locate, open_table, replace_partition
from lakehouse.settings import Layout
from transforms.gold import GoldBuildError, build_gold, dbt_paths, generate_docs
from transforms.silver.schemas import SILVER_TABLES

pytestmark = pytest.mark.integration

FIRST_DAY = dt.date(2026, 10, 1)
EVENT_DAYS = 30  # events dated 2026-10-01 .. 2026-10-30
LAST_EXPORT = FIRST_DAY + dt.timedelta(days=EVENT_DAYS)  # 2026-10-31 carries only late arrivals
MARTS = ("device_attributes_daily", "device_features_daily", "dim_devices", "fct_device_daily")
# gold marts of the fitted feature transformers and of feature monitoring (tests/integration/
# test_feature_transformers.py and test_feature_drift.py check them)
TRANSFORMER_MARTS = ("device_features_daily_transformed", "feature_transformer_state", "feature_stats_daily")
REGISTRY_FILES = ("_registry/feature_registry.json", "_registry/feature_registry.parquet")

# devices with a hand-made history, all with ids above the signed 64-bit range
NULL_SESSIONS_DEVICE = 2**64 - 1
TIE_BY_RECEIVE_DEVICE = 2**63 + 11
TIE_BY_EVENT_ID_DEVICE = 2**63 + 12
TIE_WITH_NULL_RECEIVE_DEVICE = 2**63 + 13


# --------------------------------------------------------------------------- synthetic silver


@dataclass
class _Gen:
    rng: random.Random
    rows: list[dict]
    next_session: int = 1

    def session(self) -> int:
        self.next_session += 1
        return 10_000 + self.next_session

    def event_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"


_EVENT_NAMES = ["app_open", "screen_view", "purchase", "add_to_cart", "search", "push_open", "level_up"]
_OS = [("android", ["12", "13", "14"]), ("ios", ["16.4", "17.1", "17.2"])]
_MODELS = ["Pixel 7", "Pixel 8", "Galaxy S22", "iPhone 14", "iPhone 15", None]
_COUNTRIES = ["RU", "KZ", "BY", "AM", None]
_DEVICE_TYPES = ["phone", "tablet", "tv", None]
_VERSIONS = ["1.0.0", "1.1.0", "1.2.0", None]


def _add_event(
    gen: _Gen,
    device: int,
    at: dt.datetime,
    *,
    session_id: int | None,
    name: str | None = None,
    receive_delay: int | None = -1,
    export_delay_days: int = 0,
    attrs: dict | None = None,
) -> None:
    rng = gen.rng
    if receive_delay == -1:
        receive_delay = rng.choice([1, 5, 30, 600, 3600, None])
    os_name, versions = rng.choice(_OS)
    row = {
        "event_id": gen.event_id(),
        "event_date": at.date(),
        "event_datetime": at,
        "event_timestamp": int(at.replace(tzinfo=dt.UTC).timestamp()) - 3 * 3600,
        "event_receive_datetime": None if receive_delay is None else at + dt.timedelta(seconds=receive_delay),
        "event_receive_timestamp": None
        if receive_delay is None
        else int(at.replace(tzinfo=dt.UTC).timestamp()) - 3 * 3600 + receive_delay,
        "event_name": name or rng.choice(_EVENT_NAMES),
        "event_json": json.dumps({"n": rng.randint(0, 9)}),
        "session_id": session_id,
        "installation_id": f"inst-{device % 1000}",
        "profile_id": None if rng.random() < 0.5 else f"user-{device % 997}",
        "appmetrica_device_id": device,
        "os_name": os_name,
        "os_version": rng.choice([*versions, None]),
        "device_model": rng.choice(_MODELS),
        "app_version_name": rng.choice(_VERSIONS),
        "country_iso_code": rng.choice(_COUNTRIES),
        "device_type": rng.choice(_DEVICE_TYPES),
        "city": rng.choice(["Moscow", "Almaty", None]),
        "application_id": 4242,
        "export_date": at.date() + dt.timedelta(days=export_delay_days),
    }
    row.update(attrs or {})
    gen.rows.append(row)


def _active_days(rng: random.Random, kind: str) -> list[int]:
    if kind == "daily":
        start = rng.randint(0, 3)
        return list(range(start, EVENT_DAYS))
    if kind == "sporadic":
        return [d for d in range(EVENT_DAYS) if rng.random() < 0.2] or [rng.randrange(EVENT_DAYS)]
    if kind == "churned":
        start = rng.randint(0, 4)
        return list(range(start, start + rng.randint(1, 8)))
    if kind == "late":
        return sorted(rng.sample(range(EVENT_DAYS - 7, EVENT_DAYS), rng.randint(1, 4)))
    if kind == "gap":  # two early days, silent for 11-25 days, then back once
        first = rng.randint(0, 3)
        return [first, first + 1, min(EVENT_DAYS - 1, first + rng.randint(12, 26))]
    return [rng.randrange(EVENT_DAYS)]  # one_shot


def make_events(seed: int = 20261101, devices: int = 300) -> list[dict]:
    rng = random.Random(seed)
    gen = _Gen(rng=rng, rows=[])
    kinds = ["daily"] * 40 + ["sporadic"] * 130 + ["churned"] * 60 + ["late"] * 30 + ["gap"] * 25 + ["one_shot"] * 15
    ids: set[int] = set()
    while len(ids) < devices:
        ids.add(rng.getrandbits(64) | (1 << 63) if rng.random() < 0.5 else rng.randrange(1, 2**63))
    for device, kind in zip(sorted(ids), kinds, strict=False):
        open_session: int | None = None
        for day_index in _active_days(rng, kind):
            day = FIRST_DAY + dt.timedelta(days=day_index)
            sessions = [open_session] if open_session and rng.random() < 0.5 else []  # spans midnight
            sessions += [gen.session() for _ in range(rng.randint(1, 3))]
            for _ in range(rng.randint(1, 9)):
                at = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=rng.randrange(86_400))
                session = None if rng.random() < 0.1 else rng.choice(sessions)
                late = 1 if rng.random() < 0.05 else 0
                _add_event(gen, device, at, session_id=session, export_delay_days=late)
            open_session = sessions[-1]

    # a device whose events never carry a session_id
    for day_index in (3, 4, 20):
        at = dt.datetime.combine(FIRST_DAY + dt.timedelta(days=day_index), dt.time(9, 30))
        _add_event(gen, NULL_SESSIONS_DEVICE, at, session_id=None)
        _add_event(gen, NULL_SESSIONS_DEVICE, at + dt.timedelta(minutes=5), session_id=None)

    # latest-event tie-breaks: equal event_datetime, decided by receive time, then by event_id
    tie_at = dt.datetime(2026, 10, 29, 18, 45, 0)
    for device in (TIE_BY_RECEIVE_DEVICE, TIE_BY_EVENT_ID_DEVICE, TIE_WITH_NULL_RECEIVE_DEVICE):
        _add_event(gen, device, tie_at - dt.timedelta(days=5), session_id=gen.session(), receive_delay=99_999)
    _add_event(gen, TIE_BY_RECEIVE_DEVICE, tie_at, session_id=1, receive_delay=50, attrs={"os_version": None})
    _add_event(gen, TIE_BY_RECEIVE_DEVICE, tie_at, session_id=1, receive_delay=10, attrs={"os_version": "14"})
    for event_id, version in (("bbbb", "17.2"), ("aaaa", "17.1"), ("cccc", "16.4")):
        _add_event(
            gen, TIE_BY_EVENT_ID_DEVICE, tie_at, session_id=2, receive_delay=30,
            attrs={"event_id": event_id * 8, "os_name": "ios", "os_version": version},
        )  # fmt: skip
    _add_event(
        gen, TIE_WITH_NULL_RECEIVE_DEVICE, tie_at, session_id=3, receive_delay=None, attrs={"event_id": "0" * 32}
    )
    _add_event(gen, TIE_WITH_NULL_RECEIVE_DEVICE, tie_at, session_id=3, receive_delay=7, attrs={"event_id": "f" * 32})

    # the last export day holds only late arrivals: the spine reaches one day past the last event
    for row in gen.rows:
        if row["event_date"] == LAST_EXPORT - dt.timedelta(days=1) and rng.random() < 0.3:
            row["export_date"] = LAST_EXPORT
    return gen.rows


REPORTING_CURRENCY = "USD"  # the default of LAKEHOUSE_REPORTING_CURRENCY


def money_and_stability(events: list[dict]) -> dict[str, list[dict]]:
    """Rows of revenue_events, ad_revenue_events, crashes and errors derived from some of ``events`` (by event name
    and event_id digits, no random stream: the events stay as they were), at the event's time and export date."""
    out: dict[str, list[dict]] = {"revenue_events": [], "ad_revenue_events": [], "crashes": [], "errors": []}
    for e in events:
        digits = list(hashlib.md5(e["event_id"].encode()).digest()[:9])  # noqa: S324 - not for security
        common = {"appmetrica_device_id": e["appmetrica_device_id"], "export_date": e["export_date"],
                  "record_id": f"{e['event_id']}-x"}  # fmt: skip
        if e["event_name"] == "purchase" and digits[0] % 2 == 0:
            cents = (digits[1] * 16 + digits[2]) * 7 + 1
            out["revenue_events"].append(common | {
                "event_date": e["event_date"], "event_datetime": e["event_datetime"],
                "revenue_price": decimal.Decimal(cents if digits[3] % 16 else -cents) / 100,  # 1 in 16 is a refund
                "revenue_currency": ("USD", "USD", "USD", "RUB", "EUR", None)[digits[4] % 6],
                "revenue_quantity": (1, 1, 2, None)[digits[5] % 4],
            })  # fmt: skip
        elif e["event_name"] == "screen_view" and digits[0] % 3 == 0:
            out["ad_revenue_events"].append(common | {
                "ad_revenue_date": e["event_date"], "ad_revenue_datetime": e["event_datetime"],
                "ad_revenue": decimal.Decimal(digits[1] * 4096 + digits[2] * 256 + digits[3] + 1).scaleb(-9),
                "ad_revenue_currency": ("USD", "USD", "EUR")[digits[4] % 3],
            })  # fmt: skip
        elif e["event_name"] == "level_up" and digits[0] % 8 < 3:
            out["crashes"].append(common | {"crash_date": e["event_date"], "crash_datetime": e["event_datetime"]})
        elif e["event_name"] == "search" and digits[0] % 2 == 0:
            out["errors"].append(common | {"error_date": e["event_date"], "error_datetime": e["event_datetime"]})
    return out


def _write_partition(root: Path, table: str, export_date: dt.date, rows: list[dict]) -> None:
    schema = SILVER_TABLES[table].schema
    columns: dict[str, list] = {name: [] for name in schema.names}
    for n, row in enumerate(rows):
        full = {**row, "bronze_file": f"bronze/appmetrica/{table}/date={export_date}/{table}.csv", "bronze_row": n}
        for name in schema.names:
            columns[name].append(full.get(name))
    data = pa.Table.from_pydict(columns, schema=schema)
    replace_partition(locate(f"silver/{table}", Layout(root)), data, column="export_date", value=export_date)


def write_silver(root: Path, rows: list[dict]) -> None:
    """events_part of ``rows`` and the revenue, ad revenue, crash and error rows derived from them."""
    by_export: dict[dt.date, list[dict]] = defaultdict(list)
    for row in rows:
        by_export[row["export_date"]].append(row)
    for export_date, part in sorted(by_export.items()):
        _write_partition(root, "events_part", export_date, part)
        for table, derived in money_and_stability(part).items():
            _write_partition(root, table, export_date, derived)


# --------------------------------------------------------------------------- brute-force truth


def expected_fct_device_daily(events: pd.DataFrame) -> list[tuple]:
    out = []
    for (device, day), grp in events.groupby(["appmetrica_device_id", "event_date"], sort=True):
        sessions = {int(s) for s in grp["session_id"] if not pd.isna(s)}
        out.append(
            (
                int(device),
                day,
                len(grp),
                len(sessions),
                len(set(grp["event_name"])),
                min(grp["event_datetime"]).to_pydatetime(),
                max(grp["event_datetime"]).to_pydatetime(),
            )
        )
    return out


ATTRIBUTES = ("os_name", "os_version", "device_model", "app_version_name", "country_iso_code", "device_type")


def latest_event(records: list[dict]) -> dict:
    """The latest event: greatest event_datetime, then greatest known receive time, then smallest event_id."""
    latest_at = max(r["event_datetime"] for r in records)
    candidates = [r for r in records if r["event_datetime"] == latest_at]
    known = [r for r in candidates if not pd.isna(r["event_receive_timestamp"])]
    if known:
        latest_receive = max(r["event_receive_timestamp"] for r in known)
        candidates = [r for r in known if r["event_receive_timestamp"] == latest_receive]
    return min(candidates, key=lambda r: r["event_id"])


def attribute_values(event: dict) -> tuple:
    def value(v: object) -> object:
        return None if v is None or (not isinstance(v, str) and pd.isna(v)) else v

    return tuple(value(event[c]) for c in ATTRIBUTES)


def expected_dim_devices(events: pd.DataFrame) -> list[tuple]:
    out = []
    for device, grp in events.groupby("appmetrica_device_id", sort=True):
        records = grp.to_dict("records")
        winner = latest_event(records)
        out.append(
            (
                int(device),
                min(r["event_date"] for r in records),
                max(r["event_date"] for r in records),
                winner["event_datetime"].to_pydatetime(),
                winner["event_id"],
                *attribute_values(winner),
            )
        )
    return out


def expected_device_attributes_daily(events: pd.DataFrame) -> list[tuple]:
    """Per device and spine date with an event in the 28 days ending on it: the latest event dated up to that date."""
    spine_start = events["event_date"].min()
    spine_end = events["export_date"].max()
    spine = [spine_start + dt.timedelta(days=i) for i in range((spine_end - spine_start).days + 1)]
    out = []
    for device, grp in events.groupby("appmetrica_device_id", sort=True):
        records = grp.to_dict("records")
        for feature_date in spine:
            so_far = [r for r in records if r["event_date"] <= feature_date]
            if not any(r["event_date"] >= feature_date - dt.timedelta(days=27) for r in so_far):
                continue
            winner = latest_event(so_far)
            out.append(
                (int(device), feature_date, winner["event_datetime"].to_pydatetime(), winner["event_id"],
                 *attribute_values(winner))
            )  # fmt: skip
    return out


def expected_device_features_daily(events: pd.DataFrame, extra: dict[str, list[dict]] | None = None) -> list[tuple]:
    """Brute force over silver events and the revenue, ad revenue, crash and error rows (``extra``, by table name;
    derived from ``events`` as write_silver does when not given)."""
    if extra is None:
        extra = money_and_stability(events.to_dict("records"))
    for rows in extra.values():
        for r in rows:
            r["appmetrica_device_id"] = int(r["appmetrica_device_id"])
    spine_start = events["event_date"].min()
    spine_end = events["export_date"].max()
    spine = [spine_start + dt.timedelta(days=i) for i in range((spine_end - spine_start).days + 1)]
    out = []
    for device, grp in events.groupby("appmetrica_device_id", sort=True):
        records = [(r["event_date"], r["session_id"]) for r in grp.to_dict("records")]
        for feature_date in spine:
            past = [(d, s) for d, s in records if d <= feature_date]  # nothing after feature_date
            in_28 = [(d, s) for d, s in past if (feature_date - d).days <= 27]
            if not in_28:
                continue
            in_7 = [(d, s) for d, s in past if (feature_date - d).days <= 6]
            money = _money_windows(extra, int(device), feature_date)
            out.append(
                (
                    int(device),
                    feature_date,
                    sum(1 for d, _ in past if d == feature_date),
                    len(in_7),
                    len(in_28),
                    len({int(s) for _, s in in_7 if not pd.isna(s)}),
                    len({d for d, _ in in_28}),
                    (feature_date - min(d for d, _ in past)).days,
                    (feature_date - max(d for d, _ in past)).days,
                    *money,
                )
            )
    return out


def _money_windows(extra: dict[str, list[dict]], device: int, feature_date: dt.date) -> tuple:
    """purchases_28d .. errors_7d of one device and feature date, from the derived rows (brute force)."""

    def within(rows: list[dict], date_column: str, days: int) -> list[dict]:
        return [r for r in rows if r["appmetrica_device_id"] == device
                and 0 <= (feature_date - r[date_column]).days < days]  # fmt: skip

    revenue = within(extra["revenue_events"], "event_date", 28)
    ads = within(extra["ad_revenue_events"], "ad_revenue_date", 28)
    in_currency = [r for r in revenue if r["revenue_currency"] == REPORTING_CURRENCY]
    ads_in_currency = [r for r in ads if r["ad_revenue_currency"] == REPORTING_CURRENCY]
    return (
        sum(1 for r in revenue if r["revenue_price"] >= 0),
        sum((r["revenue_price"] * (r["revenue_quantity"] or 1) for r in in_currency), decimal.Decimal(0)),
        len(revenue) - len(in_currency),
        sum((r["ad_revenue"] for r in ads_in_currency), decimal.Decimal(0)),
        len(ads) - len(ads_in_currency),
        len(within(extra["crashes"], "crash_date", 7)),
        len(within(extra["errors"], "error_date", 7)),
    )


COLUMNS = {
    "device_attributes_daily": [
        "appmetrica_device_id", "feature_date", "last_event_at", "latest_event_id", "os_name", "os_version",
        "device_model", "app_version_name", "country_iso_code", "device_type",
    ],
    "fct_device_daily": [
        "appmetrica_device_id", "event_date", "events_count", "sessions_count", "distinct_event_names",
        "first_event_at", "last_event_at",
    ],
    "dim_devices": [
        "appmetrica_device_id", "first_seen_date", "last_seen_date", "last_event_at", "latest_event_id",
        "os_name", "os_version", "device_model", "app_version_name", "country_iso_code", "device_type",
    ],
    "device_features_daily": [
        "appmetrica_device_id", "feature_date", "events_1d", "events_7d", "events_28d", "sessions_7d",
        "active_days_28d", "days_since_first_seen", "days_since_last_event", "purchases_28d", "revenue_28d",
        "revenue_other_currency_events_28d", "ad_revenue_28d", "ad_revenue_other_currency_events_28d", "crashes_7d",
        "errors_7d",
    ],
}  # fmt: skip


def read_mart(root: Path, mart: str) -> list[tuple]:
    """Read a mart the way docs/contracts.md promises consumers can (DuckDB delta_scan), in key order.

    pyarrow through deltalake returns the same rows, with the same types.
    """
    rel = scan_gold(root, mart)
    assert rel.columns == COLUMNS.get(mart, rel.columns)
    rows = rel.fetchall()
    through_arrow = read_gold(root, mart)
    assert through_arrow.column_names == rel.columns
    assert [tuple(r.values()) for r in through_arrow.to_pylist()] == rows, f"{mart}: pyarrow and DuckDB differ"
    return rows


def gold_hashes(root: Path) -> dict[str, str]:
    """Every mart's table contents (not its version) and the registry files' bytes, hashed."""
    hashes = {
        f"gold/{m}": hashlib.sha256(repr(read_gold(root, m).to_pylist()).encode()).hexdigest()
        for m in (*MARTS, *TRANSFORMER_MARTS)
    }
    for path in sorted((root / "gold" / "_registry").iterdir()):
        hashes[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def gold_versions(root: Path) -> dict[str, int]:
    return {m: open_table(gold_location(root, m)).version() for m in (*MARTS, *TRANSFORMER_MARTS)}


# --------------------------------------------------------------------------- fixtures


@dataclass
class Built:
    root: Path
    events: pd.DataFrame
    summary: dict


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("lakehouse")
    rows = make_events()
    write_silver(root, rows)
    events = pd.DataFrame(rows)
    events["session_id"] = events["session_id"].astype("UInt64")
    events["event_receive_timestamp"] = events["event_receive_timestamp"].astype("Int64")
    summary = build_gold(Layout(root))
    return Built(root=root, events=events, summary=summary)


# --------------------------------------------------------------------------- tests


def test_synthetic_data_covers_the_edge_cases(built: Built) -> None:
    ev = built.events
    assert ev["event_id"].is_unique
    assert ev["appmetrica_device_id"].nunique() >= 300
    assert (ev["appmetrica_device_id"].map(int) >= 2**63).any()
    assert ev.loc[ev["appmetrica_device_id"] == NULL_SESSIONS_DEVICE, "session_id"].isna().all()
    assert ev["export_date"].max() == LAST_EXPORT > ev["event_date"].max()
    assert (ev["export_date"] > ev["event_date"]).sum() > 10  # late arrivals
    extra = money_and_stability(ev.to_dict("records"))
    revenue = extra["revenue_events"]
    assert any(r["revenue_price"] < 0 for r in revenue) and any(r["revenue_quantity"] is None for r in revenue)
    assert {r["revenue_currency"] for r in revenue} == {"USD", "RUB", "EUR", None}
    assert {r["ad_revenue_currency"] for r in extra["ad_revenue_events"]} == {"USD", "EUR"}
    assert min(len(rows) for rows in extra.values()) > 20


def test_revenue_and_stability_features_are_not_trivially_zero(built: Built) -> None:
    rows = read_mart(built.root, "device_features_daily")
    names = COLUMNS["device_features_daily"]
    for column in ("purchases_28d", "revenue_28d", "revenue_other_currency_events_28d", "ad_revenue_28d",
                   "ad_revenue_other_currency_events_28d", "crashes_7d", "errors_7d"):  # fmt: skip
        assert any(row[names.index(column)] for row in rows), column
    assert any(row[names.index("revenue_28d")] < 0 for row in rows)  # a refund alone in its window


def test_summary_names_marts_rows_and_tests(built: Built) -> None:
    summary = built.summary
    assert set(summary["marts"]) == {*MARTS, *TRANSFORMER_MARTS}
    for mart, info in summary["marts"].items():
        loc = gold_location(built.root, mart)
        assert info["table"] == loc.uri
        assert info["version"] == open_table(loc).version() == 0
        assert info["rows"] == len(read_mart(built.root, mart))
        commit = commit_metadata(loc)
        assert commit["lakehouse.feature_set_version"] == summary["feature_set_version"]
        assert commit["lakehouse.mode"] == "full" and commit["lakehouse.run_id"] == "manual"
        partitions = open_table(loc).metadata().partition_columns
        assert partitions == (["feature_date"] if mart in ("device_features_daily", "device_attributes_daily") else [])
    # stg_appmetrica__events, __revenue_events, __ad_revenue_events, __crashes, __errors, 5 int_*, 4 marts,
    # 2 transformer marts, feature_stats_daily
    assert summary["models"] == {"success": 17}
    assert summary["data_tests"]["pass"] >= 60
    assert set(summary["data_tests"]) == {"pass"}
    assert summary["unit_tests"] == {"pass": 5}
    assert len(summary["feature_set_version"]) == 16
    # gold holds the marts' Delta tables and the registry, nothing else
    gold = built.root / "gold"
    assert sorted(p.name for p in gold.iterdir()) == sorted([*MARTS, *TRANSFORMER_MARTS, "_registry"])
    assert sorted(p.relative_to(gold).as_posix() for p in (gold / "_registry").iterdir()) == sorted(REGISTRY_FILES)


def test_fct_device_daily_matches_brute_force(built: Built) -> None:
    assert read_mart(built.root, "fct_device_daily") == expected_fct_device_daily(built.events)


def test_dim_devices_matches_brute_force(built: Built) -> None:
    actual = read_mart(built.root, "dim_devices")
    assert actual == expected_dim_devices(built.events)
    by_device = {row[0]: row for row in actual}
    assert by_device[TIE_BY_RECEIVE_DEVICE][6] is None  # the later-received event's null wins
    assert by_device[TIE_BY_EVENT_ID_DEVICE][4] == "a" * 32
    assert by_device[TIE_BY_EVENT_ID_DEVICE][6] == "17.1"
    assert by_device[TIE_WITH_NULL_RECEIVE_DEVICE][4] == "f" * 32


def test_device_attributes_daily_matches_brute_force(built: Built) -> None:
    actual = read_mart(built.root, "device_attributes_daily")
    assert actual == expected_device_attributes_daily(built.events)
    features = read_mart(built.root, "device_features_daily")
    assert [row[:2] for row in actual] == [row[:2] for row in features]  # the same rows
    last = {}
    for row in actual:
        last[row[0]] = row
    # on the device's last date the attributes are dim_devices' (the same tie-break)
    dims = {row[0]: row for row in read_mart(built.root, "dim_devices")}
    for device, row in last.items():
        assert row[2:] == dims[device][3:], device
    assert last[TIE_BY_RECEIVE_DEVICE][5] is None  # the later-received event's null wins
    assert last[TIE_BY_EVENT_ID_DEVICE][3] == "a" * 32
    assert last[TIE_WITH_NULL_RECEIVE_DEVICE][3] == "f" * 32
    changed = {r[0] for r in actual if r[4:] != last[r[0]][4:]}
    assert len(changed) > 10, "some devices should change attributes inside the history"


def test_device_features_daily_matches_brute_force(built: Built) -> None:
    actual = read_mart(built.root, "device_features_daily")
    expected = expected_device_features_daily(built.events)
    assert len(actual) == len(expected)
    assert actual == expected
    assert max(row[1] for row in actual) == LAST_EXPORT  # spine runs to the latest export_date
    null_sessions = [row for row in actual if row[0] == NULL_SESSIONS_DEVICE]
    assert null_sessions and all(row[5] == 0 for row in null_sessions)


def test_table_types(built: Built) -> None:
    stored = {m: pa.schema(open_table(gold_location(built.root, m)).schema().to_arrow()) for m in MARTS}
    schemas = {m: read_gold(built.root, m).schema for m in MARTS}
    for mart, schema in schemas.items():
        # Delta has no unsigned type: the ids are DECIMAL(20,0) in the table and read back as written
        assert stored[mart].field("appmetrica_device_id").type == pa.decimal128(20, 0)
        assert schema.field("appmetrica_device_id").type == pa.uint64()
    features = schemas["device_features_daily"]
    assert features.field("feature_date").type == pa.date32()
    for col in COLUMNS["device_features_daily"][2:]:
        money = col in ("revenue_28d", "ad_revenue_28d")
        assert features.field(col).type == (pa.decimal128(38, 9) if money else pa.int64()), col
    assert pa.types.is_timestamp(schemas["fct_device_daily"].field("first_event_at").type)
    assert schemas["fct_device_daily"].field("first_event_at").type.tz is None


def test_every_model_and_column_is_described(built: Built) -> None:
    paths = dbt_paths(Layout(built.root))
    manifest = json.loads((paths["target"] / "manifest.json").read_text())
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert {*MARTS, "stg_appmetrica__events", "stg_appmetrica__mobile_devices"} <= set(models)
    with duckdb.connect(str(paths["database"]), read_only=True) as con:
        built_relations = {r[0] for r in con.sql("select table_name from information_schema.tables").fetchall()}
        for name, node in models.items():
            assert node["description"].startswith("One row per"), name
            assert node["columns"] and all(c["description"] for c in node["columns"].values()), name
            if name in built_relations:  # documented columns are exactly the built ones
                relation = node["relation_name"]
                assert con.sql(f"select * from {relation} limit 0").columns == list(node["columns"])  # noqa: S608


def test_rebuild_leaves_the_tables_identical(built: Built) -> None:
    before, versions = gold_hashes(built.root), gold_versions(built.root)
    assert len(before) == len(MARTS) + len(TRANSFORMER_MARTS) + len(REGISTRY_FILES)
    build_gold(Layout(built.root))
    assert gold_hashes(built.root) == before  # the same rows, and byte-identical registry files
    assert gold_versions(built.root) == {m: v + 1 for m, v in versions.items()}  # one commit per mart


def test_failing_dbt_test_raises_and_keeps_published_gold(built: Built, tmp_path: Path) -> None:
    root = tmp_path / "lakehouse"
    for folder in ("silver", "gold"):
        shutil.copytree(built.root / folder, root / folder)
    before, versions = gold_hashes(root), gold_versions(root)
    # silver is supposed to be deduplicated: the same event exported again on another day
    # breaks the unique event_id test of the staging model
    day, later = FIRST_DAY + dt.timedelta(days=9), FIRST_DAY + dt.timedelta(days=10)
    again = silver_table(Layout(root), "events_part", day).slice(0, 1)
    again = again.set_column(again.schema.get_field_index("export_date"), again.schema.field("export_date"),
                             pa.array([later], pa.date32()))  # fmt: skip
    rows = pa.concat_tables([silver_table(Layout(root), "events_part", later), again])
    replace_partition(locate("silver/events_part", Layout(root)), rows, column="export_date", value=later)

    with pytest.raises(GoldBuildError) as caught:
        build_gold(Layout(root))
    assert "unique_stg_appmetrica__events_event_id" in str(caught.value)
    assert any("unique_stg_appmetrica__events_event_id" in f["unique_id"] for f in caught.value.failures)
    assert caught.value.retryable is False, "a failed data test gives the same verdict on a retry"
    assert gold_hashes(root) == before
    assert gold_versions(root) == versions  # nothing committed


def test_no_silver_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GoldBuildError, match="no silver events_part"):
        build_gold(Layout(tmp_path))


def test_generate_docs(built: Built) -> None:
    docs = generate_docs(Layout(built.root))
    assert docs == built.root / "docs" / "dbt"
    assert (docs / "index.html").exists()
    catalog = json.loads((docs / "catalog.json").read_text())
    assert any(key.endswith(".device_features_daily") for key in catalog["nodes"])


def _silver_rows(event: dict) -> dict[str, list[dict]]:
    """A row or two for each silver table besides events_part, consistent with ``event``."""
    device, at = event["appmetrica_device_id"], event["event_datetime"]
    seen = {"first_seen_at": at, "last_seen_at": at, "observations": 1}
    rows = {
        "mobile_devices": [{"appmetrica_device_id": device, "os_name": "android", "device_model": "Pixel 8", **seen}],
        "technical_data": [
            {"appmetrica_device_id": device, "installation_id": None, "session_id": 7, "session_started_at": at,
             "mcc": 250, "source": "events"},
            {"appmetrica_device_id": device, "installation_id": "i-1", "session_id": 8, "session_started_at": at,
             "source": "sessions_starts"},
        ],
        "tmp_event_properties": [
            {"event_id": event["event_id"], "event_date": event["event_date"], "appmetrica_device_id": device,
             "event_name": event["event_name"], "property_path": "n", "value_text": "3", "value_type": "number"},
        ],
        "permanent_user_properties": [
            {"profile_id": "user-1", "appmetrica_device_id": device, "sessions": 4, "notifications_enabled": True,
             "bronze_file": "bronze/x", "bronze_row": 0},
        ],
        "tmp_user_properties": [
            {"profile_id": "user-1", "attribute_name": "plan", "value_text": "pro", "value_type": "string"},
        ],
        "user_locations": [{"appmetrica_device_id": device, "country_iso_code": None, "city": None, **seen}],
    }  # fmt: skip
    lineage = {"bronze_file": "bronze/x", "bronze_row": 1}
    return {table: [lineage | r for r in table_rows] for table, table_rows in rows.items()}


def test_staging_covers_the_whole_silver_layer(built: Built, tmp_path: Path) -> None:
    from transforms.silver.schemas import SILVER_TABLES

    root = tmp_path / "lakehouse"
    shutil.copytree(built.root / "silver", root / "silver")
    event = built.events.iloc[0].to_dict()
    day = event["export_date"]
    for table, rows in _silver_rows(event).items():
        schema = SILVER_TABLES[table].schema
        columns = {name: [{**row, "export_date": day}.get(name) for row in rows] for name in schema.names}
        data = pa.Table.from_pydict(columns, schema=schema)
        replace_partition(locate(f"silver/{table}", Layout(root)), data, column="export_date", value=day)

    summary = build_gold(Layout(root), select="path:models/staging/appmetrica")
    assert summary["marts"] == {}
    assert summary["models"] == {"success": 11}  # one staging model per silver table
    assert set(summary["data_tests"]) == {"pass"} and summary["data_tests"]["pass"] >= 25
    assert not (root / "gold").exists()
