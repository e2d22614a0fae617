"""
### lakehouse_maintenance

Daily upkeep of the lake's Delta tables (silver, quarantine and gold): one mapped `maintain` task per table,
labelled by the table, each compacting small files, vacuuming (`full`: orphans of failed commits too),
checkpointing and cleaning up expired log entries. The tables are found by listing the lake, so every Delta
table is kept, listed in the code or not.

* Runs at 04:00 in `LAKEHOUSE_APP_TIMEZONE`, four hours after `appmetrica_lakehouse` starts its day: the daily run
  and its retries are over by then. A run that overlaps a writer anyway is safe: a compaction and a partition
  replace of the same day are two commits, and the second one loses and is retried.
* Vacuum deletes only files that left their table (or were never committed) more than
  `LAKEHOUSE_DELTA_RETENTION_HOURS` ago (default 168, at least 24): a reader of a version that was current within
  that time still finds every file of it. `lakehouse maintain --dry-run` lists what a run would remove.
* Connections: `lakehouse_s3` when the lake is on S3 (`LAKEHOUSE_STORAGE_URL`).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from lakehouse import airflow_tasks as steps
from lakehouse.alerts import LakehouseNotifier
from lakehouse.settings import app_timezone

TZ = app_timezone().key
RETRIES = {"retries": 2, "retry_delay": dt.timedelta(minutes=1), "retry_exponential_backoff": True,
           "max_retry_delay": dt.timedelta(minutes=10),
           "on_failure_callback": LakehouseNotifier("failure")}  # fmt: skip


@dag(
    dag_id="lakehouse_maintenance",
    schedule=CronTriggerTimetable("0 4 * * *", timezone=TZ),
    start_date=dt.datetime(2026, 1, 1, tzinfo=app_timezone()),
    catchup=False,
    max_active_runs=1,
    default_args=RETRIES,
    tags=["lakehouse", "delta", "maintenance"],
    doc_md=__doc__,
)
def lakehouse_maintenance() -> None:
    @task
    def find_tables() -> list[str]:
        return steps.maintenance_tables()

    # One table at a time: a compaction reads and rewrites whole partitions, one table's worth on the worker at once.
    @task(map_index_template="{{ table }}", max_active_tis_per_dagrun=1)
    def maintain(table: str) -> dict:
        get_current_context()["table"] = table  # type: ignore[typeddict-unknown-key]
        return steps.maintain_table(table)

    maintain.expand(table=find_tables())


lakehouse_maintenance()
