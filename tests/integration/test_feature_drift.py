"""Feature monitoring end to end: feature_stats_daily built by dbt from a generated lake with one
feature's distribution shifted on one day, its PSI and statistics recomputed here in plain Python,
the drift check and its alert, and ``lakehouse features drift``."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import math
import os
import random
import socket
import sys
import time
from pathlib import Path

import pytest
from gold_tables import read_gold
from test_gold_marts import _add_event, _Gen, write_silver

from lakehouse import pipeline
from lakehouse.cli import main as cli_main
from lakehouse.features.drift import DriftThresholds, drift_report
from lakehouse.settings import Layout
from transforms.gold import build_gold

pytestmark = pytest.mark.integration

DEVICES = 200
FIRST = dt.date(2026, 10, 1)
FIT_START, FIT_END = dt.date(2026, 10, 8), dt.date(2026, 10, 10)
CALM, SHIFTED = dt.date(2026, 10, 11), dt.date(2026, 10, 12)  # SHIFTED: every device has 10x its events
NUMERIC = ("events_1d", "events_7d", "events_28d", "sessions_7d", "active_days_28d",
           "days_since_first_seen", "days_since_last_event")  # fmt: skip


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("drift")
    gen = _Gen(rng=random.Random(18), rows=[])
    for device in range(1, DEVICES + 1):
        for offset in range((SHIFTED - FIRST).days + 1):
            day = FIRST + dt.timedelta(days=offset)
            count = gen.rng.randint(1, 3) * (10 if day == SHIFTED else 1)
            session = gen.session()
            for i in range(count):
                _add_event(gen, device, dt.datetime.combine(day, dt.time(8, 0)) + dt.timedelta(minutes=i),
                           session_id=session, name="app_open", receive_delay=5)  # fmt: skip
    write_silver(root, gen.rows)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAKEHOUSE_FEATURE_FIT_START", FIT_START.isoformat())
        mp.setenv("LAKEHOUSE_FEATURE_FIT_END", FIT_END.isoformat())
        build_gold(Layout(root))
    return root


def _psi(expected: list[float], actual: list[float]) -> float:
    """PSI as the mart defines it, from scratch: bins at the expected values' distinct deciles."""
    ordered = sorted(expected)
    n = len(ordered)
    edges = sorted({ordered[max(math.ceil(n * q / 10) - 1, 0)] for q in range(1, 10)})

    def shares(values: list[float]) -> list[float]:
        counts = [0] * (len(edges) + 1)
        for v in values:
            counts[sum(1 for e in edges if e < v)] += 1
        return [max(c / len(values), 0.0001) for c in counts]

    return sum((a - e) * math.log(a / e) for e, a in zip(shares(expected), shares(actual), strict=True))


def test_stats_and_psi_match_a_plain_python_computation(lake: Path) -> None:
    features = read_gold(lake, "device_features_daily").to_pylist()
    stats = read_gold(lake, "feature_stats_daily").to_pylist()
    dates = sorted({r["feature_date"] for r in features})
    assert len(stats) == len(dates) * len(NUMERIC)
    assert [(r["feature"], r["feature_date"]) for r in stats] == sorted((f, d) for f in NUMERIC for d in dates)
    by_key = {(r["feature"], r["feature_date"]): r for r in stats}
    for feature in NUMERIC:
        fitted = [float(r[feature]) for r in features if FIT_START <= r["feature_date"] <= FIT_END]
        for day in (FIRST, FIT_START, CALM, SHIFTED):
            values = [r[feature] for r in features if r["feature_date"] == day]
            row = by_key[(feature, day)]
            assert row["rows"] == len(values)
            assert row["null_rate"] == sum(v is None for v in values) / len(values) == 0.0
            assert row["mean"] == pytest.approx(sum(values) / len(values))
            if day > FIT_END:  # judged against the whole window, every row of it dated before the day
                assert row["psi"] == pytest.approx(_psi(fitted, [float(v) for v in values]), abs=2e-6)
                assert (row["fit_start_date"], row["fit_end_date"]) == (FIT_START, FIT_END)
            else:  # no state yet (before the window), or the day is part of its own state's rows
                assert row["psi"] is None
                state = (None, None) if day < FIT_START else (FIT_START, day)
                assert (row["fit_start_date"], row["fit_end_date"]) == state
    assert by_key[("events_1d", SHIFTED)]["psi"] > 1 > 0.1 > by_key[("events_1d", CALM)]["psi"]
    assert by_key[("events_1d", SHIFTED)]["p50"] >= 10 * by_key[("events_1d", CALM)]["p50"] / 3


def test_the_shifted_feature_raises_an_alert_naming_it_and_the_calm_day_none(
    lake: Path, monkeypatch: pytest.MonkeyPatch, http_receiver
) -> None:
    conn = {"conn_type": "http", "host": f"{http_receiver.url}/hooks/drift"}
    monkeypatch.setenv("AIRFLOW_CONN_LAKEHOUSE_ALERTS", json.dumps(conn))
    thresholds = DriftThresholds(psi=0.2, null_rate=0.05)

    calm = pipeline.feature_drift(CALM, Layout(lake), thresholds)
    assert calm["features"] == len(NUMERIC)
    assert not [line for line in calm["breaches"] if line.startswith("events_1d ")]
    calm_alerts = list(http_receiver.requests)
    assert not any("events_1d " in r["json"]["text"] for r in calm_alerts)

    shifted = pipeline.feature_drift(SHIFTED, Layout(lake), thresholds)
    assert any(line.startswith(f"events_1d on {SHIFTED}: psi ") for line in shifted["breaches"])
    assert not [line for line in shifted["breaches"] if line.startswith(("sessions_7d ", "days_since_last_event "))]
    (sent,) = http_receiver.requests[len(calm_alerts) :]
    assert sent["path"] == "/hooks/drift" and sent["json"]["event"] == "feature_drift"
    assert sent["json"]["day"] == SHIFTED.isoformat() and sent["json"]["breaches"] == shifted["breaches"]
    assert f"events_1d on {SHIFTED}: psi " in sent["json"]["text"]


