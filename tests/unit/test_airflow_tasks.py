"""Errors a retry cannot fix fail the task at once; everything else is left to Airflow's retries."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from ingest.appmetrica.client import LogsApiError
from lakehouse.airflow_tasks import fail_fast
from lakehouse.settings import ConfigError
from transforms.gold import GoldBuildError
from transforms.quality.gx_gate import QualityGateError
from transforms.silver import SilverError


def raising(exc: Exception):
    @fail_fast
    def step() -> None:
        raise exc

    return step


@pytest.mark.parametrize(
    "exc",
    [
        ConfigError("Param 'date' must look like YYYY-MM-DD, got 'x'"),
        SilverError("events lacks required column(s) event_name"),
        QualityGateError("events_part: expect_column_values_to_be_in_set on os_name failed", {"success": False}),
        LogsApiError("access denied (HTTP 403)", retryable=False),
        GoldBuildError("dbt build failed (1 failing node(s)): test unique_x [fail]", [{"status": "fail"}]),
    ],
)
def test_final_errors_fail_without_retry_keeping_the_message(exc):
    with pytest.raises(AirflowFailException, match=str(exc).split("(")[0]) as info:
        raising(exc)()
    assert info.value.__cause__ is exc


@pytest.mark.parametrize(
    "exc",
    [
        LogsApiError("HTTP 503 after 5 retries"),
        RuntimeError("disk full"),
        OSError(5, "io"),
        GoldBuildError("dbt build failed: model m [error]: lock", [{"status": "fail"}, {"status": "error"}]),
        GoldBuildError("dbt build exited with status 2 and no failing node recorded"),
    ],
)
def test_other_errors_are_raised_as_they_are_for_retries(exc):
    with pytest.raises(type(exc)) as info:
        raising(exc)()
    assert info.value is exc


def test_report_of_a_failed_run_is_written_then_fails_the_run(tmp_path, monkeypatch):
    import json

    from lakehouse import airflow_tasks, pipeline

    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path))
    day = "2026-11-01"
    gate_error = QualityGateError("silver quality gate failed:\n- events_part: ...", {"success": False, "tables": {}})
    with pytest.raises(QualityGateError):
        airflow_tasks._recorded("quality", day, lambda: (_ for _ in ()).throw(gate_error))
    extracted = [{"resource": "events", "rows": 10, "bytes": 1, "parts": 1}]
    silver = {"tables": {"events_part": 9}, "quarantined": {"events": 1}, "resources": {}}
    steps = {"extract": extracted, "silver": silver, "quality": None, "gold": None, "publish": None}

    with pytest.raises(AirflowFailException, match=r"step 'quality': quality: QualityGateError: silver quality"):
        airflow_tasks.report(day, "manual__1", steps)

    summary = json.loads((pipeline.run_dir(day) / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["failed_step"] == "quality"
    assert summary["failures"]["quality"]["details"] == {"success": False, "tables": {}}
    assert summary["silver_rows"] == {"events_part": 9}
    assert list((pipeline.run_dir(day) / "failures").glob("*.json")) == []


def test_a_step_that_succeeds_on_retry_forgets_its_failure(tmp_path, monkeypatch):
    from lakehouse import airflow_tasks, pipeline

    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path))
    with pytest.raises(OSError):
        airflow_tasks._recorded("silver", "2026-11-01", lambda: (_ for _ in ()).throw(OSError(5, "io")))
    assert (pipeline.run_dir("2026-11-01") / "failures" / "silver.json").exists()
    assert airflow_tasks._recorded("silver", "2026-11-01", lambda: {"ok": 1}) == {"ok": 1}
    assert not (pipeline.run_dir("2026-11-01") / "failures" / "silver.json").exists()
