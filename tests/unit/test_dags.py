"""Every DAG imports cleanly with no connections, and the daily schedule picks the right day."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

REPO = Path(__file__).resolve().parents[2]
MSK = ZoneInfo("Europe/Moscow")


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env |= {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    env["LAKEHOUSE_APP_TIMEZONE"] = "Europe/Moscow"
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("AIRFLOW_CONN_")]:
            mp.delenv(key)
        for key, value in env.items():
            mp.setenv(key, value)
        from airflow.dag_processing.dagbag import DagBag

        yield DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert dagbag.dags, "no DAGs found"


def test_dag_id_is_the_file_name_and_dag_is_documented(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert Path(dag.fileloc).stem == dag_id
        assert dag.doc_md and dag.tags
        for t in dag.tasks:
            assert t.retries >= 1, f"{dag_id}.{t.task_id} has no retries"


def test_no_cycles(dagbag):
    for dag in dagbag.dags.values():
        seen: dict[str, int] = {}

        def visit(task_id: str, dag=dag, seen=seen) -> None:
            assert seen.get(task_id) != 1, f"cycle through {task_id}"
            if seen.get(task_id) == 2:
                return
            seen[task_id] = 1
            for child in dag.get_task(task_id).downstream_task_ids:
                visit(child)
            seen[task_id] = 2

        for t in dag.tasks:
            visit(t.task_id)


def test_pipeline_shape(dagbag):
    dag = dagbag.dags["appmetrica_lakehouse"]
    order = ["resolve_day", "extract", "build_silver", "quality_gate", "build_gold", "publish", "report"]
    for upstream, downstream in itertools.pairwise(order):
        assert downstream in dag.get_task(upstream).downstream_task_ids
    assert "date" in dag.params


def test_scheduled_run_processes_the_day_that_just_ended(dagbag):
    from airflow.serialization.serialized_objects import coerce_to_core_timetable
    from airflow.timetables.base import DataInterval, TimeRestriction

    from lakehouse.pipeline import resolve_day

    dag = dagbag.dags["appmetrica_lakehouse"]
    timetable = coerce_to_core_timetable(dag.timetable)
    last = DataInterval(dt.datetime(2026, 10, 30, tzinfo=MSK), dt.datetime(2026, 10, 31, tzinfo=MSK))
    info = timetable.next_dagrun_info(
        last_automated_data_interval=last,
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True),
    )
    # It fires at local midnight starting 1 November and covers 31 October, local time.
    assert info.run_after == dt.datetime(2026, 11, 1, tzinfo=MSK)
    assert info.data_interval.end - info.data_interval.start == dt.timedelta(days=1)
    assert resolve_day(None, info.data_interval.start) == dt.date(2026, 10, 31)
    # In UTC that interval starts the evening before; the local day is still what counts.
    assert info.data_interval.start.astimezone(dt.UTC).date() == dt.date(2026, 10, 30)


def test_date_param_wins_and_is_validated():
    from lakehouse.pipeline import resolve_day
    from lakehouse.settings import ConfigError

    assert resolve_day("2026-11-05", None) == dt.date(2026, 11, 5)
    for bad in ("2026-13-01", "05.11.2026", "2026-11-05/../../etc", "2026-02-30"):
        with pytest.raises(ConfigError, match="date"):
            resolve_day(bad, None)


def test_dag_file_imports_nothing_heavy():
    """Parsing must stay cheap: no pandas, pyarrow, dbt, GX or boto3 at DAG import time."""
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        "heavy = [m for m in ('pandas','pyarrow','dbt','great_expectations','boto3','duckdb') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "dags" / "appmetrica_lakehouse.py")],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert out.stdout.strip().splitlines()[-1:] in ([], [""]), out.stdout
