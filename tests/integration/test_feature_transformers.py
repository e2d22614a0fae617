"""Edge cases of the fitted transformers on a tiny hand-made lake: a constant training window, unseen
categories and nulls, training windows that are invalid or hold no rows, and rows arriving after a
date that must not change its encodings."""

from __future__ import annotations

import datetime as dt
import math
import random
import shutil
import statistics
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from gold_tables import read_gold
from test_gold_marts import _add_event, _Gen, write_silver

from lakehouse.settings import Layout
from transforms.gold import GoldBuildError, _plan, build_gold

pytestmark = pytest.mark.integration

A, B, C = 101, 2**64 - 7, 2**64 - 9


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
    state = read_gold(lake, "feature_transformer_state").to_pylist()
    scalers = [r for r in state if r["transformer"].endswith("scaler")]
    assert len(scalers) == 14 and all(r["fit_rows"] == 1 for r in scalers)
    assert all(r["std"] == 0 and r["scale"] == 1.0 and r["data_min"] == r["data_max"] for r in scalers)
    out = read_gold(lake, "device_features_daily_transformed")
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


def _table(gold: Path, mart: str, date_column: str, through: dt.date | None = None) -> pa.Table:
    """A mart's rows (dated up to ``through``, all when None), in its key order."""
    table = read_gold(gold.parent, mart)
    return table if through is None else table.filter(pc.less_equal(table[date_column], pa.scalar(through)))


def test_later_rows_never_change_the_encodings_of_an_earlier_date(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point in time for the fitted state: rows dated after D, with extreme values and a new
    category, leave every encoded value of D bit-for-bit unchanged; the dates from theirs on see them."""
    day, later = dt.date(2026, 10, 10), dt.date(2026, 10, 12)  # the lake's last date, and new data 2 days on
    lake = tmp_path / "lake"
    shutil.copytree(tiny / "silver", lake / "silver")
    for name in ("LAKEHOUSE_FEATURE_FIT_START", "LAKEHOUSE_FEATURE_FIT_END"):
        monkeypatch.delenv(name, raising=False)  # no window: every date's state is fitted on the rows up to it
    build_gold(Layout(lake))
    gold = lake / "gold"
    marts = {
        "device_features_daily_transformed": "feature_date",
        "feature_transformer_state": "fit_end_date",
        "feature_stats_daily": "feature_date",
    }
    before = {mart: _table(gold, mart, column, day) for mart, column in marts.items()}
    assert max(before["device_features_daily_transformed"]["feature_date"].to_pylist()) == day

    gen = _Gen(rng=random.Random(4), rows=[])
    new = {"os_name": "harmonyos", "device_type": "car", "country_iso_code": "ZZ"}
    _add_event(gen, C, dt.datetime(2026, 10, 12, 9), session_id=9, attrs=new)
    for i in range(500):  # far above any count the states up to D have seen
        _add_event(gen, A, dt.datetime(2026, 10, 12, 10) + dt.timedelta(seconds=i), session_id=7,
                   attrs={"os_name": "android", "device_type": "phone", "country_iso_code": "RU"})  # fmt: skip
    write_silver(lake, gen.rows)
    summary = build_gold(Layout(lake), changed_dates=[later])  # the daily run's incremental build
    assert summary["mode"] == "incremental"

    for mart, column in marts.items():
        assert _table(gold, mart, column, day).equals(before[mart]), mart  # values, types and order, bit for bit
    state = _table(gold, "feature_transformer_state", "fit_end_date").to_pylist()
    vocabulary = {(r["fit_end_date"], r["feature"], r["category"]) for r in state}
    dates = sorted({r["fit_end_date"] for r in state})
    assert dates[-1] == later and day in dates
    for value, feature in ((new["os_name"], "os_name"), (new["country_iso_code"], "country_iso_code")):
        assert [d for d in dates if (d, feature, value) in vocabulary] == [later]  # seen from its own date on
    rows = {(r["appmetrica_device_id"], r["feature_date"]): r
            for r in _table(gold, "device_features_daily_transformed", "feature_date").to_pylist()}  # fmt: skip
    fresh = rows[(C, later)]
    known = {(r["feature"], r["category"]): r["category_index"] for r in state
             if r["fit_end_date"] == later and r["transformer"] == "label_encoder"}  # fmt: skip
    assert fresh["os_name_label"] == known[("os_name", "harmonyos")] != -1
    assert fresh["country_iso_code_label"] == known[("country_iso_code", "ZZ")] != -1
    assert fresh["os_name_one_hot"][known[("os_name", "harmonyos")]] == 1
    assert rows[(A, later)]["events_1d_min_max"] == 1.0  # the largest events_1d up to its date: its own
    assert rows[(A, day)]["os_name_label"] == known[("os_name", "android")]  # indices never move

    # the incremental build's latest state is the plain fit of every row up to its date
    features = [r for r in _table(gold, "device_features_daily", "feature_date").to_pylist()]
    assert max(r["feature_date"] for r in features) == later
    scalers = {r["feature"]: r for r in state if r["fit_end_date"] == later and r["transformer"] == "standard_scaler"}
    for column, fitted in scalers.items():
        values = [r[column] for r in features]
        assert fitted["fit_rows"] == len(values) and math.isclose(fitted["mean"], statistics.fmean(values))
        assert math.isclose(fitted["std"], statistics.pstdev(values), abs_tol=1e-12)

    # a changed training window refits every state: the next build is a full one
    monkeypatch.setenv("LAKEHOUSE_FEATURE_FIT_END", day.isoformat())
    plan, why = _plan(Layout(lake), [later])
    assert plan is None and "feature training window" in why
