"""make airflow's environment: the printed admin password is the one Airflow uses; airflow is on PATH."""

from __future__ import annotations

import json
import os
import stat

import pytest

from lakehouse.local_airflow import BIN, admin_password, airflow_env, demo_summary
from lakehouse.settings import Layout


def test_admin_password_is_created_once_and_kept(tmp_path):
    env = {"AIRFLOW_HOME": str(tmp_path)}
    first = admin_password(env)
    path = tmp_path / "simple_auth_manager_passwords.json.generated"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(path)
    assert json.loads(path.read_text()) == {"admin": first} and len(first) >= 12
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert admin_password({"AIRFLOW_HOME": str(tmp_path)}) == first


def test_an_existing_passwords_file_is_respected(tmp_path):
    path = tmp_path / "pw.json"
    path.write_text(json.dumps({"admin": "chosen-by-me", "viewer": "x"}))
    env = {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(path)}
    assert admin_password(env) == "chosen-by-me"
    path.write_text("{broken")
    with pytest.raises(RuntimeError, match="not valid JSON"):
        admin_password(env)


def test_airflow_env_puts_this_environment_first_on_path(tmp_path):
    env = airflow_env({"AIRFLOW_HOME": str(tmp_path / "home"), "PATH": "/usr/bin"})
    assert env["PATH"].split(os.pathsep)[:2] == [str(BIN), "/usr/bin"]
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"].endswith("plugins")
    again = airflow_env(env)
    assert again["PATH"] == env["PATH"]


def _report(tables: int) -> dict:
    return {
        "date": "2026-11-01", "run_id": "manual__x", "status": "success",
        "bronze_rows": {"events": 6454, "sessions_starts": 975},
        "silver_rows": {f"table_{i:02d}": 1000 + i for i in range(tables)},
        "quarantined_rows": {"events": 15, "sessions_starts": 0},
        "quarantined_by_reason": {"events": {"invalid_json": 2, "invalid_datetime": 13}},
        "duplicates_removed": {"events": 32},
        "gold": {"marts": {"fct_device_daily": {"rows": 2198}}},
        "published": {"target": "/lake/published/gold", "objects": 5},
    }  # fmt: skip


def test_the_demo_summary_is_short_and_says_where_things_are(tmp_path):
    layout = Layout(tmp_path / "data")
    lines = demo_summary(_report(7), layout, seconds=51.2, log_file=tmp_path / "airflow/logs/demo-2026-11-01.log")
    text = "\n".join(lines)
    assert len(lines) <= 40 and max(len(line.replace(str(tmp_path), "")) for line in lines) <= 120
    assert lines[0].startswith("appmetrica_lakehouse 2026-11-01: success in 51 s")
    for needle in ("events 6,454", "table_06 1,006", "events 15", "invalid_datetime 13", "fct_device_daily 2,198",
                   "/lake/published/gold", str(layout.gold), "date=2026-11-01/index.html", "docs/dbt/index.html",
                   "docs/gx/index.html", "demo-2026-11-01.log", "make airflow", "docs/features.md"):  # fmt: skip
        assert needle in text, needle
    # However many tables a lake grows, the summary stays within 40 lines.
    assert len(demo_summary(_report(400), layout, seconds=1, log_file=tmp_path / "x.log")) == 40


def test_make_airflow_starts_calm(monkeypatch, tmp_path, capsys):
    """`make airflow PORT=...`: the port asked for, as many tasks at once as cores, only triggered runs, and the
    vacancies source pointed at its live demo server like AppMetrica's (no DAG fails for want of a connection)."""
    import requests

    from lakehouse import local_airflow

    for key in [k for k in os.environ if k.startswith(("AIRFLOW", "LAKEHOUSE_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path / "data"))
    seen: dict = {}

    def fake_airflow(*args: str, env: dict[str, str], **kwargs: object) -> int:
        seen.update(env)
        conn = json.loads(env["AIRFLOW_CONN_VACANCIES_API"])
        window = {"date_from": "2026-10-27T00:00:00+00:00", "date_to": "2026-10-28T00:00:00+00:00"}
        auth = {"Authorization": f"Bearer {conn['password']}"}
        answer = requests.get(f"{conn['host']}/v1/vacancies", params=window, headers=auth, timeout=30)
        seen["vacancies_status"] = answer.status_code
        return 0

    monkeypatch.setattr(local_airflow, "airflow", fake_airflow)
    assert local_airflow.standalone(port=8191) == 0
    assert seen["AIRFLOW__API__PORT"] == "8191" and seen["AIRFLOW__API__BASE_URL"] == "http://localhost:8191"
    assert seen["AIRFLOW__CORE__PARALLELISM"] == str(os.cpu_count())
    assert seen["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] == "False"
    assert seen["vacancies_status"] == 200
    assert json.loads(seen["AIRFLOW_CONN_APPMETRICA_DEFAULT"])["host"].startswith("http://127.0.0.1:")
    out = capsys.readouterr().out
    assert "http://localhost:8191" in out and "only the runs you trigger" in out and "demo vacancies API" in out
