"""The run report page: one self-contained HTML page per daily run, with its plots drawn as inline SVG.

``pipeline.write_report`` calls :func:`write_pages` after each run of ``appmetrica_lakehouse``. It writes

* ``reports/<dag>/date=D/index.html``: the run's page: its status and failures, rows per layer over the
  last :data:`HISTORY_DAYS` days (bronze, silver, quarantine as each day's own run counted them; gold as the
  ``device_features_daily`` rows of each feature date), the quarantine rate by reason of the run's day,
  and per numeric feature its mean, p50 and p95 and its PSI against the training window, the PSI
  threshold drawn and every breach (``lakehouse.features.drift``) highlighted;
* ``reports/<dag>/index.html``: the list of runs, newest first.

The pages hold no script, stylesheet or image from elsewhere (the plots are SVG drawn here), so they
work without internet. The Airflow plugin serves them under ``/lakehouse-docs/report/``
(:mod:`lakehouse.web`), ``/lakehouse-docs/report/latest`` being the newest run's page.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lakehouse.settings import Layout

log = logging.getLogger(__name__)

HISTORY_DAYS = 30
PAGE = "index.html"
DATED = re.compile(r"date=\d{4}-\d{2}-\d{2}")
LAYERS = ("bronze", "silver", "quarantine", "gold")
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf")
ALERT = "#d62728"
WIDTH, HEIGHT = 420, 170
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 12, 14, 30


def _num(value: float) -> str:
    """A short label for an axis or a table cell: 1,234 / 0.0123 / 12.3."""
    if value is None:
        return "-"
    if abs(value) >= 1000 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _svg(title: str, body: list[str], width: int = WIDTH, height: int = HEIGHT) -> str:
    return (
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{html.escape(title)}</title>{"".join(body)}</svg>'
    )


def line_chart(
    title: str,
    dates: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    threshold: float | None = None,
    alerts: Iterable[tuple[str, float]] = (),
    band: tuple[str, str] | None = None,
) -> str:
    """An SVG line chart of ``series`` (name -> one value or None per date of ``dates``), y from 0.

    ``threshold`` draws a dashed red line; each ``alerts`` point (date, value) gets a red ring;
    ``band`` (first, last date) shades the training window.
    """
    alerts = list(alerts)
    values = [v for s in series.values() for v in s if v is not None] + [v for _, v in alerts]
    top = max(values + ([threshold] if threshold is not None else []) + [0.0]) or 1.0
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(i: int) -> float:
        return PAD_LEFT + (plot_w * i / (len(dates) - 1) if len(dates) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return PAD_TOP + plot_h * (1 - v / top)

    body = [f'<rect x="{PAD_LEFT}" y="{PAD_TOP}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ddd"/>']
    inside = [i for i, d in enumerate(dates) if band and band[0] <= d <= band[1]]
    if inside:
        left, right = x(inside[0]) - 3, x(inside[-1]) + 3
        body.append(f'<rect class="window" x="{left:.1f}" y="{PAD_TOP}" width="{right - left:.1f}" height="{plot_h}" '
                    f'fill="#e3ebf7"><title>training window {html.escape(band[0])} .. {html.escape(band[1])}</title>'
                    "</rect>")  # fmt: skip
    for tick in (0.0, top / 2, top):
        body.append(f'<line x1="{PAD_LEFT}" x2="{PAD_LEFT + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                    f'stroke="#e5e5e5"/><text x="{PAD_LEFT - 4}" y="{y(tick) + 4:.1f}" font-size="10" '
                    f'text-anchor="end">{_num(tick)}</text>')  # fmt: skip
    if dates:
        body.append(f'<text x="{PAD_LEFT}" y="{HEIGHT - 8}" font-size="10">{html.escape(dates[0])}</text>')
        if len(dates) > 1:
            body.append(f'<text x="{PAD_LEFT + plot_w}" y="{HEIGHT - 8}" font-size="10" '
                        f'text-anchor="end">{html.escape(dates[-1])}</text>')  # fmt: skip
    if threshold is not None:
        body.append(f'<line class="threshold" x1="{PAD_LEFT}" x2="{PAD_LEFT + plot_w}" y1="{y(threshold):.1f}" '
                    f'y2="{y(threshold):.1f}" stroke="{ALERT}" stroke-dasharray="5,4"/>'
                    f'<text x="{PAD_LEFT + plot_w - 2}" y="{y(threshold) - 3:.1f}" font-size="10" fill="{ALERT}" '
                    f'text-anchor="end">threshold {_num(threshold)}</text>')  # fmt: skip
    for n, (name, points) in enumerate(series.items()):
        color = COLORS[n % len(COLORS)]
        coords = [(x(i), y(v)) for i, v in enumerate(points) if v is not None]
        if len(coords) > 1:
            path = " ".join(f"{'M' if k == 0 else 'L'}{cx:.1f},{cy:.1f}" for k, (cx, cy) in enumerate(coords))
            body.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        body.extend(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.5" fill="{color}"/>' for cx, cy in coords)
        body.append(f'<text x="{PAD_LEFT + 6 + 70 * n}" y="{PAD_TOP + 12}" font-size="11" fill="{color}">'
                    f"{html.escape(name)}</text>")  # fmt: skip
    index = {d: i for i, d in enumerate(dates)}
    for day, value in alerts:
        if day in index:
            body.append(f'<circle class="alert" cx="{x(index[day]):.1f}" cy="{y(value):.1f}" r="5" fill="none" '
                        f'stroke="{ALERT}" stroke-width="2"><title>{html.escape(day)}: {_num(value)}</title>'
                        "</circle>")  # fmt: skip
    return _svg(title, body)


def bar_chart(title: str, bars: Sequence[tuple[str, float]], *, percent: bool = False) -> str:
    """A horizontal SVG bar chart, one bar per (label, value), values from 0."""
    label_w, row_h = 200, 22
    height = PAD_TOP + row_h * max(len(bars), 1) + 10
    top = max([v for _, v in bars] + [0.0]) or 1.0
    plot_w = WIDTH + 120 - label_w - 70
    body = []
    for i, (label, value) in enumerate(bars):
        y = PAD_TOP + i * row_h
        text = f"{value:.2%}" if percent else _num(value)
        body.append(f'<text x="{label_w - 6}" y="{y + 14}" font-size="11" text-anchor="end">{html.escape(label)}</text>'
                    f'<rect x="{label_w}" y="{y + 3}" width="{max(plot_w * value / top, 1):.1f}" height="{row_h - 6}" '
                    f'fill="{COLORS[0]}"/><text x="{label_w + plot_w * value / top + 4:.1f}" y="{y + 14}" '
                    f'font-size="11">{text}</text>')  # fmt: skip
    if not bars:
        body.append(f'<text x="{label_w}" y="{PAD_TOP + 14}" font-size="11">nothing quarantined</text>')
    return _svg(title, body, WIDTH + 120, height)


# --- the data of a page --------------------------------------------------------------------------------------


def history_window(day: dt.date) -> list[dt.date]:
    """The :data:`HISTORY_DAYS` days a page plots, oldest first, ending on ``day``."""
    return [day - dt.timedelta(days=n) for n in range(HISTORY_DAYS - 1, -1, -1)]


def layer_rows(
    days: Sequence[dt.date], summaries: dict[str, dict[str, Any]], stats: Sequence[dict[str, Any]]
) -> dict[str, list[float | None]]:
    """Rows per layer and day: bronze, silver and quarantine from each day's run summary, gold from the stats."""
    gold: dict[str, float] = {}
    for row in stats:
        key = row["feature_date"].isoformat()
        gold[key] = max(gold.get(key, 0), row["rows"] or 0)
    rows: dict[str, list[float | None]] = {layer: [] for layer in LAYERS}
    for day in days:
        summary = summaries.get(day.isoformat())
        for layer, field in (("bronze", "bronze_rows"), ("silver", "silver_rows"), ("quarantine", "quarantined_rows")):
            counts = (summary or {}).get(field) or {}
            rows[layer].append(sum(counts.values()) if summary and counts else None)
        rows["gold"].append(gold.get(day.isoformat()))
    return rows


