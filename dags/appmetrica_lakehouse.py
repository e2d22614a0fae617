"""
### appmetrica_lakehouse

Daily: AppMetrica Logs API -> **bronze** (raw exports) -> **silver** (seven typed Parquet tables,
bad rows quarantined) -> **quality gate** (Great Expectations) -> **gold** (dbt-duckdb feature marts,
tested) -> **publish** (S3 / MinIO, manifest last) -> **publish_bi** (the changed dates into PostgreSQL for BI tools).

* Scheduled runs fire at local midnight (`LAKEHOUSE_APP_TIMEZONE`) and process the day that just ended.
* Trigger with the `date` Param (`YYYY-MM-DD`) to process any day.
* Connections: `appmetrica_default` (http), `lakehouse_s3` (aws, optional: without it gold is published locally),
  `lakehouse_bi` (postgres, optional: without it publish_bi is skipped),
  `lakehouse_alerts` (http, optional: failure alerts to a webhook or Telegram).
* Outputs: Assets `silver.*` and `gold.*`; dbt docs and GX Data Docs under Plugins > Lakehouse.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

from lakehouse import airflow_tasks as steps
from lakehouse.alerts import LakehouseNotifier
from lakehouse.assets import GOLD_ASSETS, SILVER_ASSETS
from lakehouse.pipeline import RESOURCES
from lakehouse.settings import app_timezone

TZ = app_timezone().key
RETRIES = {"retries": 2, "retry_delay": dt.timedelta(seconds=30), "retry_exponential_backoff": True,
           "max_retry_delay": dt.timedelta(minutes=10),
           "on_failure_callback": LakehouseNotifier("failure")}  # fmt: skip


@dag(
    dag_id="appmetrica_lakehouse",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone=TZ),
    start_date=dt.datetime(2026, 1, 1, tzinfo=app_timezone()),
    catchup=False,
    max_active_runs=1,
    default_args=RETRIES,
    params={"date": Param(None, type=["null", "string"], format="date", title="Day to process",
                          description="The app's local day to process (sent as YYYY-MM-DD); "
                                      "empty: the day the run's data interval names")},
    tags=["appmetrica", "lakehouse", "dbt"],
    doc_md=__doc__,
)  # fmt: skip
def appmetrica_lakehouse() -> None:
    @task
    def resolve_day(params: dict | None = None, data_interval_start: dt.datetime | None = None) -> str:
        return steps.resolve_day(params, data_interval_start)

    # The grid labels each mapped extract by its resource, not by 0..3.
    @task(retries=4, map_index_template="{{ resource }}")
    def extract(resource: str, day: str) -> dict:
        get_current_context()["resource"] = resource  # type: ignore[typeddict-unknown-key]
        return steps.extract(resource, day)

    @task(outlets=SILVER_ASSETS)
    def build_silver(day: str, extracted: list[dict]) -> dict:
        return steps.silver(day, extracted)

    @task
    def quality_gate(day: str, silver: dict) -> dict:
        return steps.quality_gate(day, silver)

    @task(outlets=GOLD_ASSETS)
    def build_gold(day: str, quality: dict) -> dict:
        return steps.gold(day, quality)

    @task
    def dbt_docs(gold: dict) -> dict:
        return steps.dbt_docs()

    @task
    def publish(day: str, gold: dict, run_id: str) -> dict:
        return steps.publish(day, run_id)

    @task
    def publish_bi(day: str, published: dict, run_id: str) -> dict:
        return steps.publish_bi(day, run_id)

    # Runs whatever happened upstream: writes the summary of failed runs too, then fails them. The failed
    # step has already alerted, so the report's own failure does not alert again.
    @task(trigger_rule="all_done", on_success_callback=LakehouseNotifier("success"), on_failure_callback=None)
    def report(day: str, extracted: list, silver: dict, quality: dict, gold: dict, published: dict, bi: dict,
               docs: dict, run_id: str) -> dict:  # fmt: skip
        return steps.report(day, run_id, {"extract": extracted, "silver": silver, "quality": quality, "gold": gold,
                                          "publish": published, "publish_bi": bi, "docs": docs})  # fmt: skip

    day = resolve_day()
    extracted = extract.partial(day=day).expand(resource=list(RESOURCES))
    silver = build_silver(day, extracted)
    quality = quality_gate(day, silver)
    gold = build_gold(day, quality)
    published = publish(day, gold, run_id="{{ run_id }}")
    bi = publish_bi(day, published, run_id="{{ run_id }}")
    report(day, extracted, silver, quality, gold, published, bi, dbt_docs(gold), run_id="{{ run_id }}")


appmetrica_lakehouse()
