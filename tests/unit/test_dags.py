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
        # dags/sources.py generates one DAG per declared source: source_<name>
        expected = "sources" if dag_id.startswith("source_") else dag_id
        assert Path(dag.fileloc).stem == expected
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
    order = ["resolve_day", "extract", "build_silver", "quality_gate", "build_gold", "publish", "publish_bi", "report"]
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


def test_every_declared_source_has_its_dag(dagbag):
    from ingest.sources.config import load_declarations

    declared = {spec.dag_id: spec for spec in load_declarations().values()}
    assert declared and set(declared) <= set(dagbag.dags)
    for dag_id, spec in declared.items():
        dag = dagbag.dags[dag_id]
        assert {"source", spec.kind} <= set(dag.tags)
        if spec.kind == "rest_api":
            order = ["resolve_day", "extract", "build_silver", "build_gold", "report"]
            assert "date" in dag.params
        else:
            order = ["pick_up", "build_silver", "build_gold", "report"]
        for upstream, downstream in itertools.pairwise(order):
            assert downstream in dag.get_task(upstream).downstream_task_ids, (dag_id, upstream)


def test_a_scheduled_source_run_pulls_the_day_that_just_ended(dagbag):
    from airflow.serialization.serialized_objects import coerce_to_core_timetable
    from airflow.timetables.base import DataInterval, TimeRestriction

    from lakehouse.sources import resolve_day

    dag = dagbag.dags["source_vacancies"]  # "30 0 * * *" in UTC
    timetable = coerce_to_core_timetable(dag.timetable)
    utc = ZoneInfo("UTC")
    last = DataInterval(dt.datetime(2026, 10, 30, 0, 30, tzinfo=utc), dt.datetime(2026, 10, 31, 0, 30, tzinfo=utc))
    info = timetable.next_dagrun_info(
        last_automated_data_interval=last,
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True),
    )
    assert info.run_after == dt.datetime(2026, 11, 1, 0, 30, tzinfo=utc)
    assert resolve_day("vacancies", None, info.data_interval.start) == dt.date(2026, 10, 31)
    assert resolve_day("vacancies", "2026-10-05", info.data_interval.start) == dt.date(2026, 10, 5)


def test_an_invalid_sources_file_is_an_import_error_naming_the_field(tmp_path, monkeypatch):
    bad = tmp_path / "sources.yml"
    bad.write_text("sources:\n  shop:\n    kind: rest_api\n    resources: {}\n")
    home = tmp_path / "home"
    for key in [k for k in os.environ if k.startswith("AIRFLOW_CONN_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    monkeypatch.setenv("LAKEHOUSE_SOURCES_FILE", str(bad))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "sources.py"))
    [(path, error)] = bag.import_errors.items()
    assert path.endswith("sources.py") and "sources.yml: sources.shop.resources: declares no resource" in error


@pytest.mark.parametrize("dag_file", ["appmetrica_lakehouse.py", "sources.py"])
def test_dag_file_imports_nothing_heavy(dag_file):
    """Parsing must stay cheap: no pandas, pyarrow, dbt, GX or boto3 at DAG import time."""
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        "heavy = [m for m in ('pandas','pyarrow','dbt','great_expectations','boto3','duckdb') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "dags" / dag_file)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert out.stdout.strip().splitlines()[-1:] in ([], [""]), out.stdout


def test_the_report_runs_after_every_step_whatever_their_outcome(dagbag):
    dag = dagbag.dags["appmetrica_lakehouse"]
    report = dag.get_task("report")
    assert report.trigger_rule == "all_done"
    upstream = {t.task_id for t in report.upstream_list}
    assert {"extract", "build_silver", "quality_gate", "build_gold", "publish", "publish_bi"} <= upstream


def test_mapped_extracts_are_labelled_by_resource(dagbag):
    """The grid shows `events`, `sessions_starts`, ... for the mapped extract tasks, not 0..3: the task names the
    template and puts its resource in the context it is rendered from."""
    for dag_id, dag in dagbag.dags.items():
        if "extract" in dag.task_dict:
            assert dag.get_task("extract").map_index_template == "{{ resource }}", dag_id
    assert "extract" in dagbag.dags["appmetrica_lakehouse"].task_dict
