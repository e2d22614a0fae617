"""A malformed ``AIRFLOW_CONN_<ID>`` fails at once naming the variable and the JSON error: Airflow's own lookup
swallows the parse error and says the connection "isn't defined", which made each extract retry with backoff for
minutes, and made a broken ``lakehouse_s3`` or ``lakehouse_alerts`` read as "no connection" (publish locally, no
alerts)."""

from __future__ import annotations

import json
import time

import pytest

from lakehouse.settings import ConfigError

SECRET = "s3cret-token-0123"
MALFORMED = [
    ('{"conn_type": "http", "host": "http://127.0.0.1:9", "password": "' + SECRET + '",}', "not valid JSON"),
    ('{"conn_type": "http" "password": "' + SECRET + '"}', "not valid JSON: Expecting ',' delimiter at line 1"),
    ('["http", "' + SECRET + '"]', "must be a JSON object, got a JSON list"),
]


@pytest.mark.parametrize(("value", "message"), MALFORMED)
def test_the_dag_extract_fails_at_once_without_retries(value, message, tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from lakehouse import airflow_tasks

    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AIRFLOW_CONN_APPMETRICA_DEFAULT", value)
    started = time.perf_counter()
    with pytest.raises(AirflowFailException) as err:  # AirflowFailException: the task is not retried
        airflow_tasks.extract("events", "2026-11-01")
    assert time.perf_counter() - started < 5
    text = str(err.value)
    assert "environment variable AIRFLOW_CONN_APPMETRICA_DEFAULT (the appmetrica_default connection)" in text
    assert message in text and "isn't defined" not in text
    assert SECRET not in text


@pytest.mark.parametrize("conn_id", ["lakehouse_s3", "lakehouse_alerts"])
def test_an_optional_connection_that_is_malformed_is_an_error_not_absent(conn_id, monkeypatch):
    from lakehouse.alerts import load_channel
    from lakehouse.publish import find_connection

    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", MALFORMED[0][0])
    lookup = find_connection if conn_id == "lakehouse_s3" else load_channel
    with pytest.raises(ConfigError, match=f"AIRFLOW_CONN_{conn_id.upper()} .* is not valid JSON") as err:
        lookup(conn_id)
    assert SECRET not in str(err.value)


def test_a_declared_source_connection_that_is_malformed_is_named(monkeypatch):
    from ingest.sources.config import get_source
    from ingest.sources.connection import credentials_from_airflow

    source = get_source("vacancies")
    assert source.connection
    monkeypatch.setenv(f"AIRFLOW_CONN_{source.connection.upper()}", MALFORMED[1][0])
    with pytest.raises(ConfigError, match=f"AIRFLOW_CONN_{source.connection.upper()} .* is not valid JSON"):
        credentials_from_airflow(source)


def test_well_formed_connections_still_work(monkeypatch):
    from lakehouse.pipeline import appmetrica_settings_from_airflow

    conn = {"conn_type": "http", "host": "http://127.0.0.1:9", "password": SECRET, "extra": {"application_id": "7"}}
    monkeypatch.setenv("AIRFLOW_CONN_APPMETRICA_DEFAULT", json.dumps(conn))
    assert appmetrica_settings_from_airflow().application_id == "7"


def test_the_cli_names_the_variable_and_the_json_error(tmp_path, monkeypatch, capsys):
    from lakehouse.cli import main

    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AIRFLOW_CONN_APPMETRICA_DEFAULT", MALFORMED[1][0])
    assert main(["extract", "--resource", "events", "--date", "2026-11-01"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("lakehouse extract: environment variable AIRFLOW_CONN_APPMETRICA_DEFAULT is not valid JSON: "
                   "Expecting ',' delimiter at line 1 column 22")  # fmt: skip
