"""The run report page (lakehouse/run_report.py) on tiny data: its SVG plots, its figures, its pages on disk."""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse.delta import locate, replace_table
from lakehouse.features.drift import STATS_COLUMNS
from lakehouse.run_report import (
    HISTORY_DAYS,
    bar_chart,
    history_window,
    latest_page,
    layer_rows,
    line_chart,
    quarantine_rates,
    render_index,
    render_run_page,
    write_pages,
)
from lakehouse.settings import Layout
from lakehouse.storage import LocalLake

SVG = "{http://www.w3.org/2000/svg}"
DAY = dt.date(2026, 11, 2)
FIT = (dt.date(2026, 10, 25), dt.date(2026, 10, 31))


def _svg(text: str) -> ET.Element:
    return ET.fromstring(text)  # noqa: S314 - SVG this module drew; well-formed, or this raises


def test_line_chart_draws_each_series_threshold_alerts_and_the_window():
    dates = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
    alerts = [("2026-11-04", 0.4), ("2026-12-31", 9.0)]
    svg = _svg(line_chart("psi of x", dates, {"psi": [0.05, None, 0.1, 0.4]}, threshold=0.2, alerts=alerts,
                          band=("2026-10-30", "2026-11-02")))  # fmt: skip
    assert svg.get("class") == "plot" and svg.find(f"{SVG}title").text == "psi of x"
    (path,) = svg.iter(f"{SVG}path")
    assert path.get("d").count("L") == 2  # three known points joined, the gap skipped
    assert len([c for c in svg.iter(f"{SVG}circle") if c.get("class") == "alert"]) == 1  # a date off the chart: none
    assert len([ln for ln in svg.iter(f"{SVG}line") if ln.get("class") == "threshold"]) == 1
    (window,) = [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "window"]
    assert float(window.get("width")) > 0
    ys = {c.get("cy") for c in svg.iter(f"{SVG}circle") if c.get("class") != "alert"}
    assert len(ys) == 3  # 0.05, 0.1 and 0.4 at three heights


def test_line_chart_of_nothing_and_a_single_day_is_still_a_chart():
    assert _svg(line_chart("empty", [], {"rows": []})).get("width") == "420"
    one = _svg(line_chart("one", ["2026-11-01"], {"rows": [7]}))
    assert len(list(one.iter(f"{SVG}circle"))) == 1 and not list(one.iter(f"{SVG}path"))


def test_bar_chart_scales_bars_to_the_largest_and_says_when_empty():
    svg = _svg(bar_chart("rates", [("events: invalid_json", 0.02), ("events: bad <tag>", 0.01)], percent=True))
    widths = [float(r.get("width")) for r in svg.iter(f"{SVG}rect")]
    assert widths[0] == pytest.approx(2 * widths[1])
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert "events: bad <tag>" in texts and "2.00%" in texts
    assert "nothing quarantined" in [t.text for t in _svg(bar_chart("none", [])).iter(f"{SVG}text")]


def _summary(day: dt.date, *, bronze: int = 100, reasons: dict | None = None, status: str = "success") -> dict:
    reasons = {"invalid_json": 2, "missing_required_field": 1} if reasons is None else reasons
    return {"dag_id": "appmetrica_lakehouse", "date": day.isoformat(), "run_id": f"manual__{day}", "status": status,
            "failed_step": None if status == "success" else "gold", "written_at": "2026-11-03T00:10:00+00:00",
            "failures": {} if status == "success" else {"gold": {"error": "dbt build failed: <fct_device_daily>"}},
            "bronze_rows": {"events": bronze, "installations": 0}, "silver_rows": {"events_part": bronze - 3},
            "quarantined_rows": {"events": sum(reasons.values())},
            "quarantined_by_reason": {"events": reasons} if reasons else {}}  # fmt: skip


def _stat(feature: str, day: dt.date, psi: float, rows: int = 50) -> dict:
    return {"feature": feature, "feature_date": day, "rows": rows, "null_rate": 0.0, "mean": 2.5, "p50": 2.0,
            "p95": 6.0, "psi": psi, "state_version": "v1", "fit_start_date": FIT[0],
            "fit_end_date": FIT[1]}  # fmt: skip


def test_layer_rows_take_each_days_run_and_gold_rows_per_feature_date():
    days = [DAY - dt.timedelta(days=1), DAY]
    summaries = {DAY.isoformat(): _summary(DAY, bronze=120)}
    stats = [_stat("events_1d", days[0], 0.0, rows=40), _stat("events_7d", days[0], 0.0, rows=40),
             _stat("events_1d", DAY, 0.0, rows=45)]  # fmt: skip
    rows = layer_rows(days, summaries, stats)
    assert rows == {"bronze": [None, 120], "silver": [None, 117], "quarantine": [None, 3], "gold": [40, 45]}


