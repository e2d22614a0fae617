"""Edge cases of the fitted transformers on a tiny hand-made lake: a constant training window, unseen
categories and nulls, and training windows that are invalid or hold no rows."""

from __future__ import annotations

import datetime as dt
import random
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_gold_marts import _add_event, _Gen, write_silver

from lakehouse.settings import Layout
from transforms.gold import GoldBuildError, build_gold

pytestmark = pytest.mark.integration

A, B = 101, 2**64 - 7


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    gen = _Gen(rng=random.Random(3), rows=[])
    a = {"os_name": "android", "device_type": "phone", "country_iso_code": "RU"}
    for day, count in ((1, 3), (2, 1)):
        for i in range(count):
            at = dt.datetime(2026, 10, day, 10, i)
            _add_event(gen, A, at, session_id=7, attrs=a)
    _add_event(gen, B, dt.datetime(2026, 10, 10, 9), session_id=8, attrs={"os_name": "ios", "country_iso_code": None})
    write_silver(root, gen.rows)
    return root


def build(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: str, end: str) -> tuple[Path, dict]:
    lake = tmp_path / "lake"
    shutil.copytree(root / "silver", lake / "silver")
    monkeypatch.setenv("LAKEHOUSE_FEATURE_FIT_START", start)
    monkeypatch.setenv("LAKEHOUSE_FEATURE_FIT_END", end)
    return lake, build_gold(Layout(lake))


def test_a_constant_window_scales_to_zero_and_unknowns_share_a_bucket(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake, _ = build(tiny, tmp_path, monkeypatch, "2026-10-01", "2026-10-01")  # one row: every column constant
    gold = lake / "gold"
    state = pq.read_table(gold / "feature_transformer_state/feature_transformer_state.parquet").to_pylist()
    scalers = [r for r in state if r["transformer"].endswith("scaler")]
    assert len(scalers) == 14 and all(r["fit_rows"] == 1 for r in scalers)
    assert all(r["std"] == 0 and r["scale"] == 1.0 and r["data_min"] == r["data_max"] for r in scalers)
    out = pq.read_table(gold / "device_features_daily_transformed/device_features_daily_transformed.parquet")
    rows = {(r["appmetrica_device_id"], r["feature_date"]): r for r in out.to_pylist()}
    fitted = rows[(A, dt.date(2026, 10, 1))]
    numeric = [c for c in out.column_names if c.endswith(("_standard", "_min_max"))]
    assert len(numeric) == 14 and all(fitted[c] == 0.0 for c in numeric)
    later = rows[(A, dt.date(2026, 10, 2))]
    assert later["events_7d_standard"] == later["events_7d_min_max"] == 1.0  # 4 events vs the fitted 3, scale 1
    assert all(v is not None for r in rows.values() for v in r.values())
    assert (fitted["os_name_label"], fitted["os_name_one_hot"]) == (0, [1, 0])
    assert (fitted["country_iso_code_label"], fitted["country_iso_code_one_hot"]) == (0, [1, 0])
    unseen = rows[(B, dt.date(2026, 10, 10))]  # ios was never seen, its country is null
    assert (unseen["os_name_label"], unseen["os_name_one_hot"]) == (-1, [0, 1])
    assert (unseen["country_iso_code_label"], unseen["country_iso_code_one_hot"]) == (-1, [0, 1])


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-10-05", "2026-10-02", r"2026-10-05 is after feature_fit_end_date 2026-10-02"),
        ("10/01/2026", "", r"feature_fit_start_date \(or env LAKEHOUSE_FEATURE_FIT_START\) must be a date"),
        ("2030-01-01", "2030-01-31", r"feature_transformer_state_covers_every_feature"),
    ],
    ids=["start-after-end", "not-a-date", "no-rows-in-window"],
)
def test_a_bad_training_window_stops_the_build(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: str, end: str, message: str
) -> None:
    with pytest.raises(GoldBuildError, match=message):
        build(tiny, tmp_path, monkeypatch, start, end)
    assert not (tmp_path / "lake" / "gold").exists()
