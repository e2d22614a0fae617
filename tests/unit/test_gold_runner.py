"""transforms.gold without running dbt: cheap import, command line, failure reporting, mart discovery."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from lake_tables import write_rows

from lakehouse.settings import REPO_ROOT, ConfigError, Layout
from transforms import gold


def test_import_does_not_load_dbt_duckdb_or_pyarrow() -> None:
    code = (
        "import sys, transforms.gold; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'dbt', 'duckdb', 'pyarrow', 'pandas'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_dbt_writes_nothing_into_the_repository(tmp_path: Path) -> None:
    paths = gold.dbt_paths(Layout(tmp_path))
    cmd = gold._dbt_command(["build"], target=paths["target"], logs=paths["logs"])
    assert cmd[cmd.index("--target-path") + 1] == str(tmp_path / "warehouse" / "dbt" / "target")
    assert cmd[cmd.index("--log-path") + 1] == str(tmp_path / "warehouse" / "dbt" / "logs")
    assert cmd[cmd.index("--project-dir") + 1] == str(REPO_ROOT / "dbt_project")
    assert gold._dbt_env(Layout(tmp_path))["LAKEHOUSE_DATA_DIR"] == str(tmp_path)


def test_gold_table_follows_the_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKEHOUSE_STORAGE_URL", raising=False)
    loc = gold.gold_table("dim_devices", Layout(tmp_path))
    assert (loc.rel, loc.uri) == ("gold/dim_devices", str(tmp_path / "gold" / "dim_devices"))
    with pytest.raises(ValueError):
        gold.gold_table("../etc", Layout(tmp_path))


def _run_results(*results: tuple[str, str]) -> dict:
    return {"results": [{"unique_id": uid, "status": status, "message": f"msg {uid}"} for uid, status in results]}


def test_failure_names_failing_nodes_and_counts_skipped() -> None:
    results = _run_results(
        ("model.appmetrica_lakehouse.stg_appmetrica__events", "success"),
        ("test.appmetrica_lakehouse.unique_stg_appmetrica__events_event_id.55f655f8cc", "fail"),
        ("unit_test.appmetrica_lakehouse.dim_devices.dim_devices_tie_break", "fail"),
        ("model.appmetrica_lakehouse.dim_devices", "skipped"),
    )
    with pytest.raises(gold.GoldBuildError) as caught:
        gold._raise_failed(1, results, [])
    message = str(caught.value)
    assert "test unique_stg_appmetrica__events_event_id [fail]" in message
    assert "unit_test dim_devices.dim_devices_tie_break [fail]" in message
    assert "1 skipped" in message
    assert [f["status"] for f in caught.value.failures] == ["fail", "fail"]


def test_failure_without_run_results_shows_dbt_output() -> None:
    with pytest.raises(gold.GoldBuildError, match="Compilation Error in model x"):
        gold._raise_failed(2, None, ["...", "Compilation Error in model x"])


def _manifest(**models: dict | None) -> dict:
    return {
        "nodes": {
            f"model.p.{name}": {
                "resource_type": "model",
                "name": name,
                "relation_name": f'"lakehouse"."main"."{name}"',
                "config": {"meta": {"gold": gold_meta} if gold_meta is not None else {}},
            }
            for name, gold_meta in models.items()
        }
    }


def test_marts_are_the_successful_models_with_gold_meta() -> None:
    manifest = _manifest(
        fct_a={"order_by": ["k"], "date_partition": "feature_date"},
        dim_b={"order_by": ["k", "d"]},
        int_c=None,
        fct_skipped={"order_by": ["k"]},
    )
    results = _run_results(
        ("model.p.fct_a", "success"),
        ("model.p.dim_b", "success"),
        ("model.p.int_c", "success"),
        ("model.p.fct_skipped", "skipped"),
    )
    marts = gold._marts(manifest, results)
    assert [(m.name, m.order_by, m.date_partition) for m in marts] == [
        ("dim_b", ("k", "d"), None),
        ("fct_a", ("k",), "feature_date"),
    ]
    with pytest.raises(gold.GoldBuildError, match="order_by"):
        gold._marts(_manifest(fct_a={}), _run_results(("model.p.fct_a", "success")))
    # an incremental build recomputes feature dates: no other column can say which rows it replaced
    with pytest.raises(gold.GoldBuildError, match="date_partition must be feature_date, got 'event_date'"):
        bad = _manifest(fct_a={"order_by": ["k"], "date_partition": "event_date"})
        gold._marts(bad, _run_results(("model.p.fct_a", "success")))


def test_failed_dbt_build_raises_and_publishes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = Layout(tmp_path)
    _fake_silver(layout)

    def fake_dbt(
        args: list[str], layout: Layout, *, target: Path, logs: Path, database: Path | None = None
    ) -> tuple[int, list[str]]:
        assert args == ["build", "--selector", "gold", "--full-refresh"]
        assert database == layout.warehouse / "lakehouse.duckdb"
        target.mkdir(parents=True, exist_ok=True)
        results = _run_results(("test.appmetrica_lakehouse.not_null_dim_devices_first_seen_date.1", "fail"))
        (target / "run_results.json").write_text(json.dumps(results))
        return 1, ["Done. PASS=0 WARN=0 ERROR=1"]

    monkeypatch.setattr(gold, "_run_dbt", fake_dbt)
    monkeypatch.setattr(gold, "_publish", lambda *a: pytest.fail("must not publish after a failed build"))
    with pytest.raises(gold.GoldBuildError, match="not_null_dim_devices_first_seen_date"):
        gold.build_gold(layout)
    assert not layout.gold.exists()


def _fake_silver(layout: Layout, tables: tuple[str, ...] | None = None) -> None:
    from transforms.silver.schemas import SILVER_TABLES

    for table in tables or tuple(SILVER_TABLES):
        write_rows(layout, table, dt.date(2026, 11, 1), [{}])  # one row of nulls: dbt is stubbed


def test_no_silver_events_fails_before_running_dbt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gold, "_run_dbt", lambda *a, **k: pytest.fail("dbt must not run"))
    with pytest.raises(gold.GoldBuildError, match="no silver events_part"):
        gold.build_gold(Layout(tmp_path))


def test_silver_built_before_the_revenue_and_crash_tables_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gold, "_run_dbt", lambda *a, **k: pytest.fail("dbt must not run"))
    _fake_silver(Layout(tmp_path), ("events_part", "mobile_devices", "revenue_events", "errors"))
    with pytest.raises(gold.GoldBuildError, match=r"no partition of .*ad_revenue_events, crashes.*rebuild the silver"):
        gold.build_gold(Layout(tmp_path))


@pytest.mark.parametrize("value", ["usd", "US", "USDT", "U$D", "USD;drop"])
def test_a_bad_reporting_currency_is_refused_before_dbt_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             value: str) -> None:  # fmt: skip
    monkeypatch.setenv("LAKEHOUSE_REPORTING_CURRENCY", value)
    with pytest.raises(
        ConfigError, match=r"LAKEHOUSE_REPORTING_CURRENCY must be an ISO 4217 code.*" + re.escape(value)
    ):
        gold._dbt_env(Layout(tmp_path))


def test_the_reporting_currency_reaches_dbt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKEHOUSE_REPORTING_CURRENCY", raising=False)
    assert gold._dbt_env(Layout(tmp_path))["LAKEHOUSE_REPORTING_CURRENCY"] == "USD"
    monkeypatch.setenv("LAKEHOUSE_REPORTING_CURRENCY", " EUR ")
    assert gold._dbt_env(Layout(tmp_path))["LAKEHOUSE_REPORTING_CURRENCY"] == "EUR"


def test_a_declared_sources_build_uses_its_selector_database_and_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = Layout(tmp_path)  # no AppMetrica silver at all: a source's build must not need it
    seen: dict[str, object] = {}

    def fake_dbt(
        args: list[str], layout: Layout, *, target: Path, logs: Path, database: Path | None = None
    ) -> tuple[int, list[str]]:
        seen.update(args=args, target=target, database=database)
        target.mkdir(parents=True, exist_ok=True)
        (target / "run_results.json").write_text(json.dumps(_run_results()))
        return 0, ["Done."]

    monkeypatch.setattr(gold, "_run_dbt", fake_dbt)
    monkeypatch.setattr(gold, "_publish", lambda layout, marts, database=None, **kw: {})
    gold.build_gold(layout, selector="source_vacancies", workspace="vacancies")
    assert seen == {
        "args": ["build", "--selector", "source_vacancies"],
        "target": tmp_path / "warehouse" / "dbt" / "vacancies" / "target",
        "database": tmp_path / "warehouse" / "vacancies.duckdb",
    }
    env = gold._dbt_env(layout, tmp_path / "warehouse" / "vacancies.duckdb")
    assert env["LAKEHOUSE_DBT_DATABASE"] == str(tmp_path / "warehouse" / "vacancies.duckdb")
    assert gold._dbt_env(layout)["LAKEHOUSE_DBT_DATABASE"] == str(tmp_path / "warehouse" / "lakehouse.duckdb")
    with pytest.raises(ValueError, match="dbt workspace"):
        gold.dbt_paths(layout, "../x")