def test_quarantine_rates_are_per_resource_bronze_rows_highest_first():
    summary = _summary(DAY, bronze=200, reasons={"invalid_json": 2, "invalid_datetime": 8})
    summary["quarantined_by_reason"]["installations"] = {"invalid_json": 1}  # no bronze rows: rate 0, not a crash
    assert quarantine_rates(summary) == [("events: invalid_datetime", 0.04), ("events: invalid_json", 0.01),
                                         ("installations: invalid_json", 0.0)]  # fmt: skip


def test_the_run_page_highlights_drift_and_failures_and_loads_nothing_from_elsewhere():
    stats = [_stat("events_1d", DAY - dt.timedelta(days=1), 0.05), _stat("events_1d", DAY, 0.9),
             _stat("<img src=x>", DAY, 0.01)]  # fmt: skip
    breaches = [{"feature": "events_1d", "feature_date": DAY.isoformat(), "metric": "psi", "value": 0.9,
                 "threshold": 0.2}]  # fmt: skip
    page = render_run_page(_summary(DAY, status="failed"), {}, stats, {"psi": 0.2, "null_rate": 0.05}, breaches)
    assert "Failed at step gold" in page and "&lt;fct_device_daily&gt;" in page
    assert "<img src=x>" not in page and "&lt;img src=x&gt;" in page
    assert "id='drift-alerts'" in page and "<b>events_1d</b> psi 0.9 &gt; 0.2" in page
    assert page.count("<td class='breach'>") == 1 and "events_1d (drift)" in page
    assert page.count('<svg class="plot"') == 4 + 1 + 2 * 2
    assert page.count('class="alert"') == 1  # the run day's PSI point; the day before is below the threshold
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page), "nothing is fetched from elsewhere"
    assert "<script" not in page


def test_index_lists_runs_newest_first():
    page = render_index([_summary(DAY - dt.timedelta(days=3)), _summary(DAY, status="failed")])
    assert page.index(DAY.isoformat()) < page.index((DAY - dt.timedelta(days=3)).isoformat())
    assert "href='latest'" in page and "class='status failed'" in page
    assert "No run has written its report yet" in render_index([])


def test_write_pages_reads_earlier_runs_and_the_gold_stats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("LAKEHOUSE_DRIFT_PSI_THRESHOLD", raising=False)
    layout = Layout(tmp_path / "data")
    runs = layout.reports / "appmetrica_lakehouse"
    earlier, too_old = DAY - dt.timedelta(days=2), DAY - dt.timedelta(days=HISTORY_DAYS)
    for day, bronze in ((earlier, 90), (too_old, 5000)):
        (runs / f"date={day}").mkdir(parents=True)
        (runs / f"date={day}" / "summary.json").write_text(json.dumps(_summary(day, bronze=bronze)))
    (runs / f"date={earlier}" / "index.html").write_text("<html>earlier</html>")
    rows = [_stat("events_1d", earlier, 0.01), _stat("events_1d", DAY, 0.7)]
    monkeypatch.delenv("LAKEHOUSE_STORAGE_URL", raising=False)
    table = pa.Table.from_pylist([{c: r[c] for c in STATS_COLUMNS} for r in rows])
    replace_table(locate("gold/feature_stats_daily", layout), table)  # the gold Delta table

    page, index = write_pages(_summary(DAY, bronze=110), runs / f"date={DAY}", layout, LocalLake(layout))
    assert page == runs / f"date={DAY}" / "index.html" and index == runs / "index.html"
    html = page.read_text()
    assert "<b>events_1d</b> psi 0.7 &gt; 0.2" in html
    assert "5,000" not in html and history_window(DAY)[0] > too_old  # the 30 days end on the run's day
    listed = index.read_text()
    assert f"date={DAY}/" in listed and f"date={earlier}/" in listed and f"date={too_old}/" not in listed
    assert latest_page(runs) == f"date={DAY}/"


def test_write_pages_without_gold_still_writes_the_page(tmp_path: Path):
    layout = Layout(tmp_path / "data")
    folder = layout.reports / "appmetrica_lakehouse" / f"date={DAY}"
    page, _ = write_pages(_summary(DAY, status="failed"), folder, layout, LocalLake(layout))
    assert "No feature statistics" in page.read_text() and "Failed at step gold" in page.read_text()