def quarantine_rates(summary: dict[str, Any]) -> list[tuple[str, float]]:
    """(``resource: reason``, quarantined rows / bronze rows of the resource) of the run's day, highest first."""
    bronze = summary.get("bronze_rows") or {}
    rates = [
        (f"{resource}: {reason}", count / bronze[resource] if bronze.get(resource) else 0.0)
        for resource, reasons in (summary.get("quarantined_by_reason") or {}).items()
        for reason, count in reasons.items()
    ]
    return sorted(rates, key=lambda item: (-item[1], item[0]))


# --- the pages --------------------------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.status { padding: 2px 8px; border-radius: 4px; color: #fff; }
.success { background: #2ca02c; } .failed { background: #d62728; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; border: 1px solid #eee; padding: 6px; } figcaption { font-weight: 600; font-size: 13px; }
.alerts { border-left: 5px solid #d62728; background: #fdecea; padding: 6px 12px; }
table { border-collapse: collapse; font-size: 13px; } td, th { border: 1px solid #ddd; padding: 3px 8px; }
td.breach { background: #fdecea; color: #d62728; font-weight: 700; }
"""


def _figure(caption: str, svg: str) -> str:
    return f"<figure><figcaption>{html.escape(caption)}</figcaption>{svg}</figure>"


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>\n")  # fmt: skip


def render_run_page(
    summary: dict[str, Any],
    history: dict[str, dict[str, Any]],
    stats: Sequence[dict[str, Any]],
    thresholds: dict[str, float],
    breaches: Sequence[dict[str, Any]],
) -> str:
    """The HTML page of one run: ``summary`` is its run summary, ``history`` the summaries of earlier days by date,
    ``stats`` the ``feature_stats_daily`` rows of the window, ``breaches`` those of the run's day."""
    day = dt.date.fromisoformat(summary["date"])
    days = history_window(day)
    labels = [d.isoformat() for d in days]
    status = summary.get("status", "unknown")
    parts = [
        f"<p><a href='../'>all runs</a></p><h1>Run report {html.escape(summary['date'])} "
        f"<span class='status {html.escape(status)}'>{html.escape(status)}</span></h1>",
        f"<p>DAG <code>{html.escape(str(summary.get('dag_id', '')))}</code>, run "
        f"<code>{html.escape(str(summary.get('run_id', '')))}</code>, written "
        f"{html.escape(str(summary.get('written_at', '')))}. <a href='summary.json'>summary.json</a></p>",
    ]
    if summary.get("failed_step"):
        failures = "".join(f"<li><b>{html.escape(step)}</b>: {html.escape(str(f.get('error', '')))}</li>"
                           for step, f in (summary.get("failures") or {}).items())  # fmt: skip
        parts.append(f"<div class='alerts'><b>Failed at step {html.escape(summary['failed_step'])}</b>"
                     f"<ul>{failures}</ul></div>")  # fmt: skip
    if breaches:
        items = "".join(f"<li><b>{html.escape(b['feature'])}</b> {html.escape(b['metric'])} {_num(b['value'])} "
                        f"&gt; {_num(b['threshold'])}</li>" for b in breaches)  # fmt: skip
        parts.append(f"<div class='alerts' id='drift-alerts'><b>Feature drift on {html.escape(summary['date'])}</b>"
                     f"<ul>{items}</ul></div>")  # fmt: skip

    everything = {**history, summary["date"]: summary}
    rows = layer_rows(days, everything, stats)
    parts.append(f"<h2>Rows per layer, last {HISTORY_DAYS} days</h2><div class='grid'>")
    parts.extend(_figure(layer, line_chart(f"{layer} rows per day", labels, {f"{layer} rows": rows[layer]}))
                 for layer in LAYERS)  # fmt: skip
    parts.append("</div>")

    parts.append(f"<h2>Quarantine rate by reason on {html.escape(summary['date'])}</h2>")
    parts.append(_figure("quarantined rows / bronze rows of the resource",
                         bar_chart("quarantine rate by reason", quarantine_rates(summary), percent=True)))  # fmt: skip

    parts.append(f"<h2>Feature distributions and drift, last {HISTORY_DAYS} days</h2>")
    by_feature: dict[str, list[dict[str, Any]]] = {}
    for row in stats:
        by_feature.setdefault(row["feature"], []).append(row)
    if not by_feature:
        parts.append("<p>No feature statistics for these days (gold has no <code>feature_stats_daily</code> rows).</p>")
    breached = {(b["feature"], b["metric"]) for b in breaches}
    psi_limit = thresholds.get("psi")
    for feature, feature_rows in sorted(by_feature.items()):
        at = {r["feature_date"].isoformat(): r for r in feature_rows}

        def column(metric: str, at: dict[str, dict[str, Any]] = at) -> list[float | None]:
            return [at[d][metric] if d in at else None for d in labels]

        psi_alerts = [(d, r["psi"]) for d, r in at.items()
                      if r.get("psi") is not None and psi_limit is not None and r["psi"] > psi_limit
                      and r.get("fit_end_date") is not None and r["feature_date"] > r["fit_end_date"]]  # fmt: skip
        distribution = line_chart(f"{feature}: mean, p50, p95", labels,
                                  {"mean": column("mean"), "p50": column("p50"), "p95": column("p95")})  # fmt: skip
        # each date names the rows of its own state: the window is the latest of them
        fitted = max(((r["fit_start_date"], r["fit_end_date"]) for r in feature_rows if r.get("fit_end_date")),
                     key=lambda w: w[1], default=None)  # fmt: skip
        window = (fitted[0].isoformat(), fitted[1].isoformat()) if fitted and fitted[0] else None
        psi = line_chart(f"{feature}: PSI", labels, {"psi": column("psi")}, threshold=psi_limit, alerts=psi_alerts,
                         band=window)  # fmt: skip
        mark = " (drift)" if (feature, "psi") in breached or (feature, "null_rate") in breached else ""
        parts.append(f"<h3 id='feature-{html.escape(feature)}'>{html.escape(feature)}{mark}</h3><div class='grid'>"
                     f"{_figure('distribution', distribution)}"
                     f"{_figure('PSI against the training window (shaded)', psi)}</div>")  # fmt: skip

    today = [r for r in stats if r["feature_date"] == day]
    if today:
        head = "".join(f"<th>{c}</th>" for c in ("feature", "rows", "null rate", "mean", "p50", "p95", "psi"))
        body = []
        for r in today:
            cells = [f"<td>{html.escape(r['feature'])}</td>", f"<td>{_num(r['rows'])}</td>"]
            for metric in ("null_rate", "mean", "p50", "p95", "psi"):
                css = " class='breach'" if (r["feature"], metric) in breached else ""
                cells.append(f"<td{css}>{_num(r[metric])}</td>")
            body.append(f"<tr>{''.join(cells)}</tr>")
        parts.append(f"<h2>Feature statistics on {html.escape(summary['date'])}</h2>"
                     f"<table><tr>{head}</tr>{''.join(body)}</table>")  # fmt: skip
    return _page(f"Run report {summary['date']}", "".join(parts))


def render_index(runs: Sequence[dict[str, Any]]) -> str:
    """The list of runs (their summaries), newest first."""
    items = "".join(
        f"<tr><td><a href='date={html.escape(r['date'])}/'>{html.escape(r['date'])}</a></td>"
        f"<td><span class='status {html.escape(r.get('status', ''))}'>{html.escape(r.get('status', ''))}</span></td>"
        f"<td><code>{html.escape(str(r.get('run_id', '')))}</code></td></tr>"
        for r in sorted(runs, key=lambda r: r["date"], reverse=True)
    )
    latest = "<p><a href='latest'>latest run</a></p>" if runs else "<p>No run has written its report yet.</p>"
    return _page("Run reports", f"<h1>Run reports</h1>{latest}<table><tr><th>date</th><th>status</th><th>run</th>"
                                f"</tr>{items}</table>")  # fmt: skip


def _read_summary(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_text(path: Path, text: str) -> None:
    from lakehouse.fsutil import atomic_file

    with atomic_file(path) as fh:
        fh.write(text.encode("utf-8"))


def write_pages(summary: dict[str, Any], folder: Path, layout: Layout, lake: Any) -> list[Path]:
    """Write the run's page into ``folder`` (its ``reports/<dag>/date=D/``) and the runs' index beside it.

    Earlier days' summaries are read from the lake (fetched from it when it is on S3); the feature
    statistics from the lake's gold table. The index lists the runs with a page here and those of the last
    days whose summary records one. Returns the paths written (the page, then the index).
    """
    from lakehouse.features.drift import DriftThresholds, breaches, feature_stats_between
    from lakehouse.features.store import FeatureSource

    day = dt.date.fromisoformat(summary["date"])
    days = history_window(day)
    root = folder.parent
    history = {}
    for earlier in days[:-1]:
        path = root / f"date={earlier.isoformat()}" / "summary.json"
        lake.pull_file(path.relative_to(layout.root).as_posix())
        if (found := _read_summary(path)) is not None:
            history[earlier.isoformat()] = found
    thresholds = DriftThresholds.from_env()
    try:
        stats = feature_stats_between(days[0], day, FeatureSource(gold_dir=layout.gold, lake=True))
    except Exception as exc:  # no gold yet (a run that failed before it): the page says so
        log.info("run report: no feature statistics (%s)", exc)
        stats = []
    today = [r for r in stats if r["feature_date"] == day]
    limits = {"psi": thresholds.psi, "null_rate": thresholds.null_rate}
    page = folder / PAGE
    _write_text(page, render_run_page(summary, history, stats, limits, breaches(today, thresholds)))
    runs = {summary["date"]: summary} | {d: s for d, s in history.items() if s.get("page")}
    for other in root.glob(f"date=*/{PAGE}"):
        if (found := _read_summary(other.parent / "summary.json")) is not None and "date" in found:
            runs.setdefault(found["date"], found)
    _write_text(root / PAGE, render_index(list(runs.values())))
    return [page, root / PAGE]


def latest_page(root: Path) -> str | None:
    """The ``date=D/`` folder (relative to ``root``) of the newest run that has a page, or None."""
    dated = sorted(p.parent.name for p in root.glob(f"date=*/{PAGE}") if DATED.fullmatch(p.parent.name))
    return f"{dated[-1]}/" if dated else None
