"""The demo data generator: deterministic, realistic, fast, and true to the bronze field contract."""

from __future__ import annotations

import collections
import csv
import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from zoneinfo import ZoneInfo

import pytest

from ingest.appmetrica.demo import generator
from ingest.appmetrica.demo.generator import PROFILE_ATTRIBUTES, generate_rows, write_csv
from ingest.appmetrica.resources import RESOURCES, requested_fields

MSK = ZoneInfo("Europe/Moscow")
DAY = dt.date(2026, 11, 1)
APP = "1234567"


def rows(resource, day=DAY, **kw):
    kw.setdefault("application_id", APP)
    kw.setdefault("tz", MSK)
    return generate_rows(resource, day, **kw)


def digest(resource, day=DAY, **kw) -> str:
    h = hashlib.sha256()
    for row in rows(resource, day, **kw):
        h.update(json.dumps(row, ensure_ascii=False).encode())
    return h.hexdigest()


@pytest.mark.parametrize("resource", sorted(RESOURCES))
def test_rows_have_exactly_the_resource_fields_as_strings(resource):
    out = rows(resource)
    assert out, f"no {resource} rows"
    for row in out:
        assert tuple(row) == requested_fields(RESOURCES[resource], PROFILE_ATTRIBUTES)  # + the demo's attributes
        assert all(isinstance(v, str) for v in row.values())


def test_same_inputs_give_identical_rows_and_fresh_copies():
    a = rows("events")
    b = rows("events")
    assert a == b
    a[0]["event_name"] = "mutated"
    assert rows("events")[0]["event_name"] != "mutated"  # the cache hands out copies


