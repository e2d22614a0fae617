"""The lakehouse command's own argument handling."""

from __future__ import annotations

import pytest

from lakehouse.cli import main


def test_demo_server_takes_its_own_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo-server", "--port", "0", "--help"])
    assert exit_info.value.code == 0
    assert "--port" in capsys.readouterr().out


def test_backfill_with_a_bad_range_names_it(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path))
    assert main(["backfill", "--from", "2026-11-05", "--to", "2026-11-01"]) == 2
    assert "reversed" in capsys.readouterr().err
