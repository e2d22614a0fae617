"""`make bench` judges each target from the figures it measured (bench/run.py `targets`)."""

from __future__ import annotations

from bench.run import targets


def _size(rows: int, silver_s: float, duckdb_s: float, peak: int) -> dict:
    return {"rows": rows, "paths": {
        "silver": {"seconds": silver_s, "rows_per_s": rows / silver_s, "peak_rss_mib": peak},
        "duckdb": {"seconds": duckdb_s, "rows_per_s": rows / duckdb_s, "peak_rss_mib": 600},
    }}  # fmt: skip


def _judged(results: dict) -> dict[str, tuple[str, bool]]:
    return {t["target"]: (t["measured"], t["met"]) for t in targets(results)}


def test_each_target_is_met_or_missed_by_its_figure() -> None:
    results = {
        "silver": [
            _size(1_000_000, 5.0, 2.0, 800),
            _size(10_000_000, 40.0, 25.0, 1_000),
            _size(50_000_000, 301, 100.0, 1_500),
        ],
        "gold": {"day_1": {"seconds": 10.0}, "day_30": {"seconds": 12.5}},
        "dag_parse": {"seconds": 0.2},
        "make_bench_seconds": 1_260,
    }
    judged = _judged(results)
    assert judged["silver throughput >= 0.5x DuckDB copy (1,000,000 rows)"] == ("0.40x", False)
    assert judged["silver throughput >= 0.5x DuckDB copy (10,000,000 rows)"] == ("0.62x", True)
    assert judged["silver peak RSS <= 1 GiB at 10M rows"] == ("1,000 MiB", True)
    assert judged["silver peak RSS at 10M within 20 % of 1M"] == ("1.25x", False)
    assert judged["silver throughput >= 0.5x DuckDB copy (50,000,000 rows)"] == ("0.33x", False)
    assert judged["a 50M-row day in <= 5 minutes"] == ("301 s, peak 1,500 MiB", False)
    assert judged["gold day-30 build <= 1.2x day-1 build"] == ("1.25x", False)
    assert judged["DAG parse < 0.5 s"] == ("0.200 s", True)
    assert judged["make bench <= 20 minutes"] == ("21.0 min", False)


def test_a_partial_run_judges_only_what_it_measured() -> None:
    judged = _judged({"silver": [_size(1_000_000, 2.0, 2.0, 800)]})
    assert list(judged) == ["silver throughput >= 0.5x DuckDB copy (1,000,000 rows)"]
