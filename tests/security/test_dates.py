"""Dates are limited to a sane range (2000-01-01 .. 2099-12-31) everywhere one enters: the CLI, the DAG's ``date``
Param, ``dags-test``, backfill ranges, a source's ``start_date``. Out of range is a clear error naming the value,
before anything is written (no OverflowError traceback, no half-written report)."""

from __future__ import annotations

import datetime as dt

import pytest

from ingest.sources.config import SourceConfigError, parse_declarations
from lakehouse import pipeline, sources_cli
from lakehouse.cli import main
from lakehouse.settings import MAX_DAY, MIN_DAY, ConfigError, parse_day

OUT_OF_RANGE = ["0001-01-01", "9999-12-31", "1999-12-31", "2100-01-01"]


@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_a_day_out_of_range_is_refused_naming_it_and_the_range(value):
    with pytest.raises(ConfigError) as err:
        parse_day(value)
    assert value in str(err.value) and "out of range" in str(err.value)
    assert str(MIN_DAY) in str(err.value) and str(MAX_DAY) in str(err.value)
    with pytest.raises(ConfigError, match="out of range"):
        parse_day(dt.date.fromisoformat(value))


def test_the_ends_of_the_range_are_accepted():
    assert parse_day("2000-01-01") == MIN_DAY
    assert parse_day("2099-12-31") == MAX_DAY
    assert pipeline.window("2000-01-01", lookback=30)[0] == dt.date(1999, 12, 2)


@pytest.mark.parametrize("value", ["0001-01-01", "9999-12-31"])
@pytest.mark.parametrize(
    "argv",
    [["run", "--date"], ["extract", "--resource", "events", "--date"], ["silver", "--date"], ["publish", "--date"],
     ["dags-test", "--date"], ["demo", "--date"], ["backfill", "--to", "2026-11-01", "--from"],
     ["sources", "run", "vacancies", "--date"], ["sources", "dags-test", "vacancies", "--date"]],
    ids=lambda a: " ".join(a[:2]),
)  # fmt: skip
def test_the_cli_refuses_it_with_one_line_and_writes_nothing(argv, value, tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(data))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    assert main([*argv, value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "out of range" in err and value in err
    assert "Traceback" not in err and "OverflowError" not in err
    assert not data.exists() or not any(data.rglob("*.json"))  # no report, no manifest


@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_the_dag_date_param_fails_the_run_without_retries(value):
    from airflow.sdk.exceptions import AirflowFailException

    from lakehouse import airflow_tasks

    with pytest.raises(AirflowFailException, match="out of range"):
        airflow_tasks.resolve_day({"date": value}, None)


def test_sources_dags_test_refuses_it_before_airflow_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(ConfigError, match="out of range"):
        sources_cli.dags_test("vacancies", "9999-12-31", env={})


def test_a_source_start_date_out_of_range_is_named():
    doc = {
        "version": 1,
        "sources": {
            "rates": {
                "kind": "csv_drop",
                "start_date": "0001-01-01",
                "resources": {
                    "daily": {"file_pattern": "rates*.csv", "write_disposition": "merge", "primary_key": ["day"],
                              "fields": {"day": "date", "rate": "number"}},
                },
            }
        },
    }  # fmt: skip
    with pytest.raises(SourceConfigError, match=r"sources.rates.start_date: start_date 0001-01-01 is out of range"):
        parse_declarations(doc, "sources.yml")


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_a_feature_timestamp_at_the_calendar_ends_is_a_feature_error(stamp):
    import pyarrow as pa

    from lakehouse.features.historical import _cutoff_dates
    from lakehouse.features.store import FeatureError

    with pytest.raises(FeatureError, match="entity row 0 is not an ISO 8601"):
        _cutoff_dates(pa.array([stamp]), dt.UTC)
