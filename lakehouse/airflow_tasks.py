"""The DAG's task bodies: pipeline steps plus the Airflow specifics (connections, fail-fast errors).

An error that a retry cannot fix (a bad ``date`` Param, a rejected token, bad request
parameters, a missing column in an export) fails the task at once with its message instead of
burning the retries; everything else is raised as is and retried with backoff.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from lakehouse import pipeline
from lakehouse.settings import ConfigError

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def fail_fast(func: Callable[P, R]) -> Callable[P, R]:
    """Turn non-retryable errors into ``AirflowFailException`` (no retries), keeping the message."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            from transforms.quality.gx_gate import QualityGateError
            from transforms.silver import SilverError

            final = isinstance(exc, ConfigError | SilverError | QualityGateError)
            final = final or getattr(exc, "retryable", True) is False
            if not final:
                raise
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc

    return wrapper


@fail_fast
def resolve_day(params: dict[str, Any] | None, data_interval_start: dt.datetime | None) -> str:
    return pipeline.resolve_day((params or {}).get("date"), data_interval_start).isoformat()


@fail_fast
def extract(resource: str, day: str) -> dict[str, Any]:
    return pipeline.extract(resource, day, pipeline.appmetrica_settings_from_airflow())


@fail_fast
def silver(day: str) -> dict[str, Any]:
    result = pipeline.silver(day)
    _log_rows(f"silver {day}: rows per table", result.get("tables", {}))
    _log_rows(f"silver {day}: quarantined rows per resource", result.get("quarantined", {}))
    return result


@fail_fast
def quality_gate(day: str) -> dict[str, Any]:
    return pipeline.quality_gate(day)


@fail_fast
def gold() -> dict[str, Any]:
    result = pipeline.gold()
    _log_rows("gold: rows per mart", {m: info["rows"] for m, info in result.get("marts", {}).items()})
    return result


@fail_fast
def dbt_docs() -> dict[str, Any]:
    """Regenerate the dbt docs site (``docs/dbt``) so it describes the gold just built."""
    from lakehouse.docs import refresh_dbt_docs

    return refresh_dbt_docs()


@fail_fast
def publish(day: str, run_id: str) -> dict[str, Any]:
    result = pipeline.publish(day, run_id)
    log.info("published %s object(s) to %s", result.get("objects"), result.get("target"))
    _log_rows("published rows per object", result.get("rows", {}))
    return result


@fail_fast
def report(day: str, run_id: str, steps: dict[str, Any]) -> dict[str, Any]:
    # Mapped results arrive as a lazy sequence; index it by length (iterating probes one past the end).
    extracted = steps.get("extract") or []
    steps = steps | {"extract": [extracted[i] for i in range(len(extracted))]}
    report = pipeline.write_report(day, run_id, steps)
    from lakehouse.local_airflow import summary_lines

    log.info("run summary:\n%s", "\n".join(summary_lines(report)))
    return report


def _log_rows(title: str, rows: dict[str, Any]) -> None:
    """Log a small table of row counts (the task log shows what a step produced, not just "done")."""
    lines = "".join(f"\n  {name:<28}{value:>12,}" for name, value in rows.items())
    log.info("%s:%s", title, lines or " none")
