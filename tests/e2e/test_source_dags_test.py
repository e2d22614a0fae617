"""The generated DAGs under `airflow dags test`: source_vacancies on the demo API, source_exchange_rates on an inbox.

Connections travel as AIRFLOW_CONN_* in the environment, as a user would set them; after each run
the layers are checked, and every log line and file is searched for the secret.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable

from ingest.sources.demo.vacancies import VacanciesApiServer

pytestmark = pytest.mark.e2e

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
DAY = "2026-10-27"


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    return tmp_path_factory.mktemp("airflow")


def _env(airflow_home: Path, data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LAKEHOUSE_"))}
    return env | {"AIRFLOW_HOME": str(airflow_home), "LAKEHOUSE_DATA_DIR": str(data)} | extra


def _files_containing(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_source_vacancies_runs_under_airflow_dags_test(airflow_home, tmp_path):
    token = "vac-" + os.urandom(12).hex()
    data = tmp_path / "data"
    with VacanciesApiServer(token, start=dt.date(2026, 10, 26), days=3, per_day=80) as api:
        conn = json.dumps({"conn_type": "http", "host": api.url, "password": token})
        env = _env(airflow_home, data, AIRFLOW_CONN_VACANCIES_API=conn)
        proc = subprocess.run([LAKEHOUSE, "sources", "dags-test", "vacancies", "--date", DAY], env=env,
                              capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
        versions = api.versions
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert "source_vacancies 2026-10-27: succeeded" in output

    report = json.loads((data / "reports/source_vacancies" / f"date={DAY}" / "summary.json").read_text())
    [pulled] = report["extract"]
    day = dt.date.fromisoformat(DAY)
    expected = [v for v in versions if dt.datetime.fromisoformat(v["updated_at"]).astimezone(dt.UTC).date() == day]
    assert pulled["records"] == len(expected) > 0
    silver_rows = (
        duckdb.connect()
        .execute("select count(*) from read_parquet(?)", [f"{data}/silver/vacancies__vacancies/date={DAY}/*.parquet"])
        .fetchone()[0]
    )
    assert silver_rows == report["silver"]["tables"]["vacancies__vacancies"] > 0
    mart = report["gold"]["marts"]["vacancy_skills_daily"]
    assert mart["table"] == str(data / "gold/vacancy_skills_daily")
    gold = DeltaTable(mart["table"])
    assert gold.version() == mart["version"] and gold.to_pyarrow_table().num_rows == mart["rows"] > 0

    assert token not in output, "the API token appeared in the run's output"
    assert _files_containing(tmp_path, token.encode()) == []


def test_source_exchange_rates_picks_up_its_inbox_under_airflow_dags_test(airflow_home, tmp_path):
    data = tmp_path / "data"
    inbox = data / "inbox" / "exchange_rates"
    inbox.mkdir(parents=True)
    (inbox / "rates-1.csv").write_text(
        "rate_date,currency,units,rate\n2026-11-01,USD,1,95.5\n2026-11-01,JPY,100,61.2\n"
    )
    (inbox / "rates-bad.csv").write_text("rate_date,currency,units,rate\n2026-11-01,EUR,one,101\n")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    cmd = [LAKEHOUSE, "sources", "dags-test", "exchange_rates", "--date", today]
    proc = subprocess.run(cmd, env=_env(airflow_home, data), capture_output=True, text=True, timeout=900, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]

    [report_path] = (data / "reports/source_exchange_rates").glob("date=*/summary.json")
    report = json.loads(report_path.read_text())
    assert [f["file"] for f in report["pick_up"]["loaded"]] == ["rates-1.csv"]
    [rejected] = report["pick_up"]["rejected"]
    assert rejected["file"] == "rates-bad.csv" and "invalid_integer (units=one)" in rejected["reason"]
    assert (data / rejected["quarantine"]).exists()
    day = report["pick_up"]["date"]
    assert report["silver"][day]["tables"] == {"exchange_rates__rates": 2}
    assert report["gold"] == {"skipped": "the source declares no dbt_selector"}
    assert sorted(p.name for p in inbox.iterdir() if not p.name.startswith(".")) == []
