"""Shared fixtures of the integration tests: a gold lake built once for the feature-store tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
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
from moto_s3 import moto_endpoint
from test_gold_marts import FIRST_DAY, _add_event, _Gen, make_events, write_silver

from lakehouse.settings import Layout
from transforms.gold import build_gold


@pytest.fixture(scope="session")
def feature_lake(tmp_path_factory: pytest.TempPathFactory) -> FeatureLake:
    root = tmp_path_factory.mktemp("feature_lake")
    rows = make_events(seed=7, devices=150)
    gen = _Gen(rng=__import__("random").Random(1), rows=rows)
    for day_index, hour in ((24, 10), (25, 23)):
        at = dt.datetime.combine(FIRST_DAY + dt.timedelta(days=day_index), dt.time(hour, 30))
        _add_event(
            gen, LATE_DEVICE, at, session_id=gen.session(),
            attrs={"os_name": LATE_OS, "country_iso_code": LATE_COUNTRY, "device_type": "phone"},
        )  # fmt: skip
    before = {"country_iso_code": "RU", "app_version_name": "1.0.0", "device_type": None}
    after = {"country_iso_code": "KZ", "app_version_name": "2.0.0", "device_type": "phone"}
    # its last event is after New York leaves DST (2026-11-01), so the spine and its rows run past that day
    for day, hour, attrs in (
        (dt.date(2026, 11, 2), 0, after),
        (MOVER_FIRST_DAY, 12, before),
        (MOVE_DAY, 0, after),
        (MOVE_DAY + dt.timedelta(days=2), 9, after),
    ):
        at = dt.datetime.combine(day, dt.time(hour, 5))
        _add_event(gen, MOVER_DEVICE, at, session_id=gen.session(), attrs={"os_name": "android", **attrs})
    write_silver(root, rows)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAKEHOUSE_FEATURE_FIT_START", FIT_START.isoformat())
        mp.setenv("LAKEHOUSE_FEATURE_FIT_END", FIT_END.isoformat())
        summary = build_gold(Layout(root))
    return FeatureLake(root=root, summary=summary)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """One moto S3 server for the session (see moto_s3.py); test files create their own buckets."""
    with moto_endpoint() as url:
        yield url
