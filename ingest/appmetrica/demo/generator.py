# ruff: noqa: RUF001 - Cyrillic test data is intended
"""Deterministic, realistic AppMetrica Logs API rows for the demo server and the tests.

Model
-----
The app has ``devices`` *slots*. Each slot is occupied by a succession of devices ("generations"): a
device installs the app on the first day of its generation, is active on a day with a device-specific
probability (daily users, regulars, casual and rare users), may churn early, and is replaced by a new
device (new ids) when its generation ends. So any date, past or future, has a realistic population,
and 30 consecutive days give realistic rolling windows: the same devices come back, a few install,
a few churn, and devices upgrade the app some days after each release (one every 45 days).

Everything is derived from ``random.Random`` instances seeded with strings built from
(application_id, seed, slot, generation, date): never the global generator, never the wall clock, so
the same inputs always give the same rows, in any process.

Rows are ``dict[str, str]`` with exactly the resource's fields (``resources.RESOURCES``) in order, and for
profiles_v2 also the custom profile attributes the demo app sets (``PROFILE_ATTRIBUTES``), by name; missing values
are ``''``. Device ids and session ids are UInt64 decimals (some above 2**63),
``*_datetime`` is local time in ``tz`` and ``*_timestamp`` the true Unix seconds of it.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import itertools
import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from ingest.appmetrica.resources import (
    AD_REVENUE_EVENTS,
    CRASHES,
    ERRORS,
    EVENTS,
    INSTALLATIONS,
    PROFILES_V2,
    RESOURCES,
    REVENUE_EVENTS,
    SESSIONS_STARTS,
)

EPOCH = dt.date(2026, 11, 1)  # day 0 of the app's release train (any date works; see module docstring)
RELEASE_PERIOD_DAYS = 45
DUPLICATE_RATE = 0.005
HUGE_FIELD_CHARS = 131_000  # with its JSON wrapper just under the 131072-char field limit silver enforces

ANDROID_PACKAGE = "ru.demo.lakehouse.shop"
IOS_PACKAGE = "ru.demo.lakehouse.Shop"
WINDOWS_PACKAGE = "DemoLakehouse.Shop"

# (city, country, weight)
_PLACES: tuple[tuple[str, str, float], ...] = (
    ("Москва", "RU", 30),
    ("Санкт-Петербург", "RU", 14),
    ("Новосибирск", "RU", 5),
    ("Екатеринбург", "RU", 5),
    ("Казань", "RU", 4),
    ("Нижний Новгород", "RU", 3),
    ("", "RU", 4),
    ("Минск", "BY", 4),
    ("Алматы", "KZ", 4),
    ("Ташкент", "UZ", 3),
    ("São Paulo", "BR", 3),
    ("Zürich", "CH", 2),
    ("Berlin", "DE", 3),
    ("İstanbul", "TR", 3),
    ("New York", "US", 3),
    ("London", "GB", 2),
    ("", "", 1),
)
_PLACE_CUM = tuple(itertools.accumulate(p[2] for p in _PLACES))

_LOCALES = {
    "RU": ("ru_RU", "ru_RU", "ru_RU", "en_US"),
    "BY": ("ru_BY", "be_BY", "ru_RU"),
    "KZ": ("ru_KZ", "kk_KZ"),
    "UZ": ("uz_UZ", "ru_UZ"),
    "BR": ("pt_BR",),
    "CH": ("de_CH", "fr_CH", "en_US"),
    "DE": ("de_DE", "en_US"),
    "TR": ("tr_TR",),
    "US": ("en_US", "es_US"),
    "GB": ("en_GB",),
    "": ("en_US",),
}

# country -> (mcc, [(mnc, operator)])
_OPERATORS: dict[str, tuple[int, tuple[tuple[int, str], ...]]] = {
    "RU": (250, ((1, "MTS RUS"), (2, "MegaFon"), (99, "Beeline"), (20, "Tele2"), (11, "Yota"))),
    "BY": (257, ((1, "A1"), (2, "MTS BY"), (4, "life:)"))),
    "KZ": (401, ((1, "Beeline KZ"), (2, "Kcell"), (77, "Tele2 KZ"))),
    "UZ": (434, ((4, "Beeline UZ"), (5, "Ucell"))),
    "BR": (724, ((5, "Claro BR"), (6, "Vivo"), (4, "TIM"))),
    "CH": (228, ((1, "Swisscom"), (2, "Sunrise"))),
    "DE": (262, ((1, "Telekom.de"), (2, "Vodafone.de"), (3, "o2 - de"))),
    "TR": (286, ((1, "Turkcell"), (2, "Vodafone TR"))),
    "US": (310, ((260, "T-Mobile"), (410, "AT&T"))),
    "GB": (234, ((15, "Vodafone UK"), (10, "O2 - UK"))),
}

# (manufacturer, model, original model, type, weight)
_ANDROID_MODELS: tuple[tuple[str, str, str, str, float], ...] = (
    ("Samsung", "Galaxy A52", "SM-A525F", "phone", 9),
    ("Samsung", "Galaxy S23", "SM-S911B", "phone", 5),
    ("Samsung", "Galaxy Tab S8", "SM-X700", "tablet", 2),
    ("Xiaomi", "Redmi Note 10 Pro", "M2101K6G", "phone", 9),
    ("Xiaomi", "Redmi 9A", "M2006C3LG", "phone", 6),
    ("Xiaomi", "Pad 6", "23043RP34G", "tablet", 1),
    ("HUAWEI", "P30 lite", "MAR-LX1M", "phone", 4),
    ("HONOR", "X8", "TFY-LX1", "phone", 4),
    ("Google", "Pixel 7", "Pixel 7", "phone", 2),
    ("realme", "C35", "RMX3511", "phone", 3),
    ("OnePlus", "Nord 2", "DN2103", "phone", 1),
    ("Tecno", "Spark 10", "KI5q", "phone", 2),
)
_IOS_MODELS: tuple[tuple[str, str, str, str, float], ...] = (
    ("Apple", "iPhone 11", "iPhone12,1", "phone", 6),
    ("Apple", "iPhone 12", "iPhone13,2", "phone", 6),
    ("Apple", "iPhone 13", "iPhone14,5", "phone", 7),
    ("Apple", "iPhone 14 Pro", "iPhone15,2", "phone", 4),
    ("Apple", "iPhone 15", "iPhone15,4", "phone", 4),
    ("Apple", "iPhone SE (2nd generation)", "iPhone12,8", "phone", 2),
    ("Apple", "iPad Air (5th generation)", "iPad13,16", "tablet", 2),
    ("Apple", "iPad (9th generation)", "iPad12,1", "tablet", 2),
)
_WINDOWS_MODELS: tuple[tuple[str, str, str, str, float], ...] = (
    ("Microsoft", "Surface Pro 7", "Surface Pro 7", "tablet", 1),
    ("Lenovo", "ThinkPad X1", "20XW", "unknown", 1),
)
_OS_VERSIONS = {
    "android": (("10", 2), ("11", 4), ("12", 6), ("13", 8), ("14", 6)),
    "ios": (("15.7.9", 2), ("16.6.1", 4), ("17.1.2", 6), ("17.4", 5)),
    "windows": (("10.0.19045", 1), ("10.0.22631", 1)),
}

# activity segments: (name, weight, daily probability, session-count weights for 1/2/3 sessions)
_SEGMENTS: tuple[tuple[str, float, float, tuple[float, float, float]], ...] = (
    ("daily", 22, 0.9, (0.35, 0.4, 0.25)),
    ("regular", 30, 0.5, (0.6, 0.3, 0.1)),
    ("casual", 28, 0.18, (0.75, 0.2, 0.05)),
    ("rare", 20, 0.04, (0.9, 0.08, 0.02)),
)

_HOUR_WEIGHTS = (
    0.5, 0.3, 0.2, 0.15, 0.15, 0.3, 0.8, 1.5, 2.2, 2.5, 2.6, 2.7,
    2.9, 2.8, 2.7, 2.7, 2.9, 3.2, 3.6, 4.0, 4.2, 3.8, 2.6, 1.4,
)  # fmt: skip
_HOUR_CUM = tuple(itertools.accumulate(_HOUR_WEIGHTS))

_EVENT_NAMES: tuple[tuple[str, float], ...] = (
    ("screen_view", 30),
    ("button_click", 15),
    ("ad_impression", 8),
    ("search", 6),
    ("level_start", 6),
    ("add_to_cart", 5),
    ("level_up", 4),
    ("просмотр_каталога", 2),
    ("purchase", 2),
    ("share", 1.5),
    ("settings_changed", 1),
    ("push_opened", 1),
    ("tutorial_complete", 1),
    ("feedback", 0.7),
)
_EVENT_CUM = tuple(itertools.accumulate(w for _, w in _EVENT_NAMES))

_SCREENS = ("main", "catalog", "product", "cart", "checkout", "profile", "settings", "search", "Корзина")
_QUERIES = (
    "кроссовки",
    'кроссовки "Nike", 42 размер',
    "red shoes, size 42",
    'he said "hi", then left',
    "café ☕",
    "naïve façade",
    "Zürich → São Paulo",
    "",
)
_COMMENTS = (
    "Всё отлично!",
    "Всё отлично,\nно хочется тёмную тему 🌙",
    'Great app, but "dark mode" please',
    "Не работает оплата; пишет «ошибка 500»",
    "line1\r\nline2, with comma",
    "👍👍👍",
)
_ITEMS = (
    ("sku_1001", "Премиум-доступ, 1 мес.", "subscription", 299.0),
    ("sku_1002", 'Набор "Старт"', "bundle", 99.0),
    ("sku_2001", "Кроссовки беговые", "shoes", 5990.0),
    ("sku_2002", "Zürich Travel Mug", "accessories", 12.5),
    ("sku_3001", "Coins x1000", "currency", 0.99),
)
_NAMES = ("Алиса", "Иван Петров", "Мария", "José", "O'Connor, Liam", 'Анна "Аня" Смирнова', "Chen Wei", "")
_TRAVEL = (("Сочи", "RU"), ("Москва", "RU"), ("Antalya", "TR"), ("Тбилиси", "GE"), ("Dubai", "AE"))
_TRACKERS = (
    ("", "", "", 50),
    ("Google Ads", "Google", "referrer", 12),
    ("Yandex Direct", "Яндекс", "fingerprint", 14),
    ("VK Реклама", "VK", "fingerprint", 8),
    ("Apple Search Ads", "Apple", "identifier", 6),
    ("myTarget", "myTarget", "fingerprint", 5),
)
_TRACKER_CUM = tuple(itertools.accumulate(t[3] for t in _TRACKERS))


@dataclass(frozen=True)
class _Slot:
    """A population slot: how long each device generation lasts and where the cycle starts."""

    period: int
    phase: int


@dataclass(frozen=True)
class _Device:
    """One simulated device (one generation of one slot), stable for its whole life."""

    slot: int
    generation: int
    install_day: int  # ordinal
    end_day: int  # ordinal of the first day it is gone (churned)
    device_id: str
    installation_id: str
    profile_id: str
    profile_from_day: int
    os_name: str
    os_version: str
    manufacturer: str
    model: str
    original_model: str
    device_type: str
    locale: str
    city: str
    country: str
    mcc: str
    mnc: str
    operator: str
    google_aid: str
    ios_ifa: str
    ios_ifv: str
    windows_aid: str
    ipv6_prefix: str
    wifi_share: float
    activity: float
    session_weights: tuple[float, float, float]
    upgrade_lag: int
    session_base: int
    tracker: tuple[str, str, str]
    is_reinstallation: bool
    is_reattribution: bool
    gender: str
    birth_date: str
    name: str
    notifications: str
    custom_seed: int


def _rng(*parts: object) -> random.Random:
    return random.Random(":".join(str(p) for p in parts))


def _uuid(rng: random.Random, upper: bool = False) -> str:
    h = f"{rng.getrandbits(128):032x}"
    text = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:]}"
    return text.upper() if upper else text


def _weighted(rng: random.Random, items: Sequence[Any], cum: Sequence[float]) -> Any:
    return rng.choices(items, cum_weights=cum)[0]


def _pick(rng: random.Random, options: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    return rng.choices(options, weights=[o[-1] for o in options])[0]


@functools.lru_cache(maxsize=65536)
def _slot(application_id: str, seed: int, slot: int) -> _Slot:
    rng = _rng("slot", application_id, seed, slot)
    period = rng.randint(90, 720)
    return _Slot(period=period, phase=rng.randrange(period))


@functools.lru_cache(maxsize=65536)
def _device(application_id: str, seed: int, slot: int, generation: int) -> _Device:
    info = _slot(application_id, seed, slot)
    rng = _rng("device", application_id, seed, slot, generation)
    install_day = EPOCH.toordinal() + info.phase + generation * info.period
    # 45 % churn early (exponential lifetime), the rest stay until the generation ends.
    if rng.random() < 0.45:
        life = 1 + int(rng.expovariate(1 / 60))
        end_day = install_day + min(life, info.period)
    else:
        end_day = install_day + info.period

    u = rng.random()
    if u < 0.12:
        did = rng.randrange(2**63, 2**64 - 10**6)  # above Int64: needs UInt64 downstream
    elif u < 0.2:
        did = rng.randrange(10**9, 10**13)
    else:
        did = rng.randrange(10**15, 2**63)
    # low digits from the slot keep ids unique inside the population
    did = did - did % 100_000 + slot % 100_000 if did >= 10**6 else did

    os_u = rng.random()
    os_name = "android" if os_u < 0.62 else ("ios" if os_u < 0.99 else "windows")
    models = {"android": _ANDROID_MODELS, "ios": _IOS_MODELS, "windows": _WINDOWS_MODELS}[os_name]
    manufacturer, model, original_model, device_type, _w = _pick(rng, models)
    os_version = _pick(rng, _OS_VERSIONS[os_name])[0]
    city, country, _w2 = _weighted(rng, _PLACES, _PLACE_CUM)
    locale = rng.choice(_LOCALES[country])
    mcc = mnc = operator = ""
    has_sim = device_type == "phone" or rng.random() < 0.3
    if has_sim and country in _OPERATORS:
        code, ops = _OPERATORS[country]
        net, operator = rng.choice(ops)
        mcc, mnc = str(code), str(net)

    google_aid = ios_ifa = ios_ifv = windows_aid = ""
    if os_name == "android":
        r = rng.random()
        google_aid = _uuid(rng) if r < 0.9 else ("00000000-0000-0000-0000-000000000000" if r < 0.95 else "")
    elif os_name == "ios":
        ios_ifv = _uuid(rng, upper=True)
        ios_ifa = _uuid(rng, upper=True) if rng.random() < 0.35 else ""  # most users decline tracking
    else:
        windows_aid = _uuid(rng)

    segment = _pick(rng, [(s[0], s[2], s[3], s[1]) for s in _SEGMENTS])
    has_profile = rng.random() < 0.6
    profile_id = ""
    if has_profile:
        style = rng.random()
        if style < 0.5:
            profile_id = f"user_{rng.randrange(10**7, 10**8)}{slot:05d}"
        elif style < 0.8:
            profile_id = _uuid(rng)
        else:
            profile_id = f"client.{rng.randrange(10**5, 10**6)}.{slot}@example.com"

    lag_u = rng.random()
    upgrade_lag = rng.randint(0, 20) if lag_u < 0.7 else (rng.randint(21, 90) if lag_u < 0.93 else rng.randint(91, 400))
    sb = rng.random()
    session_base = rng.randrange(2**63, 2**64 - 10**9) if sb < 0.05 else rng.randrange(10**10, 10**13)
    birth = ""
    if rng.random() < 0.55:
        birth = dt.date(rng.randint(1960, 2010), rng.randint(1, 12), rng.randint(1, 28)).isoformat()
    return _Device(
        slot=slot,
        generation=generation,
        install_day=install_day,
        end_day=end_day,
        device_id=str(did),
        installation_id=f"{rng.getrandbits(128):032x}",
        profile_id=profile_id,
        profile_from_day=install_day + (0 if rng.random() < 0.5 else rng.randint(1, 14)),
        os_name=os_name,
        os_version=os_version,
        manufacturer=manufacturer,
        model=model,
        original_model=original_model,
        device_type=device_type,
        locale=locale,
        city=city,
        country=country,
        mcc=mcc,
        mnc=mnc,
        operator=operator,
        google_aid=google_aid,
        ios_ifa=ios_ifa,
        ios_ifv=ios_ifv,
        windows_aid=windows_aid,
        ipv6_prefix=f"2a00:{rng.randrange(0x1000, 0xFFFF):x}:{rng.randrange(0x10, 0xFFFF):x}",
        wifi_share=rng.uniform(0.3, 0.9),
        activity=segment[1],
        session_weights=segment[2],
        upgrade_lag=upgrade_lag,
        session_base=session_base,
        tracker=_weighted(rng, _TRACKERS, _TRACKER_CUM)[:3],
        is_reinstallation=rng.random() < 0.06,
        is_reattribution=rng.random() < 0.02,
        gender=rng.choice(("M", "F", "")),  # as the docs' example exports it ("M")
        birth_date=birth,
        name=rng.choice(_NAMES),
        notifications=rng.choice(("true", "true", "false", "")),
        custom_seed=rng.getrandbits(32),
    )


def _device_on(application_id: str, seed: int, slot: int, ordinal: int) -> _Device:
    info = _slot(application_id, seed, slot)
    generation = (ordinal - EPOCH.toordinal() - info.phase) // info.period
    return _device(application_id, seed, slot, generation)


def _release(day_ordinal: int) -> int:
    """Index of the newest app release on a day (a release every RELEASE_PERIOD_DAYS)."""
    return (day_ordinal - EPOCH.toordinal()) // RELEASE_PERIOD_DAYS


def _app_version(dev: _Device, ordinal: int) -> tuple[str, str, str, str]:
    """(version name, build number, SDK version, package) the device runs on a day."""
    k = max(_release(ordinal - dev.upgrade_lag), _release(dev.install_day))
    major = max(1, 5 + k // 8)
    minor = k % 8 if 5 + k // 8 >= 1 else 0
    patch = (k * 7) % 3
    name = f"{major}.{minor}.{patch}"
    build = 30_000 + 10 * k + (1 if dev.os_name == "ios" else 0)
    if dev.os_name == "android":
        sdk = f"{6 + max(k, -20) // 12}.{(k // 3) % 4}.0"
        package = ANDROID_PACKAGE
    elif dev.os_name == "ios":
        sdk = f"{5 + max(k, -20) // 12}.{(k // 4) % 4}.1"
        package = IOS_PACKAGE
    else:
        sdk = "4.2.0"
        package = WINDOWS_PACKAGE
    return name, str(max(build, 1)), sdk, package


def _event_json(rng: random.Random, name: str) -> str:
    payload: dict[str, Any]
    if name == "app_open":
        payload = {"source": rng.choice(("icon", "icon", "push", "deeplink")), "cold_start": rng.random() < 0.7}
        if payload["source"] == "deeplink":
            payload["deeplink"] = f"demo://catalog?item={rng.randint(1, 500)}&ref=push,promo"
    elif name == "screen_view":
        payload = {
            "screen": {"name": rng.choice(_SCREENS), "params": {"tab": rng.randint(0, 4), "sort": "price_asc"}},
            "duration_ms": rng.randint(200, 60_000),
        }
    elif name == "button_click":
        if rng.random() < 0.25:
            return ""
        payload = {"button": rng.choice(("buy", "like", "close", "Далее")), "screen": rng.choice(_SCREENS)}
    elif name == "search":
        payload = {"query": rng.choice(_QUERIES), "results": rng.randint(0, 200), "filters": {"in_stock": True}}
    elif name in ("add_to_cart", "purchase"):
        sku, title, category, price = rng.choice(_ITEMS)
        payload = {
            "item": {"id": sku, "name": title, "category": category},
            "price": price,
            "currency": rng.choice(("RUB", "USD", "EUR")),
            "quantity": rng.randint(1, 3),
        }
        if name == "purchase":
            payload |= {"tags": ["promo", "осень"][: rng.randint(0, 2)], "ok": rng.random() < 0.97, "coupon": None}
    elif name == "level_start":
        payload = {"level": rng.randint(1, 120), "mode": rng.choice(("easy", "normal", "hard")), "boosters": []}
    elif name == "level_up":
        payload = {
            "level": rng.randint(2, 121),
            "score": rng.randint(100, 99_999),
            "stars": rng.randint(0, 3),
            "time_spent_s": round(rng.uniform(10, 900), 1),
            "perfect": rng.random() < 0.1,
        }
    elif name == "ad_impression":
        payload = {
            "network": rng.choice(("yandex", "admob", "mytarget")),
            "format": rng.choice(("banner", "interstitial", "rewarded")),
            "revenue": round(rng.uniform(0.0001, 0.02), 6),
            "currency": "USD",
            "placement": {"id": "main_bottom", "size": [320, 50]},
        }
    elif name == "share":
        payload = {
            "channel": rng.choice(("telegram", "whatsapp", "vk", "copy_link")),
            "text": 'Смотри: "Лучшее приложение", ссылка https://example.com/?a=1&b=2',
        }
    elif name == "feedback":
        payload = {"rating": rng.randint(1, 5), "comment": rng.choice(_COMMENTS), "meta": {"form": "v2"}}
    elif name == "settings_changed":
        payload = {
            "settings": {
                "dark_mode": rng.random() < 0.5,
                "language": rng.choice(("ru", "en", "pt")),
                "notifications": {"push": rng.random() < 0.6, "email": None},
            }
        }
    elif name == "push_opened":
        payload = {"campaign": "осенняя_распродажа", "push_id": f"p-{rng.randint(1, 999):06d}", "ab": {"group": "B"}}
    elif name == "просмотр_каталога":
        payload = {"категория": rng.choice(("Обувь", "Одежда", "Аксессуары")), "фильтры": {"размер": 42}}
    else:  # tutorial_complete and anything else: no payload
        return ""
    if name == "settings_changed":  # pretty-printed by this SDK call: real line breaks inside the CSV field
        return json.dumps(payload, ensure_ascii=False, indent=2)
    return json.dumps(payload, ensure_ascii=False)


# The custom profile attributes the demo app sets (each exported as a column of its own name when requested).
PROFILE_ATTRIBUTES = ("plan", "level", "coins", "is_subscriber", "favorite_category", "referral_source", "nickname")


def _custom_attributes(dev: _Device, ordinal: int) -> tuple[str, ...]:
    """The device's profile attributes on a day, as exported text in PROFILE_ATTRIBUTES order ('' = not set)."""
    rng = _rng("custom", dev.custom_seed, ordinal)
    if rng.random() < 0.05:
        return ("",) * len(PROFILE_ATTRIBUTES)
    days = max(0, ordinal - dev.install_day)
    return (
        "premium" if dev.custom_seed % 5 == 0 else "free",
        str(1 + days // 3 + dev.custom_seed % 7),
        f"{(dev.custom_seed % 1000) * 1.5 + days * 0.25:.2f}",
        "true" if dev.custom_seed % 5 == 0 else "false",
        ("Обувь", "Одежда", "Электроника", "Books, Music & More")[dev.custom_seed % 4],
        ("friend", "ads", "organic")[dev.custom_seed % 3],
        'Ali "the 1st", Zürich' if dev.custom_seed % 4 == 1 else "",
    )


class _LocalClock:
    """Unix seconds -> local ``YYYY-MM-DD HH:MM:SS`` in one zone (UTC offset cached per 15 minutes)."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._offsets: dict[int, int] = {}

    def fmt(self, ts: int) -> str:
        block = ts // 900  # zones change offset on quarter-hour boundaries
        offset = self._offsets.get(block)
        if offset is None:
            off = dt.datetime.fromtimestamp(block * 900, self.tz).utcoffset()
            offset = int(off.total_seconds()) if off is not None else 0
            self._offsets[block] = offset
        local = _UNIX_EPOCH + dt.timedelta(seconds=ts + offset)
        return f"{local:%Y-%m-%d %H:%M:%S}"


_UNIX_EPOCH = dt.datetime(1970, 1, 1)


def _local_day_bounds(day: dt.date, tz: ZoneInfo) -> tuple[int, int]:
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz).timestamp()
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz).timestamp()
    return int(start), int(end)


def _receive_delay(rng: random.Random) -> int:
    u = rng.random()
    if u < 0.85:
        return rng.randint(1, 30)
    if u < 0.97:
        return rng.randint(31, 900)
    return rng.randint(3600, 36 * 3600)  # device was offline: may arrive the next day


_EXTRA_RESOURCES = (REVENUE_EVENTS, AD_REVENUE_EVENTS, CRASHES, ERRORS)

# In-app purchases: (product id, USD price, consumable); other currencies at fixed demo rates (the
# store prices each product per currency: no conversion happens anywhere downstream).
_PRODUCTS = (
    ("sku_1001.premium_month", 3.99, False),
    ("sku_3001.coins_1000", 0.99, True),
    ("sku_3002.coins_5000", 4.99, True),
    ("sku_1002.starter_pack", 1.99, False),
    ("sku_3003.no_ads", 2.99, False),
)
_CURRENCIES = (("USD", 1.0, 70), ("RUB", 90.0, 15), ("EUR", 0.92, 10), ("KZT", 450.0, 5))
# Ad revenue: (network, unit id pattern, weight); (type, USD range per impression, weight)
_AD_NETWORKS = (
    ("Yandex", "R-M-{n}-{k}", 45),
    ("AdMob", "ca-app-pub-39402560999{n}/{k}", 30),
    ("myTarget", "{n}{k}", 15),
    ("AppLovin", "{k}a{n}", 10),
)
_AD_TYPES = (
    ("banner", (0.0002, 0.002), 50),
    ("interstitial", (0.002, 0.02), 20),
    ("rewarded", (0.005, 0.04), 20),
    ("native", (0.0005, 0.004), 6),
    ("mrec", (0.0005, 0.003), 3),
    ("other", (0.0001, 0.001), 1),
)
_AD_PLACEMENTS = (("main_bottom", "Главная, низ"), ("level_end", "Level end"), ("rewarded_coins", 'Награда "Монеты"'))
# Crash signatures per OS: (name, stack trace); errors: (id, name, details)
_CRASHES = {
    "android": (
        (
            "java.lang.NullPointerException",
            "java.lang.NullPointerException: Attempt to invoke virtual method 'int java.lang.String.length()' on a "
            "null object reference\n\tat ru.demo.lakehouse.shop.cart.CartAdapter.onBindViewHolder(CartAdapter.kt:87)\n"
            "\tat androidx.recyclerview.widget.RecyclerView$Adapter.bindViewHolder(RecyclerView.java:7065)",
        ),
        (
            "java.lang.IllegalStateException",
            "java.lang.IllegalStateException: Fragment CheckoutFragment{4f2a1b} not attached to a context.\n"
            "\tat androidx.fragment.app.Fragment.requireContext(Fragment.java:967)\n"
            "\tat ru.demo.lakehouse.shop.checkout.CheckoutFragment.onPayClicked(CheckoutFragment.kt:142)",
        ),
        (
            "java.lang.OutOfMemoryError",
            "java.lang.OutOfMemoryError: Failed to allocate a 33177612 byte allocation with 8388608 free bytes\n"
            "\tat android.graphics.BitmapFactory.nativeDecodeStream(Native Method)\n"
            "\tat ru.demo.lakehouse.shop.images.ImageLoader.decode(ImageLoader.kt:55)",
        ),
    ),
    "ios": (
        (
            "EXC_BAD_ACCESS (SIGSEGV)",
            "Exception Type:  EXC_BAD_ACCESS (SIGSEGV)\nException Codes: KERN_INVALID_ADDRESS at 0x0000000000000010\n"
            "0   Shop  0x0000000100a1c2d4 CartViewController.tableView(_:cellForRowAt:) + 212\n"
            "1   UIKitCore  0x00000001a2b3c4d5 -[UITableView _createPreparedCellForGlobalRow:withIndexPath:] + 1234",
        ),
        (
            "Fatal error: Index out of range",
            "Fatal error: Index out of range\n"
            "0   libswiftCore.dylib  0x00000001a0f2e3c4 _assertionFailure(_:_:file:line:flags:)\n"
            '1   Shop  0x0000000100b2c3d4 CatalogViewModel.item(at:) + 96 ("Catalog, page 2")',
        ),
    ),
    "windows": (
        (
            "System.InvalidOperationException",
            "System.InvalidOperationException: Collection was modified; enumeration operation may not execute.\n"
            "   at DemoLakehouse.Shop.Cart.Refresh() in C:\\src\\Shop\\Cart.cs:line 41",
        ),
    ),
}
_ERRORS = (
    (
        "network.timeout",
        "Request timed out",
        "GET https://api.example.com/v2/catalog?page=2&sort=price,asc timed out after 30000 ms",
    ),
    ("payment.declined", "Оплата отклонена", "Код 51: недостаточно средств; заказ №{n}"),
    ("json.parse", "Unexpected token in JSON", 'Unexpected token < in JSON at position 0: "<html>502 Bad Gateway"'),
    ("image.decode", "Image decode failed", "Failed to decode https://cdn.example.com/img/{n},large.png"),
)


@dataclass
class _Visit:
    """One session of a device on the day, as the money and stability rows need it."""

    session_id: str
    start_ts: int
    last_ts: int
    city: str
    country: str
    conn: str
    ad_impressions: list[int]


def _age(birth_date: str, day: dt.date) -> str:
    """The profile's age on ``day`` in whole years, as profiles_v2 exports appmetrica_birth_date ('30'); '' unset."""
    if not birth_date:
        return ""
    born = dt.date.fromisoformat(birth_date)
    return str(day.year - born.year - ((day.month, day.day) < (born.month, born.day)))


def _sdk_number(sdk: str) -> str:
    """The SDK version as the integer these exports document ("6.1.0" -> "6001000")."""
    major, minor, patch = (int(p) for p in sdk.split("."))
    return str(major * 1_000_000 + minor * 1_000 + patch)


def _device_fields(
    dev: _Device, visit: _Visit, ipv6: str, app: tuple[str, str, str, str], profile_id: str, application_id: str
) -> dict[str, str]:
    """Every device, app and session field the revenue, ad revenue, crash and error exports carry, by name."""
    version, build, sdk, package = app
    return {
        "appmetrica_device_id": dev.device_id, "city": visit.city, "country_iso_code": visit.country,
        "connection_type": visit.conn, "device_ipv6": ipv6, "device_locale": dev.locale,
        "device_manufacturer": dev.manufacturer, "device_model": dev.model, "device_type": dev.device_type,
        "google_aid": dev.google_aid, "ios_ifa": dev.ios_ifa, "ios_ifv": dev.ios_ifv, "mcc": dev.mcc, "mnc": dev.mnc,
        "operator_name": dev.operator, "original_device_model": dev.original_model, "os_name": dev.os_name,
        "os_version": dev.os_version, "windows_aid": dev.windows_aid,
        "android_id": f"{(dev.custom_seed * 2654435761) % 2**64:016x}" if dev.os_name == "android" else "",
        "session_id": visit.session_id, "installation_id": dev.installation_id, "profile_id": profile_id,
        "app_version_name": version, "app_build_number": build, "app_package_name": package,
        "appmetrica_sdk_version": _sdk_number(sdk), "application_id": application_id,
    }  # fmt: skip


def _money_and_stability(
    out: dict[str, list[tuple[str, ...]]],
    dev: _Device,
    ordinal: int,
    day_end: int,
    visits: list[_Visit],
    clock: _LocalClock,
    ipv6: str,
    app: tuple[str, str, str, str],
    profile_id: str,
    application_id: str,
) -> None:
    """The device's in-app purchases, ad revenue, crashes and errors of the day, inside its sessions.

    A minority of devices pay: premium subscribers renew monthly, a few others buy now and then; a
    purchase is refunded (negative price) rarely. Most ad impressions bring ad revenue. Crashes and
    errors happen in a small share of sessions (most days of a small app have no crash at all). A
    separate random stream per device and day: the other resources' rows do not change.
    """
    if not visits:
        return
    rng = _rng("money", dev.device_id, dev.custom_seed, ordinal)

    def moment(visit: _Visit) -> int:
        return min(day_end - 1, visit.start_ts + rng.randint(0, max(1, visit.last_ts - visit.start_ts + 30)))

    def add(resource: Any, values: dict[str, str]) -> None:
        out[resource.name].append(tuple(values[f] for f in resource.fields))

    currency, rate, _w = _pick(_rng("currency", dev.custom_seed), _CURRENCIES)
    purchases: list[tuple[str, float, bool]] = []
    if dev.custom_seed % 5 == 0 and (ordinal - dev.install_day) % 30 == 1:  # premium plan: the monthly renewal
        purchases.append(_PRODUCTS[0])
    elif dev.custom_seed % 100 in range(21, 29) and rng.random() < 0.3:  # an occasional buyer
        purchases.extend(rng.choice(_PRODUCTS[1:]) for _ in range(1 if rng.random() < 0.85 else 2))
    for product, usd, consumable in purchases:
        visit = rng.choice(visits)
        ts = moment(visit)
        quantity = rng.randint(2, 5) if consumable and rng.random() < 0.2 else 1
        price = round(usd * rate, 2) if rate < 10 else float(round(usd * rate))
        if dev.os_name == "android":  # a Google Play order id; App Store transaction ids are 15 digits
            order = f"GPA.33{rng.randrange(100, 1000)}-{rng.randrange(10**4):04d}-{rng.randrange(10**4):04d}-"
            order += f"{rng.randrange(10**5):05d}"
        else:
            order = str(rng.randrange(10**14, 10**15))
        refunded = rng.random() < 0.03
        for sign, when in ((1, ts), (-1, min(day_end - 1, ts + rng.randint(60, 3600)))) if refunded else ((1, ts),):
            recv = when + _receive_delay(rng)
            add(REVENUE_EVENTS, {
                **_device_fields(dev, visit, ipv6, app, profile_id, application_id),
                "revenue_quantity": str(quantity), "revenue_price": f"{sign * price:.2f}", "revenue_currency": currency,
                "revenue_product_id": product, "revenue_order_id": order,
                "revenue_order_id_source": "autogenerated" if rng.random() < 0.85 else "user_defined",
                "is_revenue_verified": rng.choices(("true", "undefined", "false"), weights=(80, 15, 5))[0],
                "event_datetime": clock.fmt(when), "event_name": "purchase" if sign > 0 else "refund",
                "event_receive_datetime": clock.fmt(recv), "event_receive_timestamp": str(recv),
                "event_timestamp": str(when),
            })  # fmt: skip

    for visit in visits:
        for ts in visit.ad_impressions:
            if rng.random() >= 0.85:
                continue  # the network reported no revenue for this impression
            network, unit, _wn = _pick(rng, _AD_NETWORKS)
            ad_type, (low, high), _wt = _pick(rng, _AD_TYPES)
            amount = rng.uniform(low, high)
            ad_currency = "RUB" if network == "Yandex" and rng.random() < 0.2 else "USD"
            if ad_currency == "RUB":
                amount *= 90
            placement_id, placement_name = rng.choice(_AD_PLACEMENTS)
            when = min(day_end - 1, ts + rng.randint(0, 2))
            recv = when + _receive_delay(rng)
            add(AD_REVENUE_EVENTS, {
                **_device_fields(dev, visit, ipv6, app, profile_id, application_id),
                "ad_revenue_datetime": clock.fmt(when), "ad_revenue_timestamp": str(when),
                "ad_revenue_receive_datetime": clock.fmt(recv), "ad_revenue_receive_timestamp": str(recv),
                "ad_revenue": f"{amount:.9f}" if rng.random() < 0.3 else f"{amount:.6f}",
                "ad_revenue_currency": ad_currency, "ad_revenue_type": ad_type,
                "ad_revenue_data_source": "autocollected" if rng.random() < 0.9 else "manual",
                "ad_revenue_network": network, "ad_revenue_placement_id": placement_id,
                "ad_revenue_placement_name": placement_name,
                "ad_revenue_unit_id": unit.format(n=1_234_567 + dev.slot % 3, k=placement_id.count("_")),
                "ad_revenue_unit_name": f"{ad_type}_{placement_id}",
                "ad_revenue_precision": rng.choice(("publisher_defined", "estimated", "precise")),
                "ad_revenue_payload": json.dumps({"layout": placement_id, "ab": "B"}) if rng.random() < 0.3 else "",
            })  # fmt: skip

    crash_rate = 0.02 if dev.os_name == "android" else 0.01
    for visit in visits:
        if rng.random() < crash_rate:
            name, trace = rng.choice(_CRASHES[dev.os_name])
            when = moment(visit)
            recv = when + (_receive_delay(rng) if rng.random() < 0.5 else rng.randint(30, 7200))  # sent on next launch
            add(CRASHES, {
                **_device_fields(dev, visit, ipv6, app, profile_id, application_id),
                "crash": trace, "crash_datetime": clock.fmt(when), "crash_timestamp": str(when),
                "crash_group_id": str(_rng("crash_group", dev.os_name, name).getrandbits(63)),
                "crash_id": str(rng.getrandbits(64)), "crash_name": name,
                "crash_receive_datetime": clock.fmt(recv), "crash_receive_timestamp": str(recv),
            })  # fmt: skip
        if rng.random() < 0.05:
            for _ in range(1 if rng.random() < 0.7 else 2):
                error_id, error_name, details = rng.choice(_ERRORS)
                when = moment(visit)
                recv = when + _receive_delay(rng)
                add(ERRORS, {
                    **_device_fields(dev, visit, ipv6, app, profile_id, application_id),
                    "error": details.format(n=rng.randrange(10**5, 10**6)), "error_datetime": clock.fmt(when),
                    "error_timestamp": str(when), "error_id": error_id, "error_name": error_name,
                    "error_receive_datetime": clock.fmt(recv), "error_receive_timestamp": str(recv),
                })  # fmt: skip


@functools.lru_cache(maxsize=8)  # ~20 MB per day at 2000 devices
def _simulate_day(
    application_id: str, day: dt.date, tz: ZoneInfo, devices: int, seed: int, anomaly_rate: float
) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Every resource of one day, as tuples in field order (cached; callers get fresh dicts)."""
    ordinal = day.toordinal()
    day_start, day_end = _local_day_bounds(day, tz)
    day_len = day_end - day_start
    clock = _LocalClock(tz)
    rng = _rng("day", application_id, seed, day.isoformat())
    weekend = day.weekday() >= 5
    events: list[tuple[str, ...]] = []
    sessions: list[tuple[str, ...]] = []
    installs: list[tuple[str, ...]] = []
    profiles: list[tuple[str, ...]] = []
    extra: dict[str, list[tuple[str, ...]]] = {r.name: [] for r in _EXTRA_RESOURCES}
    event_names = [n for n, _ in _EVENT_NAMES]
    huge_event_done = rng.random() >= 0.3  # on ~30 % of days one event carries a field of ~131000 chars

    for slot in range(devices):
        dev = _device_on(application_id, seed, slot, ordinal)
        installed_today = dev.install_day == ordinal
        if ordinal < dev.install_day or ordinal >= dev.end_day:
            continue
        p = dev.activity * (1.15 if weekend else 1.0)
        if not installed_today and rng.random() >= p:
            continue
        version, build, sdk, package = _app_version(dev, ordinal)
        profile_id = dev.profile_id if dev.profile_id and ordinal >= dev.profile_from_day else ""
        n_sessions = rng.choices((1, 2, 3), weights=dev.session_weights)[0]
        starts = sorted(
            (_weighted(rng, range(24), _HOUR_CUM) * 3600 + rng.randrange(3600)) % day_len for _ in range(n_sessions)
        )
        travelling = rng.random() < 0.03
        ipv6 = f"{dev.ipv6_prefix}::{rng.randrange(1, 0xFFFF):x}" if rng.random() < 0.6 else ""
        first_start = day_start + starts[0]
        visits: list[_Visit] = []
        day_sessions = 0
        for k, offset in enumerate(starts):
            start_ts = day_start + offset
            session_id = str(dev.session_base + (ordinal - dev.install_day) * 4 + k)
            if travelling and k == n_sessions - 1:
                city, country = _TRAVEL[(dev.slot + ordinal) % len(_TRAVEL)]
            else:
                city, country = dev.city, dev.country
            r = rng.random()
            conn = "wifi" if r < dev.wifi_share else ("cell" if r < 0.97 else "unknown")
            if conn == "cell" and not dev.operator:
                conn = "wifi"
            device_part = _device_part(dev, city, country, conn, ipv6)
            visits.append(_Visit(session_id, start_ts, start_ts, city, country, conn, []))
            recv = start_ts + _receive_delay(rng)
            sessions.append(
                (
                    clock.fmt(start_ts),
                    str(start_ts),
                    clock.fmt(recv),
                    str(recv),
                    session_id,
                    profile_id,
                    *device_part,
                    build,
                    package,
                    version,
                    application_id,
                )
            )
            day_sessions += 1
            n_events = min(20, 1 + int(rng.expovariate(1 / 6)))
            ts = start_ts + rng.randint(0, 3)
            for i in range(n_events):
                if i:
                    ts += rng.randint(2, 120)
                if ts >= day_end:
                    break  # the rest of the session belongs to the next day's export
                name = "app_open" if i == 0 else _weighted(rng, event_names, _EVENT_CUM)
                payload = _event_json(rng, name)
                if name == "feedback" and not huge_event_done:
                    payload = json.dumps({"comment": "diagnostics", "log": "ж" * HUGE_FIELD_CHARS}, ensure_ascii=False)
                    huge_event_done = True
                recv = ts + _receive_delay(rng)
                row = [
                    name,
                    payload,
                    clock.fmt(ts),
                    str(ts),
                    clock.fmt(recv),
                    str(recv),
                    session_id,
                    dev.installation_id,
                    profile_id,
                    *device_part,
                    build,
                    package,
                    version,
                    application_id,
                ]
                if anomaly_rate and rng.random() < anomaly_rate:
                    _spoil(rng, row)
                events.append(tuple(row))
                visits[-1].last_ts = ts
                if name == "ad_impression":
                    visits[-1].ad_impressions.append(ts)
                if rng.random() < DUPLICATE_RATE:
                    events.append(tuple(row))  # the SDK re-sent the same event

        _money_and_stability(extra, dev, ordinal, day_end, visits, clock, ipv6, (version, build, sdk, package),
                             profile_id, application_id)  # fmt: skip
        if installed_today:
            install_ts = max(day_start, first_start - rng.randint(5, 120))
            recv = install_ts + _receive_delay(rng)
            tracker, publisher, match = dev.tracker
            installs.append(
                (
                    clock.fmt(install_ts),
                    str(install_ts),
                    clock.fmt(recv),
                    str(recv),
                    "true" if dev.is_reinstallation else "false",
                    "true" if dev.is_reattribution and tracker else "false",
                    match,
                    tracker,
                    publisher,
                    dev.installation_id,
                    "",
                    ipv6,
                    # click_ipv6: the tracked ad click came from the same network
                    f"{dev.ipv6_prefix}::{install_ts % 0xFFFE + 1:x}" if tracker else "",
                    *_install_device_part(dev),
                    package,
                    version,
                    application_id,
                )
            )
        if profile_id:
            days = ordinal - dev.install_day
            mean_sessions = sum(n * w for n, w in zip((1, 2, 3), dev.session_weights, strict=True))
            total_sessions = int(days * dev.activity * mean_sessions)
            profiles.append(
                (
                    profile_id,
                    dev.device_id,
                    dev.gender,
                    _age(dev.birth_date, day),
                    dev.name,
                    dev.notifications,
                    dt.date.fromordinal(dev.install_day).isoformat(),
                    day.isoformat(),
                    str(total_sessions + day_sessions),
                    str(days // 90 + dev.custom_seed % 2),
                    str(days // 30 + dev.custom_seed % 3),
                    _sdk_number(sdk),
                    dev.city,
                    dev.country,
                    dev.manufacturer,
                    dev.model,
                    dev.os_name,
                    dev.os_version,
                    version,
                    *_custom_attributes(dev, ordinal),
                )
            )

    result = {
        EVENTS.name: tuple(events),
        SESSIONS_STARTS.name: tuple(sessions),
        INSTALLATIONS.name: tuple(installs),
        PROFILES_V2.name: tuple(profiles),
        **{name: tuple(rows) for name, rows in extra.items()},
    }
    for name, rows in result.items():
        width = len(_row_fields(name))
        if rows and len(rows[0]) != width:  # pragma: no cover - guards the tuple layouts above
            raise AssertionError(f"generator row width {len(rows[0])} != {width} fields of {name}")
    return result


def _device_part(dev: _Device, city: str, country: str, conn: str, ipv6: str) -> tuple[str, ...]:
    """The device fields shared by events, session starts and installs, in resources.py order."""
    return (
        dev.device_id, city, country, conn, ipv6, dev.locale, dev.manufacturer, dev.model, dev.device_type,
        dev.google_aid, dev.ios_ifa, dev.ios_ifv, dev.mcc, dev.mnc, dev.operator, dev.original_model,
        dev.os_name, dev.os_version, dev.windows_aid,
    )  # fmt: skip


def _install_device_part(dev: _Device) -> tuple[str, ...]:
    """The device fields of an install row (installations documents no device_ipv6 or original_device_model)."""
    return (
        dev.device_id, dev.city, dev.country, "wifi", dev.locale, dev.manufacturer, dev.model, dev.device_type,
        dev.google_aid, dev.ios_ifa, dev.ios_ifv, dev.mcc, dev.mnc, dev.operator, dev.os_name, dev.os_version,
        dev.windows_aid,
    )  # fmt: skip


def _row_fields(resource: str) -> tuple[str, ...]:
    """The keys of a generated row: the resource's fields, then the demo's custom attributes where it takes them."""
    res = RESOURCES[resource]
    return res.fields + (PROFILE_ATTRIBUTES if res.takes_custom_attributes else ())


def _spoil(rng: random.Random, row: list[str]) -> None:
    """Turn a good event row into one a loader must quarantine (only when anomaly_rate > 0)."""
    kind = rng.randrange(4)
    if kind == 0:
        row[1] = '{"screen": {"name": "cat'  # truncated JSON
    elif kind == 1:
        row[2] = "2026-13-45 25:61:00"  # unparseable datetime
    elif kind == 2:
        row[9] = ""  # missing device id
    else:
        row[9] = "not-a-number"


def _as_zone(tz: ZoneInfo | str) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def generate_rows(
    resource: str,
    day: dt.date,
    *,
    application_id: str,
    tz: ZoneInfo | str,
    devices: int = 2000,
    seed: int = 0,
    anomaly_rate: float = 0.0,
) -> list[dict[str, str]]:
    """Rows of ``resource`` whose local date (``tz``) is ``day``, keys exactly the resource's fields (profiles_v2:
    and the demo's ``PROFILE_ATTRIBUTES``).

    Deterministic in (resource, day, application_id, tz, devices, seed, anomaly_rate). ``anomaly_rate``
    > 0 spoils that share of event rows (bad JSON, bad datetime, bad device id) for quarantine demos;
    the default 0 gives only well-formed rows.
    """
    if resource not in RESOURCES:
        raise ValueError(f"unknown AppMetrica resource {resource!r}; supported: {', '.join(RESOURCES)}")
    if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
        raise TypeError(f"day must be a datetime.date, got {day!r}")
    if devices < 0:
        raise ValueError(f"devices must be >= 0, got {devices}")
    if not (0.0 <= anomaly_rate <= 1.0) or math.isnan(anomaly_rate):
        raise ValueError(f"anomaly_rate must be within [0, 1], got {anomaly_rate}")
    fields = _row_fields(resource)
    rows = _simulate_day(str(application_id), day, _as_zone(tz), int(devices), int(seed), float(anomaly_rate))
    return [dict(zip(fields, row, strict=True)) for row in rows[resource]]


def write_csv(
    rows: Iterable[Mapping[str, str] | Sequence[str]], fields: Sequence[str], fh: TextIO, bom: bool = False
) -> int:
    """Write ``rows`` as CSV (header first, minimal quoting, ``\\n`` line ends) to the text stream ``fh``.

    ``fh`` should be opened with ``newline=""``. Rows may be mappings (read by field name) or sequences
    already in field order. Returns the number of data rows written.
    """
    if bom:
        fh.write("\ufeff")
    writer = csv.writer(fh, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writerow(fields)
    count = 0
    for row in rows:
        if isinstance(row, Mapping):
            writer.writerow([row.get(f, "") for f in fields])
        else:
            writer.writerow(row)
        count += 1
    return count
