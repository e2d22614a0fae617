"""The lakehouse_maintenance DAG: its shape, its schedule beside the daily run, and its task bodies."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

REPO = Path(__file__).resolve().parents[2]
MSK = ZoneInfo("Europe/Moscow")


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("AIRFLOW_CONN_")]:
            mp.delenv(key)
        mp.setenv("AIRFLOW_HOME", str(home))
        mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        mp.setenv("LAKEHOUSE_APP_TIMEZONE", "Europe/Moscow")
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(REPO / "dags" / "lakehouse_maintenance.py"))
        assert bag.import_errors == {}
        yield bag


def test_one_mapped_task_per_table_after_finding_them(dagbag) -> None:
    from lakehouse.alerts import LakehouseNotifier

    dag = dagbag.dags["lakehouse_maintenance"]
    assert set(dag.task_dict) == {"find_tables", "maintain"}
    assert dag.get_task("find_tables").downstream_task_ids == {"maintain"}
    maintain = dag.get_task("maintain")
    assert maintain.map_index_template == "{{ table }}" and maintain.max_active_tis_per_dagrun == 1
    assert dag.max_active_runs == 1 and not dag.catchup and "maintenance" in dag.tags
    for task in dag.tasks:
        assert task.retries >= 1
        callbacks = task.on_failure_callback if isinstance(task.on_failure_callback, list) else [
            task.on_failure_callback]  # fmt: skip
        assert [c.event for c in callbacks if isinstance(c, LakehouseNotifier)] == ["failure"], task.task_id


def test_it_runs_daily_at_four_local_time_apart_from_the_daily_run(dagbag) -> None:
    from airflow.serialization.serialized_objects import coerce_to_core_timetable
    from airflow.timetables.base import DataInterval, TimeRestriction

    dag = dagbag.dags["lakehouse_maintenance"]
    timetable = coerce_to_core_timetable(dag.timetable)
    last = DataInterval.exact(dt.datetime(2026, 11, 1, 4, tzinfo=MSK))
    info = timetable.next_dagrun_info(
        last_automated_data_interval=last,
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True),
    )
    # The next day at 04:00 local time: four hours after appmetrica_lakehouse starts its day at midnight.
    assert info.run_after == dt.datetime(2026, 11, 2, 4, tzinfo=MSK)
    assert "04:00" in dag.doc_md and "LAKEHOUSE_DELTA_RETENTION_HOURS" in dag.doc_md


def test_the_dag_file_imports_nothing_heavy() -> None:
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        "heavy = [m for m in ('pandas','pyarrow','dbt','great_expectations','boto3','duckdb','deltalake')"
        " if m in sys.modules]; print(','.join(heavy))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    out = subprocess.run([sys.executable, "-c", code, str(REPO / "dags" / "lakehouse_maintenance.py")],
                         capture_output=True, text=True, env=env, check=True)  # fmt: skip
    assert out.stdout.strip().splitlines()[-1:] in ([], [""]), out.stdout


def test_the_task_bodies_find_and_maintain_tables_and_a_bad_setting_fails_at_once(tmp_path, monkeypatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from lakehouse import airflow_tasks as steps
    from lakehouse.delta import locate, open_table, replace_partition
    from lakehouse.settings import Layout

    monkeypatch.delenv("LAKEHOUSE_STORAGE_URL", raising=False)
    monkeypatch.delenv("LAKEHOUSE_DELTA_RETENTION_HOURS", raising=False)
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path))
    day = dt.date(2026, 11, 1)
    for rel in ("silver/events_part", "gold/dim_devices"):
        loc = locate(rel, Layout(tmp_path))
        for n in range(2):
            replace_partition(loc, pa.table({"n": [n], "date": [day]}), column="date", value=day)
    assert steps.maintenance_tables() == ["silver/events_part", "gold/dim_devices"]
    summary = steps.maintain_table("gold/dim_devices")
    assert summary["table"] == "gold/dim_devices" and summary["checkpoint_version"] == 1
    assert open_table(locate("gold/dim_devices", Layout(tmp_path))).version() == 1
    monkeypatch.setenv("LAKEHOUSE_DELTA_RETENTION_HOURS", "6")
    for call in (steps.maintenance_tables, lambda: steps.maintain_table("silver/events_part")):
        with pytest.raises(AirflowFailException, match="LAKEHOUSE_DELTA_RETENTION_HOURS=6 is too short"):
            call()
