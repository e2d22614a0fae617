"""Errors a retry cannot fix fail the task at once; everything else is left to Airflow's retries."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from ingest.appmetrica.client import LogsApiError
from lakehouse.airflow_tasks import fail_fast
from lakehouse.settings import ConfigError
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
    ],
)
def test_final_errors_fail_without_retry_keeping_the_message(exc):
    with pytest.raises(AirflowFailException, match=str(exc).split("(")[0]) as info:
        raising(exc)()
    assert info.value.__cause__ is exc


@pytest.mark.parametrize("exc", [LogsApiError("HTTP 503 after 5 retries"), RuntimeError("disk full"), OSError(5, "io")])
def test_other_errors_are_raised_as_they_are_for_retries(exc):
    with pytest.raises(type(exc)) as info:
        raising(exc)()
    assert info.value is exc
