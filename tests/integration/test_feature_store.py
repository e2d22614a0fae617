"""Gold as a feature store, on gold built from generated data (tests/integration/conftest.py).

Registry completeness against the gold Delta tables, the fitted transformer state and the transformed
mart against plain-Python computations, point-in-time retrieval against a brute-force oracle, the
CLI, and the latest-feature lookup app.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import random
import shutil
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from feature_lake import (
    FIT_END,
    FIT_START,
    LATE_COUNTRY,
    LATE_DEVICE,
    LATE_OS,
    MOVE_DAY,
    MOVER_DEVICE,
    MOVER_FIRST_DAY,
    FeatureLake,
)
from gold_tables import gold_location, read_gold
from lake_tables import silver_table

from lakehouse import cli
from lakehouse.delta import commit_metadata, locate, open_table, replace_partition, replace_table
from lakehouse.features import FeatureError, LatestFeatureStore, get_historical_features, list_features
from lakehouse.features.api import create_app
from lakehouse.features.online import json_value
from lakehouse.settings import Layout
from transforms.gold import build_gold

pytestmark = pytest.mark.integration

NUMERIC = [
    "events_1d", "events_7d", "events_28d", "sessions_7d", "active_days_28d", "days_since_first_seen",
    "days_since_last_event",
]  # fmt: skip
# served by the lookup besides NUMERIC; not transformed
MONEY_AND_STABILITY = [
    "purchases_28d", "revenue_28d", "revenue_other_currency_events_28d", "ad_revenue_28d",
    "ad_revenue_other_currency_events_28d", "crashes_7d", "errors_7d",
]  # fmt: skip
CATEGORICAL = ["os_name", "device_type", "country_iso_code"]
# the point-in-time tests run in both: Moscow has no DST; New York leaves DST on 2026-11-01, inside the data
APP_TIMEZONES = ("Europe/Moscow", "America/New_York")


@pytest.fixture(params=APP_TIMEZONES)
def app_tz(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ZoneInfo:
    """The app's time zone (LAKEHOUSE_APP_TIMEZONE) for one test; the gold lake's local dates do not depend on it."""
    monkeypatch.setenv("LAKEHOUSE_APP_TIMEZONE", request.param)
    return ZoneInfo(request.param)


def rows(lake: FeatureLake, mart: str) -> list[dict[str, Any]]:
    return read_gold(lake.root, mart).to_pylist()


def attributes_by_row(lake: FeatureLake) -> dict[tuple[int, dt.date], dict[str, Any]]:
    return {(r["appmetrica_device_id"], r["feature_date"]): r for r in rows(lake, "device_attributes_daily")}


def states(lake: FeatureLake) -> dict[dt.date, dict[tuple[str, str, Any], dict[str, Any]]]:
    """The fitted states by their date (fit_end_date), each keyed by (transformer, feature, category)."""
    out: dict[dt.date, dict[tuple[str, str, Any], dict[str, Any]]] = defaultdict(dict)
    for r in rows(lake, "feature_transformer_state"):
        out[r["fit_end_date"]][(r["transformer"], r["feature"], r["category"])] = r
    return dict(out)


def state_as_of(all_states: dict[dt.date, dict], day: dt.date) -> dict[tuple[str, str, Any], dict[str, Any]] | None:
    """The state a row dated ``day`` is encoded with: the latest fitted up to it (None before the window)."""
    earlier = [d for d in all_states if d <= day]
    return all_states[max(earlier)] if earlier else None


# --------------------------------------------------------------------------------- registry


def test_every_gold_column_has_a_registry_entry(feature_lake: FeatureLake) -> None:
    registry = list_features(feature_lake.gold)
    assert registry["feature_set_version"] == feature_lake.summary["feature_set_version"]
    entries = {(f["model"], f["column"]): f for f in registry["features"]}
    marts = sorted(p.name for p in feature_lake.gold.iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert len(marts) == 7
    for mart in marts:
        columns = read_gold(feature_lake.root, mart).column_names
        missing = [c for c in columns if (mart, c) not in entries]
        assert not missing, f"gold columns without a registry entry: {mart}.{missing}"
        assert registry["models"][mart]["columns"] == columns  # and no entry for a column that is not there
        for column in columns:
            entry = entries[(mart, column)]
            for key in ("entity", "value_type", "description", "owner", "window"):
                assert entry[key], (mart, column, key)
            assert isinstance(entry["tags"], list) and entry["tags"]
            assert entry["grain"] == registry["models"][mart]["grain"]
    copy = pq.read_table(feature_lake.gold / "_registry" / "feature_registry.parquet").to_pylist()
    assert [{k: v for k, v in r.items() if k != "feature_set_version"} for r in copy] == registry["features"]
    assert {r["feature_set_version"] for r in copy} == {registry["feature_set_version"]}


def test_cli_lists_the_registry_as_a_table(feature_lake: FeatureLake, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["features", "--source", str(feature_lake.gold), "list"]) == 0
    out = capsys.readouterr().out
    registry = list_features(feature_lake.gold)
    assert registry["feature_set_version"] in out.splitlines()[0]
    lines = out.splitlines()[3:]
    assert len(lines) == len(registry["features"])
    for line, entry in zip(lines, registry["features"], strict=True):
        assert line.split()[0] == entry["name"] and entry["version"] in line and entry["window"] in line
    assert cli.main(["features", "--source", str(feature_lake.gold), "list", "--model", "nope"]) == 2
    assert "no gold model 'nope'" in capsys.readouterr().err


# --------------------------------------------------------------------------------- transformers


def test_transformer_state_matches_a_plain_python_fit(feature_lake: FeatureLake) -> None:
    """One state per date of the window, each fitted on the window's rows up to its date only."""
    features = rows(feature_lake, "device_features_daily")
    window = [r for r in features if FIT_START <= r["feature_date"] <= FIT_END]
    assert 0 < len(window) < len(features)
    all_states = states(feature_lake)
    assert sorted(all_states) == sorted({r["feature_date"] for r in window})
    versions = {d: {r["state_version"] for r in state.values()} for d, state in all_states.items()}
    assert all(len(v) == 1 and len(next(iter(v))) == 32 for v in versions.values())
    assert len({next(iter(v)) for v in versions.values()}) == len(all_states)
    attributes = attributes_by_row(feature_lake)
    assert LATE_DEVICE not in {r["appmetrica_device_id"] for r in window}
    for day, state in all_states.items():
        fitted = [r for r in window if r["feature_date"] <= day]
        for r in state.values():
            assert (r["fit_start_date"], r["fit_end_date"], r["fit_rows"]) == (FIT_START, day, len(fitted))
        for column in NUMERIC:
            values = [r[column] for r in fitted]
            std = state[("standard_scaler", column, None)]
            assert math.isclose(std["mean"], statistics.fmean(values), rel_tol=1e-12)
            assert math.isclose(std["std"], statistics.pstdev(values), rel_tol=1e-12, abs_tol=1e-12)
            assert std["scale"] == (std["std"] if std["std"] > 0 else 1.0)
            minmax = state[("min_max_scaler", column, None)]
            assert (minmax["data_min"], minmax["data_max"]) == (min(values), max(values))
            assert minmax["scale"] == (max(values) - min(values) or 1.0)
        for column in CATEGORICAL:
            # fitted on the attributes as of each row, not on the devices' latest values; numbered in
            # the order of the date each category first appears in the window, ties in code-point order
            seen = [(r["feature_date"], attributes[(r["appmetrica_device_id"], r["feature_date"])][column])
                    for r in fitted]  # fmt: skip
            values = [v for _, v in seen]
            first = {}
            for d, v in sorted(seen, key=lambda x: (x[0], x[1] or "")):
                if v is not None:
                    first.setdefault(v, d)
            categories = sorted(first, key=lambda c: (first[c], c))
            for transformer in ("label_encoder", "one_hot_encoder"):
                got = sorted(
                    (r["category_index"], r["category"], r["category_rows"])
                    for (t, f, _), r in state.items()
                    if t == transformer and f == column and not r["is_unknown_bucket"]
                )
                assert got == [(i, c, values.count(c)) for i, c in enumerate(categories)]
                unknown = [
                    r for (t, f, _), r in state.items() if t == transformer and f == column and r["is_unknown_bucket"]
                ]
                assert len(unknown) == 1 and unknown[0]["category_rows"] == values.count(None)
                assert unknown[0]["category_index"] == (-1 if transformer == "label_encoder" else len(categories))
        assert LATE_OS not in {c for (_, f, c) in state if f == "os_name"}


