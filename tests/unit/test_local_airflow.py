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
                   "/lake/published/gold", str(layout.gold), "docs/dbt/index.html", "docs/gx/index.html",
                   "demo-2026-11-01.log", "make airflow", "docs/features.md"):  # fmt: skip
        assert needle in text, needle
    # However many tables a lake grows, the summary stays within 40 lines.
    assert len(demo_summary(_report(400), layout, seconds=1, log_file=tmp_path / "x.log")) == 40
