"""The DAG's task bodies: pipeline steps plus the Airflow specifics (connections, fail-fast errors).

An error that a retry cannot fix (a bad ``date`` Param, a rejected token, bad request
parameters, a missing column in an export) fails the task at once with its message instead of
burning the retries; everything else is raised as is and retried with backoff.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from lakehouse import pipeline
from lakehouse.settings import ConfigError

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


def _listed(mapped: Any) -> list[Any]:
    """Mapped results arrive as a lazy sequence; index it by length (iterating probes one past the end)."""
    mapped = mapped or []
    return [mapped[i] for i in range(len(mapped))]


def _recorded(step: str, day: str, call: Callable[[], R]) -> R:
    """Run a step, keeping its failure for the run summary (and forgetting an earlier one on success)."""
    try:
        result = call()
    except Exception as exc:
        pipeline.record_failure(day, step, exc)
        raise
    pipeline.clear_failure(day, step)
    return result


@fail_fast
def extract(resource: str, day: str) -> dict[str, Any]:
    return _recorded(
        f"extract_{resource}", day, lambda: pipeline.extract(resource, day, pipeline.appmetrica_settings_from_airflow())
    )


@fail_fast
def silver(day: str, extracted: Any) -> dict[str, Any]:
    entries = _listed(extracted)
    return _recorded("silver", day, lambda: pipeline.silver(day, entries))


@fail_fast
def quality_gate(day: str, silver: dict[str, Any] | None) -> dict[str, Any]:
    return _recorded("quality", day, lambda: pipeline.quality_gate(day, (silver or {}).get("rebuilt")))


@fail_fast
def gold(day: str, quality: dict[str, Any] | None) -> dict[str, Any]:
    return _recorded("gold", day, lambda: pipeline.gold((quality or {}).get("days") or [day], drift_day=day))


@fail_fast
def publish(day: str, run_id: str) -> dict[str, Any]:
    return _recorded("publish", day, lambda: pipeline.publish(day, run_id))


@fail_fast
def publish_bi(day: str, run_id: str) -> dict[str, Any]:
    return _recorded("publish_bi", day, lambda: pipeline.publish_bi(day, run_id))


def report(day: str | None, run_id: str, steps: dict[str, Any]) -> dict[str, Any]:
    """Write the run summary whatever happened upstream; fail (so the run fails) when a step failed."""
    from airflow.sdk.exceptions import AirflowFailException

    if not day:
        raise AirflowFailException("the run's day could not be resolved (see the resolve_day task log)")
    steps = steps | {"extract": _listed(steps.get("extract"))}
    summary = pipeline.write_report(day, run_id, steps)
    log_summary(summary)
    if summary["status"] != "success":
        step = summary["failed_step"]
        errors = "; ".join(f"{name}: {f['error']}" for name, f in summary["failures"].items()) or "see its task log"
        raise AirflowFailException(f"the run for {day} failed at step {step!r}: {errors}")
    return summary


# --- the Airflow UI's additions: docs regeneration and a readable run summary in the task log ---


@fail_fast
def dbt_docs() -> dict[str, Any]:
    """Regenerate the dbt docs site (``docs/dbt``) so it describes the gold just built."""
    from lakehouse.docs import refresh_dbt_docs

    return refresh_dbt_docs()  # under the gold lock while dbt opens the warehouse file


def log_summary(summary: dict[str, Any]) -> None:
    """Log the run summary as ``make demo`` prints it (rows per layer, quarantine, gold, target)."""
    import logging

    from lakehouse.local_airflow import summary_lines

    logging.getLogger(__name__).info("run summary:\n%s", "\n".join(summary_lines(summary)))


# --- lakehouse_maintenance: the lake's Delta tables, one mapped task per table ---


@fail_fast
def maintenance_tables() -> list[str]:
    """Every Delta table of the lake; a bad retention setting fails the run here, before any table is touched."""
    from lakehouse import maintenance

    maintenance.retention_hours()
    return maintenance.lake_tables()


@fail_fast
def maintain_table(table: str) -> dict[str, Any]:
    """Compact, vacuum, checkpoint and clean up the log of one table (``<layer>/<name>``)."""
    from lakehouse import maintenance

    return maintenance.maintain([table])[0]