def test_transformed_mart_applies_the_state(feature_lake: FeatureLake) -> None:
    all_states = states(feature_lake)
    attributes = attributes_by_row(feature_lake)
    features = rows(feature_lake, "device_features_daily")
    transformed = rows(feature_lake, "device_features_daily_transformed")
    assert [(r["appmetrica_device_id"], r["feature_date"]) for r in transformed] == [
        (r["appmetrica_device_id"], r["feature_date"]) for r in features
    ]
    outside_range = before_window = 0
    for src, out in zip(features, transformed, strict=True):
        state = state_as_of(all_states, src["feature_date"])
        if state is None:  # dated before the training window: nothing is fitted yet
            before_window += 1
            assert src["feature_date"] < FIT_START
            assert all(v is None for k, v in out.items() if k not in ("appmetrica_device_id", "feature_date"))
            continue
        assert out["state_version"] == next(iter(state.values()))["state_version"]
        for column in NUMERIC:
            std, minmax = state[("standard_scaler", column, None)], state[("min_max_scaler", column, None)]
            assert math.isclose(out[f"{column}_standard"], (src[column] - std["mean"]) / std["scale"], abs_tol=1e-12)
            expected = (src[column] - minmax["data_min"]) / minmax["scale"]
            assert math.isclose(out[f"{column}_min_max"], expected, abs_tol=1e-12)
            outside_range += not 0 <= expected <= 1
        for column in CATEGORICAL:
            value = attributes[(src["appmetrica_device_id"], src["feature_date"])][column]
            known = state.get(("label_encoder", column, value)) if value is not None else None
            width = 1 + sum(1 for (t, f, c) in state if t == "one_hot_encoder" and f == column and c is not None)
            label = known["category_index"] if known else -1
            assert out[f"{column}_label"] == label
            assert out[f"{column}_one_hot"] == [int(i == (label if known else width - 1)) for i in range(width)]
    assert before_window > 0 and outside_range > 0, "rows outside the training window should leave [0, 1] somewhere"
    late = [r for r in transformed if r["appmetrica_device_id"] == LATE_DEVICE]
    assert late and all(r["os_name_label"] == -1 and r["os_name_one_hot"][-1] == 1 for r in late)
    assert all(attributes[(LATE_DEVICE, r["feature_date"])]["country_iso_code"] == LATE_COUNTRY for r in late)
    assert all(r["country_iso_code_label"] == -1 for r in late)


