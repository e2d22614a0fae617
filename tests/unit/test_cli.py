"""The lakehouse command's own argument handling."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse.cli import main
from lakehouse.settings import DEFAULT_AIRFLOW_HOME

REPO = Path(__file__).resolve().parents[2]
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")


def test_demo_server_takes_its_own_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo-server", "--port", "0", "--help"])
    assert exit_info.value.code == 0
    assert "--port" in capsys.readouterr().out


def test_backfill_with_a_bad_range_names_it(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path))
    assert main(["backfill", "--from", "2026-11-05", "--to", "2026-11-01"]) == 2
    assert "reversed" in capsys.readouterr().err


def test_the_command_uses_the_repo_airflow_home_not_the_users(tmp_path):
    """Outside `make`, with no AIRFLOW_HOME, the command reads Airflow (connections) from the repo's .airflow/,
    as `make` does, and never creates ~/airflow."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LAKEHOUSE_"))}
    env |= {"HOME": str(home), "LAKEHOUSE_DATA_DIR": str(tmp_path / "data")}
    # publish looks up the lakehouse_s3 connection through Airflow, then finds no gold to publish.
    proc = subprocess.run([LAKEHOUSE, "publish", "--date", "2026-11-01"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert "nothing to publish" in proc.stderr, proc.stderr[-3000:]
    assert not (home / "airflow").exists(), "the command created ~/airflow"
    assert DEFAULT_AIRFLOW_HOME == REPO / ".airflow"


def test_the_airflow_home_is_the_repos_unless_set(monkeypatch, tmp_path):
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("AIRFLOW_HOME", raising=False)
    main(["backfill", "--from", "2026-11-05", "--to", "2026-11-01"])
    assert os.environ["AIRFLOW_HOME"] == str(DEFAULT_AIRFLOW_HOME)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "af"))
    main(["backfill", "--from", "2026-11-05", "--to", "2026-11-01"])
    assert os.environ["AIRFLOW_HOME"] == str(tmp_path / "af")
