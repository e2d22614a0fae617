"""One Airflow DAG per declared source (``source_<name>``), built from its declaration.

``dags/sources.py`` calls :func:`build_source_dags`; adding a source to ``ingest/sources/sources.yml``
adds its DAG with no DAG code. Shapes:

- ``rest_api``: ``resolve_day -> extract[resource, ...] -> build_silver -> build_gold -> report``. The
  schedule is a ``CronDataIntervalTimetable`` of the declared cron in the source's time zone, and a run
  processes the day its data interval starts on (or the ``date`` Param), like ``appmetrica_lakehouse``.
- ``csv_drop``: ``pick_up -> build_silver -> build_gold -> report`` on a ``CronTriggerTimetable``: each
  run processes whatever is in the inbox; silver is rebuilt for the days that got files.

Task bodies are :mod:`lakehouse.sources` steps wrapped in :func:`lakehouse.airflow_tasks.fail_fast`, so
a bad declaration, a rejected secret or a damaged bronze page fails at once instead of retrying.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ingest.sources.config import SourceSpec, load_declarations
from lakehouse import sources as steps
from lakehouse.airflow_tasks import fail_fast

RETRIES = {"retries": 2, "retry_delay": dt.timedelta(seconds=30), "retry_exponential_backoff": True,
           "max_retry_delay": dt.timedelta(minutes=10)}  # fmt: skip


def _doc(spec: SourceSpec) -> str:
    lines = [f"### {spec.dag_id}", "", f"Declared source `{spec.name}` ({spec.kind}), generated from "
             "`ingest/sources/sources.yml` by `dags/sources.py`.", "", spec.description.strip(), ""]  # fmt: skip
    for name, res in spec.resources.items():
        key = ", ".join(res.primary_key) or "none"
        cursor = f", cursor `{res.incremental.cursor_field}`" if res.incremental else ""
        lines.append(f"* `{name}`: {res.write_disposition}, primary key `{key}`{cursor} -> "
                     f"`silver/{spec.table(name)}/`")  # fmt: skip
    if spec.kind == "rest_api":
        lines.append(f"* Connection `{spec.connection}` ({spec.auth.type} auth); trigger with the `date` Param "
                     "(`YYYY-MM-DD`) to pull any day.")  # fmt: skip
    else:
        inbox = (f"`{spec.inbox}` (connection `{spec.connection}`)" if spec.inbox
                 else f"`$LAKEHOUSE_DATA_DIR/inbox/{spec.name}/`")  # fmt: skip
        lines.append(f"* Inbox: {inbox}; rejected files go to `quarantine/inbox/{spec.name}/` with their reason.")
    if spec.dbt_selector:
        lines.append(f"* Gold: dbt selector `{spec.dbt_selector}`.")
    return "\n".join(lines)


def build_source_dag(spec: SourceSpec) -> Any:
    """The DAG of one declared source."""
    from airflow.sdk import CronDataIntervalTimetable, CronTriggerTimetable, Param, dag, get_current_context, task

    name = spec.name
    tz = spec.timezone
    common: dict[str, Any] = {
        "dag_id": spec.dag_id,
        "start_date": dt.datetime.combine(spec.start_date, dt.time(0), tzinfo=spec.tz),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": RETRIES,
        "tags": ["source", spec.kind, *spec.tags],
        "doc_md": _doc(spec),
    }

    if spec.kind == "rest_api":
        schedule = CronDataIntervalTimetable(spec.schedule, timezone=tz) if spec.schedule else None

        @dag(schedule=schedule, params={"date": Param(None, type=["null", "string"], format="date",
             title="Day to pull", description="YYYY-MM-DD in the source's time zone; empty: the data interval's day")},
             **common)  # fmt: skip
        def rest_source() -> None:
            @task
            def resolve_day(params: dict | None = None, data_interval_start: dt.datetime | None = None) -> str:
                return fail_fast(steps.resolve_day)(name, (params or {}).get("date"), data_interval_start).isoformat()

            @task(retries=4, map_index_template="{{ resource }}")  # the grid labels each extract by resource
            def extract(resource: str, day: str) -> dict:
                get_current_context()["resource"] = resource  # type: ignore[typeddict-unknown-key]
                return fail_fast(steps.extract)(name, resource, day)

            @task
            def build_silver(day: str, extracted: list[dict]) -> dict:
                return fail_fast(steps.silver)(name, day)

            @task
            def build_gold(silver: dict) -> dict:
                return fail_fast(steps.gold)(name)

            @task
            def report(day: str, extracted: list[dict], silver: dict, gold: dict, run_id: str) -> dict:
                pulled = [extracted[i] for i in range(len(extracted))]  # a lazy sequence: index it
                return fail_fast(steps.write_report)(name, day, run_id,
                                                     {"extract": pulled, "silver": silver, "gold": gold})  # fmt: skip

            day = resolve_day()
            extracted = extract.partial(day=day).expand(resource=list(spec.resources))
            silver = build_silver(day, extracted)
            report(day, extracted, silver, build_gold(silver), run_id="{{ run_id }}")

        return rest_source()

    schedule = CronTriggerTimetable(spec.schedule, timezone=tz) if spec.schedule else None

    @dag(schedule=schedule, **common)
    def csv_source() -> None:
        @task
        def pick_up() -> dict:
            return fail_fast(steps.pick_up)(name)

        @task
        def build_silver(picked: dict) -> dict:
            return fail_fast(steps.silver_days)(name, picked["days"])

        @task
        def build_gold(picked: dict, silver: dict) -> dict:
            return fail_fast(steps.gold)(name, changed=bool(picked["days"]))

        @task
        def report(picked: dict, silver: dict, gold: dict, run_id: str) -> dict:
            return fail_fast(steps.write_report)(name, picked["date"], run_id,
                                                 {"pick_up": picked, "silver": silver, "gold": gold})  # fmt: skip

        picked = pick_up()
        silver = build_silver(picked)
        report(picked, silver, build_gold(picked, silver), run_id="{{ run_id }}")

    return csv_source()


def build_source_dags() -> dict[str, Any]:
    """Every declared source's DAG, by dag_id."""
    return {spec.dag_id: build_source_dag(spec) for spec in load_declarations().values()}