def test_applying_the_same_state_again_gives_identical_output(feature_lake: FeatureLake, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    for folder in ("silver", "gold", "warehouse"):
        shutil.copytree(feature_lake.root / folder, root / folder)
    mart = "device_features_daily_transformed"
    before = read_gold(root, mart)
    registry_before = (root / "gold/_registry/feature_registry.json").read_bytes()
    summary = build_gold(Layout(root), select="device_features_daily_transformed")
    assert set(summary["marts"]) == {"device_features_daily_transformed"}
    assert read_gold(root, mart).equals(before)
    assert commit_metadata(gold_location(root, mart))["lakehouse.mode"] == "selected"
    assert (root / "gold/_registry/feature_registry.json").read_bytes() == registry_before


# --------------------------------------------------------------------------------- point in time


def oracle(lake: FeatureLake, mart: str, date_column: str) -> dict[int, list[tuple[dt.date, dict[str, Any]]]]:
    by_device: dict[int, list[tuple[dt.date, dict[str, Any]]]] = defaultdict(list)
    for r in rows(lake, mart):
        by_device[r["appmetrica_device_id"]].append((r[date_column], r))
    return by_device


def latest_before(history: list[tuple[dt.date, dict[str, Any]]], cutoff: dt.date) -> tuple[dt.date, dict] | None:
    earlier = [(d, r) for d, r in history if d < cutoff]
    return max(earlier, key=lambda x: x[0]) if earlier else None


def local_date(text: str, tz: ZoneInfo) -> dt.date:
    value = dt.datetime.fromisoformat(text)
    return (value.astimezone(tz) if value.tzinfo else value).date()


def utc_text(local: dt.datetime, tz: ZoneInfo) -> str:
    return local.replace(tzinfo=tz).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_historical_features_match_a_brute_force_oracle(feature_lake: FeatureLake, app_tz: ZoneInfo) -> None:
    daily = oracle(feature_lake, "device_features_daily", "feature_date")
    fct = oracle(feature_lake, "fct_device_daily", "event_date")
    transformed = oracle(feature_lake, "device_features_daily_transformed", "feature_date")
    rng = random.Random(5)
    known = sorted(daily)
    first = {d: min(h)[0] for d, h in daily.items()}
    texts: list[tuple[int, str]] = []
    for _ in range(600):
        device = rng.choice(known) if rng.random() < 0.9 else rng.randrange(1, 2**64)
        day = dt.date(2026, 9, 28) + dt.timedelta(days=rng.randrange(40))
        kind = rng.randrange(6)
        if kind == 0:
            text = f"{day}T00:00:00"
        elif kind == 1:
            text = f"{day} 23:59:59.999999"
        elif kind == 2:  # local midnight of `day`, in UTC
            text = utc_text(dt.datetime.combine(day, dt.time()), app_tz)
        elif kind == 3:  # one second earlier: still the previous local day
            text = utc_text(dt.datetime.combine(day, dt.time()) - dt.timedelta(seconds=1), app_tz)
        elif kind == 4:
            text = day.isoformat()
        else:
            text = f"{day}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00"
        texts.append((device, text))
    # window edges of real devices: their first feature date, and the day after it
    for device in known[:40]:
        f = first[device]
        texts += [
            (device, f"{f}T00:00:00"),
            (device, f"{f}T23:59:59"),
            (device, f"{f + dt.timedelta(days=1)}T00:00:00"),
        ]
    entity_df = pd.DataFrame(
        {
            "appmetrica_device_id": [str(d) for d, _ in texts],
            "event_timestamp": [t for _, t in texts],
            "label": range(len(texts)),
        }
    )
    result = get_historical_features(
        entity_df,
        ["events_7d", "days_since_last_event", "events_count", "os_name_one_hot", "events_1d_standard", "revenue_28d",
         "crashes_7d"],
        source=feature_lake.gold,
    )  # fmt: skip
    assert list(result.columns) == [
        "appmetrica_device_id", "event_timestamp", "label", "events_7d", "days_since_last_event", "events_count",
        "os_name_one_hot", "events_1d_standard", "revenue_28d", "crashes_7d", "device_features_daily__feature_date",
        "fct_device_daily__event_date", "device_features_daily_transformed__feature_date",
    ]  # fmt: skip
    assert list(result["label"]) == list(range(len(texts)))
    nulls = 0
    for (device, text), row in zip(texts, result.to_dict("records"), strict=True):
        cutoff = local_date(text, app_tz)
        hit = latest_before(daily.get(device, []), cutoff)
        if hit is None:
            nulls += 1
            assert pd.isna(row["events_7d"]) and pd.isna(row["device_features_daily__feature_date"]), (device, text)
            assert pd.isna(row["revenue_28d"]) and pd.isna(row["crashes_7d"])
        else:
            assert row["device_features_daily__feature_date"] == hit[0] < cutoff
            assert (row["events_7d"], row["days_since_last_event"], row["revenue_28d"], row["crashes_7d"]) == (
                hit[1]["events_7d"],
                hit[1]["days_since_last_event"],
                hit[1]["revenue_28d"],
                hit[1]["crashes_7d"],
            )
            assert isinstance(row["revenue_28d"], decimal.Decimal)
        hit = latest_before(fct.get(device, []), cutoff)
        assert (None if pd.isna(row["events_count"]) else row["events_count"]) == (hit and hit[1]["events_count"])
        hit = latest_before(transformed.get(device, []), cutoff)
        if hit is None or hit[1]["state_version"] is None:  # no row, or one dated before the training window
            assert row["os_name_one_hot"] is None and pd.isna(row["events_1d_standard"])
        else:
            assert list(row["os_name_one_hot"]) == hit[1]["os_name_one_hot"]
            assert row["events_1d_standard"] == hit[1]["events_1d_standard"]
    assert 50 < nulls < len(texts) - 300
    edges = result.iloc[600:]
    assert edges["events_7d"].iloc[0::3].isna().all()  # first feature date, midnight: nothing strictly before
    assert edges["events_7d"].iloc[1::3].isna().all()  # same day, 23:59:59
    assert edges["events_7d"].iloc[2::3].notna().all()  # next midnight: the first row
    assert str(result["events_7d"].dtype) == "Int64"


def test_timestamp_and_id_types(feature_lake: FeatureLake, app_tz: ZoneInfo) -> None:
    daily = oracle(feature_lake, "device_features_daily", "feature_date")
    device = max(daily)  # above the signed 64-bit range
    assert device >= 2**63
    day = sorted(daily[device])[1][0] + dt.timedelta(days=1)
    midnight = dt.datetime.combine(day, dt.time())
    expected = latest_before(daily[device], day)
    frames = [
        pd.DataFrame({"appmetrica_device_id": pd.array([device], dtype="UInt64"), "event_timestamp": [midnight]}),
        pd.DataFrame({"appmetrica_device_id": [device], "event_timestamp": [day]}),  # Python int, a date
        pd.DataFrame(
            {
                "appmetrica_device_id": [str(device)],
                "event_timestamp": pd.to_datetime([midnight]).tz_localize(app_tz).tz_convert("UTC"),
            }
        ),
        pa.table({"appmetrica_device_id": pa.array([device], pa.uint64()), "event_timestamp": [midnight]}),
    ]
    for frame in frames:
        out = get_historical_features(frame, "events_28d,device_features_daily.sessions_7d", source=feature_lake.gold)
        assert out["device_features_daily__feature_date"][0] == expected[0]
        assert (out["events_28d"][0], out["sessions_7d"][0]) == (expected[1]["events_28d"], expected[1]["sessions_7d"])
        assert out["appmetrica_device_id"].astype(str)[0] == str(device)


# UTC instants around local midnights -> the feature_date they must see (the latest one strictly before the local
# date); New York: 2026-11-01 starts at 04:00Z (EDT, -4), 2026-11-02 at 05:00Z (EST, -5)
DST_CASES = {
    "America/New_York": [
        ("2026-11-01T03:59:59Z", "2026-10-30"),
        ("2026-11-01T04:00:00Z", "2026-10-31"),
        ("2026-11-02T04:59:59Z", "2026-10-31"),
        ("2026-11-02T05:00:00Z", "2026-11-01"),
    ],
    "Europe/Moscow": [
        ("2026-10-31T20:59:59Z", "2026-10-30"),
        ("2026-10-31T21:00:00Z", "2026-10-31"),
        ("2026-11-01T20:59:59Z", "2026-10-31"),
        ("2026-11-01T21:00:00Z", "2026-11-01"),
    ],
}


def test_local_dates_across_the_dst_change(feature_lake: FeatureLake, app_tz: ZoneInfo) -> None:
    """The mover device has a row on every date: each instant sees the row of the day before its local date."""
    cases = DST_CASES[app_tz.key]
    stamps = [text for text, _ in cases]
    frames = [
        pd.DataFrame({"appmetrica_device_id": [MOVER_DEVICE] * len(stamps), "event_timestamp": stamps}),
        pd.DataFrame({"appmetrica_device_id": [MOVER_DEVICE] * len(stamps), "event_timestamp": pd.to_datetime(stamps)}),
    ]
    for frame in frames:
        result = get_historical_features(frame, ["country_iso_code", "events_7d"], source=feature_lake.gold)
        for column in ("device_attributes_daily__feature_date", "device_features_daily__feature_date"):
            assert [d.isoformat() for d in result[column]] == [day for _, day in cases], column


def test_attributes_are_as_of_each_date(feature_lake: FeatureLake, app_tz: ZoneInfo) -> None:
    """A device that moves country and app version mid-history: old values before the move, new ones after."""
    attributes = {r["feature_date"]: r for r in rows(feature_lake, "device_attributes_daily")
                  if r["appmetrica_device_id"] == MOVER_DEVICE}  # fmt: skip
    assert min(attributes) == MOVER_FIRST_DAY and MOVE_DAY in attributes
    for day, row in attributes.items():
        moved = day >= MOVE_DAY
        assert row["country_iso_code"] == ("KZ" if moved else "RU"), day
        assert row["app_version_name"] == ("2.0.0" if moved else "1.0.0"), day
        assert row["device_type"] == ("phone" if moved else None), day  # first sent on MOVE_DAY: null before
    state = states(feature_lake)[FIT_END]  # a category keeps its index in every state after it appears
    transformed = {r["feature_date"]: r for r in rows(feature_lake, "device_features_daily_transformed")
                   if r["appmetrica_device_id"] == MOVER_DEVICE}  # fmt: skip
    assert set(transformed) == set(attributes)
    ru, kz = (state[("label_encoder", "country_iso_code", c)]["category_index"] for c in ("RU", "KZ"))
    phone = state[("label_encoder", "device_type", "phone")]["category_index"]
    for day, row in transformed.items():
        moved = day >= MOVE_DAY
        assert row["country_iso_code_label"] == (kz if moved else ru), day
        assert row["device_type_label"] == (phone if moved else -1), day
        assert row["device_type_one_hot"][-1] == (0 if moved else 1), day

    # point in time: a label on MOVE_DAY (even at its last microsecond) sees the day before, RU and 1.0.0
    stamps = [
        f"{MOVER_FIRST_DAY}T23:59:59",  # nothing strictly before the first day
        f"{MOVE_DAY}T00:00:00",
        f"{MOVE_DAY} 23:59:59.999999",
        f"{MOVE_DAY + dt.timedelta(days=1)}T00:00:00",
        f"{MOVE_DAY + dt.timedelta(days=30)}",  # more than 28 days after the last event: the last row holds
    ]
    result = get_historical_features(
        pd.DataFrame({"appmetrica_device_id": [MOVER_DEVICE] * len(stamps), "event_timestamp": stamps}),
        ["country_iso_code", "app_version_name", "device_type", "country_iso_code_label", "device_type_one_hot"],
        source=feature_lake.gold,
    ).to_dict("records")
    assert all(
        pd.isna(value) for key, value in result[0].items() if key not in {"appmetrica_device_id", "event_timestamp"}
    )
    for row in result[1:3]:
        assert row["device_attributes_daily__feature_date"] == MOVE_DAY - dt.timedelta(days=1)
        assert (row["country_iso_code"], row["app_version_name"]) == ("RU", "1.0.0") and pd.isna(row["device_type"])
        assert row["country_iso_code_label"] == ru and list(row["device_type_one_hot"])[-1] == 1
    for row in result[3:]:
        assert (row["country_iso_code"], row["app_version_name"], row["device_type"]) == ("KZ", "2.0.0", "phone")
        assert row["country_iso_code_label"] == kz and list(row["device_type_one_hot"])[phone] == 1
    assert result[4]["device_attributes_daily__feature_date"] == max(attributes)


def _entities(ids: list[Any], stamps: list[Any] | None = None, **extra: list[Any]) -> dict[str, list[Any]]:
    return {"appmetrica_device_id": ids, "event_timestamp": stamps or ["2026-10-01"] * len(ids), **extra}


@pytest.mark.parametrize(
    ("entity", "features", "message"),
    [
        ({"device": [1], "event_timestamp": ["2026-10-01"]}, ["events_7d"], r"missing \['appmetrica_device_id'\]"),
        (_entities(["1", "12a"]), ["events_7d"], r"row 1 .*'12a'"),
        (_entities([5, -1]), ["events_7d"], r"non-negative.*row 1"),
        (_entities([str(2**64)]), ["events_7d"], r"row 0"),
        (_entities([1, 2], ["2026-10-01", None]), ["events_7d"], r"empty in entity row 1"),
        (_entities([1], ["yesterday"]), ["events_7d"], r"row 0 .*ISO 8601.*yesterday"),
        (_entities([1]), ["events_99d"], r"unknown feature 'events_99d'"),
        (_entities([1]), ["dim_devices.os_name"], r"no timestamp"),
        (_entities([1]), ["feature_date"], r"unknown feature"),
        (_entities([1], events_7d=[0]), ["events_7d"], r"rename"),
        (_entities([1]), [], r"non-empty"),
        (_entities([1]), ["events_7d", "events_7d"], r"twice"),
    ],
    ids=[
        "no-id-column", "letters", "negative", "above-uint64", "null-timestamp", "bad-timestamp", "unknown-feature",
        "no-timestamp-mart", "key-not-feature", "name-clash", "no-features", "duplicate-feature",
    ],
)  # fmt: skip
def test_bad_requests_are_clear_errors(
    feature_lake: FeatureLake, entity: dict[str, list[Any]], features: list[str], message: str
) -> None:
    with pytest.raises(FeatureError, match=message):
        get_historical_features(pd.DataFrame(entity), features, source=feature_lake.gold)


def test_cli_historical_writes_parquet_and_csv(
    feature_lake: FeatureLake, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    devices = sorted(oracle(feature_lake, "device_features_daily", "feature_date"))[-5:]
    entities = tmp_path / "entities.csv"
    entities.write_text(
        "appmetrica_device_id,event_timestamp,label\n"
        + "".join(f"{d},2026-10-{10 + i:02d}T12:00:00,{i}\n" for i, d in enumerate(devices))
    )
    base = ["features", "--source", str(feature_lake.gold), "historical", "--entities", str(entities)]
    out = tmp_path / "train.parquet"
    assert cli.main([*base, "--features", "events_7d,os_name_one_hot", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 5
    table = pq.read_table(out)
    assert table.column("appmetrica_device_id").to_pylist() == [str(d) for d in devices]
    expected = get_historical_features(
        pd.read_csv(entities, dtype={"appmetrica_device_id": str}),
        ["events_7d", "os_name_one_hot"],
        source=feature_lake.gold,
    )
    assert table.column("events_7d").to_pylist() == [None if pd.isna(v) else v for v in expected["events_7d"]]
    csv_out = tmp_path / "train.csv"
    assert (
        cli.main([*base, "--features", "events_7d,os_name_one_hot", "--out", str(csv_out), "--no-feature-dates"]) == 0
    )
    frame = pd.read_csv(csv_out)
    assert list(frame.columns) == ["appmetrica_device_id", "event_timestamp", "label", "events_7d", "os_name_one_hot"]
    first = table.column("os_name_one_hot").to_pylist()[0]
    assert (json.loads(frame["os_name_one_hot"][0]) if first is not None else None) == first
    assert cli.main([*base, "--features", "nope", "--out", str(csv_out)]) == 2
    assert "unknown feature 'nope'" in capsys.readouterr().err


# --------------------------------------------------------------------------------- latest lookup


@pytest.fixture
def client(feature_lake: FeatureLake) -> TestClient:
    return TestClient(create_app(LatestFeatureStore(feature_lake.gold), require_auth=False))


def test_lookup_returns_the_latest_vector(feature_lake: FeatureLake, client: TestClient) -> None:
    daily = oracle(feature_lake, "device_features_daily", "feature_date")
    version = list_features(feature_lake.gold)["feature_set_version"]
    for device in [*sorted(daily)[:20], LATE_DEVICE]:
        day, row = max(daily[device], key=lambda x: x[0])
        response = client.get(f"/{device}")
        assert response.status_code == 200, response.text
        assert response.json() == {
            "appmetrica_device_id": str(device),
            "feature_date": day.isoformat(),
            "feature_set_version": version,
            # exact decimals travel as JSON strings, never as floats
            "features": {c: json_value(row[c]) for c in SERVED},
        }
    info = client.get("/").json()
    assert info["feature_set_version"] == version and info["features"] == SERVED and info["devices"] == len(daily)
    revenue = {client.get(f"/{d}").json()["features"]["revenue_28d"] for d in sorted(daily)}
    assert "0.000000000" in revenue and len(revenue) > 1


SERVED = [*NUMERIC, *MONEY_AND_STABILITY]


@pytest.mark.parametrize(
    ("path", "status"),
    [("/1", 404), ("/12a", 422), ("/-5", 422), ("/" + "1" * 21, 422), (f"/{2**64}", 422), (f"/{2**64 - 2}", 404)],
)
def test_lookup_status_codes(client: TestClient, path: str, status: int) -> None:
    response = client.get(path)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


def test_lookup_requires_an_airflow_user(feature_lake: FeatureLake) -> None:
    response = TestClient(create_app(LatestFeatureStore(feature_lake.gold))).get(f"/{LATE_DEVICE}")
    assert response.status_code == 401


def test_lookup_reloads_when_gold_changes(feature_lake: FeatureLake, tmp_path: Path) -> None:
    gold = tmp_path / "gold"
    shutil.copytree(feature_lake.gold, gold)
    store = LatestFeatureStore(gold, check_seconds=0)
    before = store.lookup(LATE_DEVICE)
    assert before is not None
    table = read_gold(tmp_path, "device_features_daily")
    ids, values = table.column("appmetrica_device_id").to_pylist(), table.column("events_28d").to_pylist()
    events = [v + 1000 if d == LATE_DEVICE else v for d, v in zip(ids, values, strict=True)]
    table = table.set_column(table.schema.get_field_index("events_28d"), "events_28d", pa.array(events, pa.int64()))
    replace_table(gold_location(tmp_path, "device_features_daily"), table)  # a new version of the table
    after = store.lookup(str(LATE_DEVICE))
    assert after is not None and after["features"]["events_28d"] == before["features"]["events_28d"] + 1000


# --------------------------------------------------------------------------------- time travel


def test_as_of_an_old_version_reproduces_a_training_set(
    feature_lake: FeatureLake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Build, record the version, rebuild from changed silver: as_of the old version gives the old rows exactly."""
    monkeypatch.setenv("LAKEHOUSE_FEATURE_FIT_START", FIT_START.isoformat())
    monkeypatch.setenv("LAKEHOUSE_FEATURE_FIT_END", FIT_END.isoformat())
    root = tmp_path / "lake"
    for folder in ("silver", "gold"):
        shutil.copytree(feature_lake.root / folder, root / folder)
    gold = root / "gold"
    loc = gold_location(root, "device_features_daily")
    version = open_table(loc).version()
    built_at = dt.datetime.now(dt.UTC)
    devices = [LATE_DEVICE, MOVER_DEVICE, *sorted(oracle(feature_lake, "device_features_daily", "feature_date"))[:3]]
    entities = pd.DataFrame({"appmetrica_device_id": [str(d) for d in devices],
                             "event_timestamp": ["2026-11-05T12:00:00Z"] * len(devices)})  # fmt: skip
    features = ["events_28d", "sessions_7d", "revenue_28d"]
    before = get_historical_features(entities, features, source=gold)
    assert before.attrs["gold_versions"] == {"device_features_daily": version}

    # silver changes: the late device's events are gone; the full rebuild commits a new version
    events = silver_table(Layout(root), "events_part")
    late = events.filter(pc.equal(events["appmetrica_device_id"], pa.scalar(LATE_DEVICE, pa.uint64())))
    assert late.num_rows
    for day in sorted(set(late.column("export_date").to_pylist())):
        rows = silver_table(Layout(root), "events_part", day)
        kept = rows.filter(pc.not_equal(rows["appmetrica_device_id"], pa.scalar(LATE_DEVICE, pa.uint64())))
        replace_partition(locate("silver/events_part", Layout(root)), kept, column="export_date", value=day)
    summary = build_gold(Layout(root))
    assert open_table(loc).version() == version + 1
    now = get_historical_features(entities, features, source=gold)
    assert pd.isna(now["events_28d"][0]) and not pd.isna(before["events_28d"][0])

    for as_of in (version, str(version), built_at, built_at.isoformat()):
        again = get_historical_features(entities, features, source=gold, as_of=as_of)
        pd.testing.assert_frame_equal(again, before)
        assert again.attrs["gold_versions"] == {"device_features_daily": version}
    # the commit history records the feature-set version each version was built with
    assert commit_metadata(loc, version)["lakehouse.feature_set_version"] == feature_lake.summary["feature_set_version"]
    assert commit_metadata(loc)["lakehouse.feature_set_version"] == summary["feature_set_version"]

    with pytest.raises(FeatureError, match="one gold table"):
        get_historical_features(entities, ["events_28d", "os_name"], source=gold, as_of=version)
    with pytest.raises(FeatureError, match="time zone"):
        get_historical_features(entities, features, source=gold, as_of="2026-11-05T12:00:00")
    with pytest.raises(FeatureError, match="no version"):
        get_historical_features(entities, features, source=gold, as_of=version + 5)
    out = tmp_path / "train.parquet"
    args = ["features", "--source", str(gold), "historical", "--entities", str(tmp_path / "e.csv"),
            "--features", ",".join(features), "--out", str(out), "--as-of", str(version)]  # fmt: skip
    entities.to_csv(tmp_path / "e.csv", index=False)
    assert cli.main(args) == 0
    assert pq.read_table(out).column("events_28d").to_pylist()[0] == before["events_28d"][0]
