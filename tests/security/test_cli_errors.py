"""The ``lakehouse`` command reports a failure as one line on stderr: exit 2 for bad input (an argument, a setting),
exit 1 for a failure while working (the API, the disk), the traceback only with ``--debug``; a data folder that is a
file or cannot be written is named by its setting, LAKEHOUSE_DATA_DIR."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ingest.appmetrica.demo.server import DemoLogsApiServer
from lakehouse.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    rc = main(list(argv))
    return rc, capsys.readouterr().err.strip()


def assert_one_line(err: str) -> None:
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err


def test_a_data_dir_that_is_a_file_is_named_as_bad_input(tmp_path, monkeypatch, capsys):
    (tmp_path / "data").write_text("not a folder")
    for setting in (tmp_path / "data", tmp_path / "data" / "sub"):
        monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(setting))
        rc, err = run_cli(capsys, "silver", "--date", "2026-11-01")
        assert rc == 2
        assert_one_line(err)
        assert f"LAKEHOUSE_DATA_DIR={str(setting)!r}" in err and "point it at a folder" in err


@pytest.fixture
def unwritable_dir(tmp_path: Path):
    """A folder even root cannot write into (the immutable attribute), removed again afterwards."""
    folder = tmp_path / "data"
    folder.mkdir()
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        pytest.skip("needs chattr +i (root on a file system with attributes)")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_an_unwritable_data_dir_is_named_not_buried_in_chained_errors(unwritable_dir, monkeypatch, capsys):
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(unwritable_dir))
    rc, err = run_cli(capsys, "silver", "--date", "2026-11-01")
    assert rc == 1
    assert_one_line(err)
    assert f"LAKEHOUSE_DATA_DIR={str(unwritable_dir)!r} cannot be written: Operation not permitted" in err


@pytest.fixture
def rejecting_api(tmp_path, monkeypatch):
    """A Logs API that rejects the configured token (a runtime failure, not a bad argument)."""
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path / "data"))
    with DemoLogsApiServer(token="right-token", application_id="1") as api:
        conn = {"conn_type": "http", "host": api.url, "password": "wrong-token", "extra": {"application_id": "1"}}
        monkeypatch.setenv("AIRFLOW_CONN_APPMETRICA_DEFAULT", json.dumps(conn))
        yield api


def test_a_runtime_failure_is_one_line_and_exit_1(rejecting_api, capsys):
    rc, err = run_cli(capsys, "extract", "--resource", "events", "--date", "2026-11-01")
    assert rc == 1
    assert_one_line(err)
    assert err.startswith("lakehouse extract: LogsApiError: ") and "--debug" in err
    assert "wrong-token" not in err


def test_debug_shows_the_traceback(rejecting_api, capsys):
    rc, err = run_cli(capsys, "--debug", "extract", "--resource", "events", "--date", "2026-11-01")
    assert rc == 1
    assert "Traceback (most recent call last)" in err
    assert err.splitlines()[-1].startswith("lakehouse extract: LogsApiError: ")


def test_a_bad_argument_is_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path / "data"))
    rc, err = run_cli(capsys, "extract", "--resource", "../events", "--date", "2026-11-01")
    assert rc == 2
    assert_one_line(err)
    assert "'../events'" in err
