"""make airflow's environment: the printed admin password is the one Airflow uses; airflow is on PATH."""

from __future__ import annotations

import json
import os
import stat

import pytest

from lakehouse.local_airflow import BIN, admin_password, airflow_env


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
