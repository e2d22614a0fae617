"""What the Airflow UI shows of appmetrica_lakehouse: Assets, the docs task, alerts, the trigger form's date Param."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("AIRFLOW_CONN_")]:
            mp.delenv(key)
        mp.setenv("AIRFLOW_HOME", str(home))
        mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(REPO / "dags"))
        assert bag.import_errors == {}
        yield bag


def test_dbt_docs_are_regenerated_after_gold_and_before_the_report(dagbag):
    dag = dagbag.dags["appmetrica_lakehouse"]
    assert "dbt_docs" in dag.get_task("build_gold").downstream_task_ids
    assert "report" in dag.get_task("dbt_docs").downstream_task_ids


def test_silver_and_gold_tasks_declare_their_assets(dagbag):
    from lakehouse.assets import GOLD_MART_NAMES, SILVER_TABLE_NAMES

    dag = dagbag.dags["appmetrica_lakehouse"]
    outlets = {t.task_id: {a.uri for a in t.outlets} for t in dag.tasks}
    assert outlets["build_silver"] == {f"x-lakehouse://silver/{t}" for t in SILVER_TABLE_NAMES}
    assert outlets["build_gold"] == {f"x-lakehouse://gold/{m}" for m in GOLD_MART_NAMES}
    assert all(not uris for task_id, uris in outlets.items() if task_id not in {"build_silver", "build_gold"})


def test_every_task_alerts_on_failure_and_the_last_one_on_success(dagbag):
    from lakehouse.alerts import LakehouseNotifier

    dag = dagbag.dags["appmetrica_lakehouse"]

    def notifiers(callbacks) -> list:
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks] if callbacks else []
        return [c for c in callbacks if isinstance(c, LakehouseNotifier)]

    for t in dag.tasks:
        if t.task_id == "report":
            # It fails a run only after the failed step has alerted: one failure, one message.
            assert notifiers(t.on_failure_callback) == []
            continue
        assert [c.event for c in notifiers(t.on_failure_callback)] == ["failure"], t.task_id
    successes = {t.task_id for t in dag.tasks if notifiers(t.on_success_callback)}
    assert successes == {"report"} and not dag.get_task("report").downstream_task_ids


def test_date_param_renders_as_a_described_date_picker(dagbag):
    param = dagbag.dags["appmetrica_lakehouse"].params.get_param("date")
    assert param.schema["format"] == "date" and "string" in param.schema["type"]
    assert param.description and "YYYY-MM-DD" in param.description