def test_cli_prints_the_table_and_the_json_alone(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["features", "--source", str(lake / "gold"), "drift", "--date", SHIFTED.isoformat()]) == 0
    out = capsys.readouterr().out
    header = f"feature drift on {SHIFTED} (reported: psi > 0.2 after the training window, null_rate > 0.05)"
    assert out.startswith(header)
    assert all(f in out for f in NUMERIC)
    assert f"  events_1d on {SHIFTED}: psi " in out

    assert cli_main(["features", "--source", str(lake / "gold"), "drift", "--date", CALM.isoformat(), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads(json.dumps(drift_report(CALM, lake / "gold", DriftThresholds()), default=str))
    assert [r["feature"] for r in report["features"]] == sorted(NUMERIC)


# --- the run report page (lakehouse/run_report.py) in headless Chromium, served by the docs plugin's app ---

ARTIFACTS = Path(os.environ.get("LAKEHOUSE_TEST_ARTIFACTS", Path(__file__).parents[1] / "artifacts"))
PLOTS_JS = """(() => {
  const plots = [...document.querySelectorAll("svg.plot")];
  const sizes = plots.map(p => p.getBoundingClientRect()).map(r => [r.width, r.height]);
  const marks = plots.map(p => p.querySelectorAll("path, rect, circle").length);
  const foreign = performance.getEntriesByType("resource").map(e => e.name).filter(n => !n.startsWith(location.origin));
  const count = (selector) => document.querySelectorAll(selector).length;
  return {plots: plots.length, sizes, marks, foreign, thresholds: count("line.threshold"),
          alerts: count("circle.alert"), breaches: count("td.breach"),
          drift: (document.getElementById("drift-alerts") || {}).innerText || ""};
})()"""


def _write_run(day: dt.date, bronze: int, quarantined: dict[str, int]) -> dict:
    steps = {
        "extract": [{"resource": "events", "rows": bronze}],
        "silver": {"tables": {"events_part": bronze - sum(quarantined.values())},
                   "quarantined": {"events": sum(quarantined.values())},
                   "resources": {"events": {"quarantined": sum(quarantined.values()),
                                            "quarantined_by_reason": quarantined, "duplicates": 0}}},
        "quality": {"days": [day.isoformat()]}, "gold": {"marts": {}}, "publish": {"objects": 0}, "publish_bi": {},
    }  # fmt: skip
    return pipeline.write_report(day, f"manual__{day}", steps)


def _full_page_screenshot(browser, path: Path) -> None:
    height = browser.evaluate("document.documentElement.scrollHeight")
    clip = {"x": 0, "y": 0, "width": 1440, "height": height, "scale": 1}
    shot = browser.call("Page.captureScreenshot", session=True, format="png", captureBeyondViewport=True, clip=clip)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


@contextlib.contextmanager
def _docs_server(layout: Layout):
    import threading

    import uvicorn
    from fastapi import FastAPI

    from lakehouse.web import URL_PREFIX, create_app

    app = FastAPI()
    app.mount(URL_PREFIX, create_app(lambda: layout))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}{URL_PREFIX}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_run_report_page_renders_its_plots_in_chromium(
    lake: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
    from chromium import Chromium

    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(lake))
    monkeypatch.delenv("LAKEHOUSE_STORAGE_URL", raising=False)
    monkeypatch.setenv("LAKEHOUSE_DRIFT_PSI_THRESHOLD", "0.2")
    _write_run(CALM, 1000, {"invalid_json": 5})
    shifted = _write_run(SHIFTED, 1200, {"invalid_json": 12, "missing_required_field": 3})
    assert shifted["status"] == "success" and "page_error" not in shifted
    assert shifted["page"].endswith(f"date={SHIFTED}/index.html")

    with _docs_server(Layout(lake)) as url, Chromium(tmp_path / "chromium") as browser:
        browser.open(f"{url}/report/latest")
        browser.wait_for_text([f"Run report {SHIFTED}", "Feature drift on", "Quarantine rate by reason"], timeout=20)
        assert browser.location().endswith(f"/report/date={SHIFTED}/")
        seen = browser.evaluate(PLOTS_JS)
        _full_page_screenshot(browser, ARTIFACTS / "run-report" / "latest-run.png")
        # 4 layers + the quarantine bars + 2 per feature (distribution, PSI), each drawn with a real size
        assert seen["plots"] == 4 + 1 + 2 * len(NUMERIC), seen
        assert all(w > 300 and h > 60 for w, h in seen["sizes"]), seen["sizes"]
        assert all(n >= 2 for n in seen["marks"]), seen["marks"]  # a line or a bar besides the frame
        assert seen["foreign"] == [], "the page loads nothing from elsewhere"
        assert seen["thresholds"] == len(NUMERIC) and seen["alerts"] >= 1 and seen["breaches"] >= 1
        assert "events_1d psi" in seen["drift"], seen["drift"]

        browser.open(f"{url}/report/")
        text = browser.wait_for_text(["Run reports", str(CALM), str(SHIFTED)], timeout=20)
        assert text.index(str(SHIFTED)) < text.index(str(CALM)), "newest run first"
        browser.screenshot(ARTIFACTS / "run-report" / "runs.png")