def test_deterministic_across_processes_and_hash_seeds():
    code = (
        "import datetime as dt, hashlib, json\n"
        "from ingest.appmetrica.demo.generator import generate_rows\n"
        "h = hashlib.sha256()\n"
        "for r in generate_rows('events', dt.date(2026, 11, 1), application_id='1234567', tz='Europe/Moscow'):\n"
        "    h.update(json.dumps(r, ensure_ascii=False).encode())\n"
        "print(h.hexdigest())\n"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == digest("events")


def test_different_date_seed_or_app_give_different_rows():
    base = digest("events")
    assert digest("events", DAY + dt.timedelta(days=1)) != base
    assert digest("events", seed=1) != base
    assert digest("events", application_id="7654321") != base


def test_device_ids_are_uint64_and_some_exceed_int64():
    ids = {int(r["appmetrica_device_id"]) for r in rows("events")}
    assert all(0 < i < 2**64 for i in ids)
    assert any(i >= 2**63 for i in ids)
    sessions = {int(r["session_id"]) for r in rows("sessions_starts")}
    assert all(0 < s < 2**64 for s in sessions)


def test_exact_duplicate_events_are_present_at_about_half_a_percent():
    out = rows("events")
    counts = collections.Counter(tuple(r.values()) for r in out)
    dups = sum(c - 1 for c in counts.values())
    assert 0.001 * len(out) <= dups <= 0.015 * len(out)


def test_event_json_is_tricky_but_valid():
    payloads = [r["event_json"] for r in rows("events")]
    filled = [p for p in payloads if p]
    assert len(filled) < len(payloads)  # some events carry no payload
    parsed = [json.loads(p) for p in filled]
    assert all(isinstance(p, dict) for p in parsed)
    assert any(isinstance(v, dict) for p in parsed for v in p.values())  # nesting
    assert any("," in p and '\\"' in p for p in filled)  # commas and quotes inside values
    assert any("\\n" in p for p in filled)  # embedded newlines (escaped inside the JSON text)
    assert any("\n" in p for p in filled)  # literal line breaks: a multi-line CSV field
    assert any(any(ord(ch) > 127 for ch in p) for p in filled)  # non-ASCII, not \u-escaped
    assert any(isinstance(v, bool) for p in parsed for v in p.values())


def test_some_day_has_a_field_just_under_the_silver_limit():
    days = (DAY + dt.timedelta(days=i) for i in range(15))
    longest = max(len(r["event_json"]) for day in days for r in rows("events", day))
    assert 130_000 < longest <= 131072


@pytest.mark.parametrize(
    ("tz_name", "day"),
    [
        ("Europe/Moscow", dt.date(2026, 11, 1)),
        ("America/New_York", dt.date(2026, 11, 1)),  # DST ends: a 25-hour day
        ("Europe/Berlin", dt.date(2026, 3, 29)),  # DST starts: a 23-hour day
        ("Asia/Kolkata", dt.date(2026, 6, 15)),  # half-hour offset
    ],
)
def test_timestamps_match_local_datetimes(tz_name, day):
    tz = ZoneInfo(tz_name)
    for resource, prefix in (("events", "event"), ("sessions_starts", "session_start")):
        out = rows(resource, day, tz=tz, devices=400)
        assert out
        for r in out:
            ts, recv = int(r[f"{prefix}_timestamp"]), int(r[f"{prefix}_receive_timestamp"])
            local = dt.datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")
            assert r[f"{prefix}_datetime"] == local
            assert local.startswith(day.isoformat())
            assert recv > ts
            assert r[f"{prefix}_receive_datetime"] == dt.datetime.fromtimestamp(recv, tz).strftime("%Y-%m-%d %H:%M:%S")


def test_receive_time_sometimes_falls_on_a_later_day():
    later = [r for r in rows("events") if r["event_receive_datetime"][:10] > DAY.isoformat()]
    assert later


def test_sessions_and_events_agree():
    events = rows("events")
    sessions = rows("sessions_starts")
    keys = [(s["appmetrica_device_id"], s["session_id"]) for s in sessions]
    assert len(keys) == len(set(keys))  # one row per session
    assert {(e["appmetrica_device_id"], e["session_id"]) for e in events} <= set(keys)
    per_device = collections.Counter(s["appmetrica_device_id"] for s in sessions)
    assert set(per_device.values()) <= {1, 2, 3}
    per_session = collections.Counter((e["appmetrica_device_id"], e["session_id"]) for e in events)
    assert max(per_session.values()) <= 21  # up to 20 events (+ a duplicate)


def test_installations_and_profiles():
    days = [DAY + dt.timedelta(days=i) for i in range(5)]
    installs = [r for d in days for r in rows("installations", d)]
    assert installs
    assert len({r["appmetrica_device_id"] for r in installs}) == len(installs)
    for d in days:
        for r in rows("installations", d):
            assert r["install_datetime"].startswith(d.isoformat())
            assert r["is_reinstallation"] in ("true", "false")
    profiles = rows("profiles_v2")
    assert len({p["profile_id"] for p in profiles}) == len(profiles)
    assert all(p["appmetrica_last_start_date"] == DAY.isoformat() for p in profiles)
    # each custom attribute is a column of its own name, its value exported as text ('' = not set)
    assert all(set(PROFILE_ATTRIBUTES) <= set(p) for p in profiles)
    assert {p["plan"] for p in profiles} == {"free", "premium", ""}
    assert any(p["nickname"] == 'Ali "the 1st", Zürich' for p in profiles)
    assert all(p["level"].isdigit() for p in profiles if p["level"])
    assert all(p["appmetrica_sdk_version"].isdigit() for p in profiles)
    tracked = [r for r in installs if r["tracker_name"]]
    assert tracked and all(r["click_ipv6"] for r in tracked)
    assert all(not r["click_ipv6"] for r in installs if not r["tracker_name"])
    # about 60 % of devices have a profile: every profile row belongs to a device active that day
    active = {r["appmetrica_device_id"] for r in rows("events")}
    assert {p["appmetrica_device_id"] for p in profiles} <= active


def test_non_ascii_places_and_locales():
    out = rows("events")
    cities = {r["city"] for r in out}
    assert {"Москва", "Санкт-Петербург"} <= cities
    assert cities & {"São Paulo", "Zürich"}
    assert {r["connection_type"] for r in out} <= {"wifi", "cell", "unknown"}
    assert {r["os_name"] for r in out} <= {"ios", "android", "windows"}
    assert {r["device_type"] for r in out} <= {"phone", "tablet", "unknown"}
    assert all(len(r["installation_id"]) == 32 for r in out)
    with_profile = {r["appmetrica_device_id"] for r in out if r["profile_id"]}
    devices = {r["appmetrica_device_id"] for r in out}
    assert 0.4 < len(with_profile) / len(devices) < 0.8


def test_population_persists_and_upgrades_over_30_days():
    start = DAY - dt.timedelta(days=29)
    seen: dict[str, list[dt.date]] = collections.defaultdict(list)
    attrs: dict[str, set[tuple[str, str, str]]] = collections.defaultdict(set)
    versions: dict[str, list[tuple[int, str]]] = collections.defaultdict(list)
    for i in range(30):
        day = start + dt.timedelta(days=i)
        for r in rows("events", day, devices=600):
            dev = r["appmetrica_device_id"]
            if not seen[dev] or seen[dev][-1] != day:
                seen[dev].append(day)
                versions[dev].append((int(r["app_build_number"]), r["app_version_name"]))
            attrs[dev].add((r["os_name"], r["device_model"], r["installation_id"]))
    active_days = [len(v) for v in seen.values()]
    assert max(active_days) >= 25  # daily users
    assert sum(1 for n in active_days if n <= 3) >= len(active_days) * 0.2  # rare / new / churned
    assert all(len(a) == 1 for a in attrs.values())  # a device keeps its attributes
    upgraded = [v for v in versions.values() if len({name for _, name in v}) > 1]
    assert upgraded
    for v in versions.values():
        builds = [b for b, _ in v]
        assert builds == sorted(builds)  # never a downgrade


def test_generation_is_fast():
    generator._simulate_day.cache_clear()
    generator._device.cache_clear()
    generator._slot.cache_clear()
    t0 = time.perf_counter()
    counts = {r: len(rows(r, dt.date(2026, 10, 20))) for r in RESOURCES}
    elapsed = time.perf_counter() - t0
    assert counts["events"] > 2000
    assert elapsed < 2.0, f"{elapsed:.2f}s for {counts}"


def test_anomalies_only_when_asked():
    clean = rows("events")
    for r in clean:
        dt.datetime.strptime(r["event_datetime"], "%Y-%m-%d %H:%M:%S")
        assert r["appmetrica_device_id"].isdigit()
    spoiled = rows("events", anomaly_rate=0.05)
    bad = 0
    for r in spoiled:
        try:
            dt.datetime.strptime(r["event_datetime"], "%Y-%m-%d %H:%M:%S")
            if r["event_json"]:
                json.loads(r["event_json"])
            int(r["appmetrica_device_id"])
        except ValueError:
            bad += 1
    assert bad > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown AppMetrica resource"):
        rows("push_tokens")
    with pytest.raises(TypeError):
        generate_rows("events", "2026-11-01", application_id=APP, tz=MSK)


def test_write_csv_round_trips_with_minimal_quoting():
    data = rows("events", devices=200)
    fields = RESOURCES["events"].fields
    buf = io.StringIO(newline="")
    assert write_csv(data, fields, buf) == len(data)
    text = buf.getvalue()
    assert text.startswith("event_name,event_json,")
    assert "\r\n" not in text.split("\n", 1)[0]
    old_limit = csv.field_size_limit(1 << 24)  # the demo data has fields beyond the default 131072
    try:
        back = list(csv.DictReader(io.StringIO(text, newline="")))
    finally:
        csv.field_size_limit(old_limit)
    assert back == data
    bom = io.StringIO(newline="")
    write_csv(data[:1], fields, bom, bom=True)
    assert bom.getvalue().startswith("\ufeffevent_name,")


def _local(ts: str) -> str:
    return dt.datetime.fromtimestamp(int(ts), MSK).strftime("%Y-%m-%d %H:%M:%S")


def test_money_and_stability_rows_belong_to_the_days_devices_and_sessions():
    days = [DAY + dt.timedelta(days=i) for i in range(7)]
    seen = collections.Counter()
    currencies = collections.Counter()
    payers, active = set(), set()
    for day in days:
        events = rows("events", day)
        sessions = {(e["appmetrica_device_id"], e["session_id"]) for e in events}
        devices = {e["appmetrica_device_id"] for e in events}
        active |= devices
        for resource, stamp in (("revenue_events", "event"), ("ad_revenue_events", "ad_revenue"),
                                ("crashes", "crash"), ("errors", "error")):  # fmt: skip
            for r in rows(resource, day):
                seen[resource] += 1
                assert list(r) == list(RESOURCES[resource].fields)
                assert r["appmetrica_device_id"] in devices
                if "session_id" in r:
                    assert (r["appmetrica_device_id"], r["session_id"]) in sessions
                assert r[f"{stamp}_datetime"].startswith(day.isoformat())
                assert _local(r[f"{stamp}_timestamp"]) == r[f"{stamp}_datetime"]
                assert r[f"{stamp}_receive_timestamp"] >= r[f"{stamp}_timestamp"]
                assert _local(r[f"{stamp}_receive_timestamp"]) == r[f"{stamp}_receive_datetime"]
        for r in rows("revenue_events", day):
            payers.add(r["appmetrica_device_id"])
            currencies[r["revenue_currency"]] += 1
            assert r["is_revenue_verified"] in ("true", "false", "undefined")
            assert r["revenue_order_id_source"] in ("autogenerated", "user_defined")
            assert int(r["revenue_quantity"]) >= 1
            float(r["revenue_price"])
        for r in rows("ad_revenue_events", day):
            assert r["ad_revenue_type"] in ("native", "banner", "rewarded", "interstitial", "mrec", "other")
            assert r["ad_revenue_data_source"] in ("autocollected", "manual")
            assert 0 < float(r["ad_revenue"]) < 10
        for r in rows("crashes", day):
            assert r["crash"] and int(r["crash_id"]) >= 0 and int(r["crash_group_id"]) >= 0
        for r in rows("errors", day):
            assert r["error"] and r["error_id"] and r["error_name"]
    assert min(seen.values()) > 0, seen
    assert seen["ad_revenue_events"] > seen["errors"] > seen["crashes"]
    assert len(payers) < 0.1 * len(active)  # a minority pays
    top, n = currencies.most_common(1)[0]
    assert top == "USD" and n > sum(currencies.values()) / 2 and len(currencies) >= 3


def test_refunds_are_rare_negative_prices():
    prices = [float(r["revenue_price"]) for i in range(30) for r in rows("revenue_events", DAY + dt.timedelta(days=i))]
    refunds = [p for p in prices if p < 0]
    assert refunds and len(refunds) < 0.1 * len(prices)
