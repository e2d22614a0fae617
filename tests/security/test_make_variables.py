"""Make variables used in recipes: only from the command line or the Makefile's default, checked before any recipe
runs and single-quoted in recipes, so a value can neither run a command nor hide a refused date behind exit 0."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="needs GNU make")

INJECTIONS = [
    "x; touch {marker}",
    "2026-11-01; touch {marker}",
    "$(shell touch {marker})",
    "2026-11-01'; touch {marker}; '",
    "2026-11-01\ntouch {marker}",
    "`touch {marker}`",
    "$$(touch {marker})",
]


def fake_venv(tmp_path: Path) -> tuple[Path, Path]:
    """A venv stand-in whose ``lakehouse`` records its arguments, so a real ``make`` runs no pipeline."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    calls = tmp_path / "calls.txt"
    script = venv / "bin" / "lakehouse"
    script.write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" >> {calls}\n')
    script.chmod(0o755)
    (venv / ".installed").touch()
    return venv, calls


def make(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATE", "PYTHON", "MAKEFLAGS", "MFLAGS")}
    env.update(env_extra or {})
    return subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(REPO), *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("target", ["dags-test", "demo"])
@pytest.mark.parametrize("template", INJECTIONS)
@pytest.mark.parametrize("dry_run", [True, False], ids=["make-n", "make"])
def test_a_bad_date_on_the_command_line_stops_make_and_runs_nothing(target, template, dry_run, tmp_path):
    marker = tmp_path / "pwned"
    venv, calls = fake_venv(tmp_path)
    value = template.format(marker=marker)
    result = make(*(["-n"] if dry_run else []), target, f"DATE={value}", f"VENV={venv}")
    assert result.returncode != 0
    assert "DATE must be a day as YYYY-MM-DD" in result.stderr
    assert not marker.exists()
    assert not calls.exists()


@pytest.mark.parametrize("target", ["dags-test", "demo"])
@pytest.mark.parametrize("template", INJECTIONS[:3])
def test_a_date_in_the_environment_is_ignored(target, template, tmp_path):
    marker = tmp_path / "pwned"
    venv, calls = fake_venv(tmp_path)
    result = make(target, f"VENV={venv}", env_extra={"DATE": template.format(marker=marker)})
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert calls.read_text().splitlines() == [target, "--date", "2026-11-01"]


@pytest.mark.parametrize("target", ["dags-test", "demo"])
def test_a_good_date_on_the_command_line_reaches_the_cli_as_one_argument(target, tmp_path):
    venv, calls = fake_venv(tmp_path)
    result = make(target, "DATE=2026-11-02", f"VENV={venv}")
    assert result.returncode == 0, result.stderr
    assert calls.read_text().splitlines() == [target, "--date", "2026-11-02"]


def test_a_refused_date_fails_make_even_when_it_has_the_right_shape(tmp_path):
    """The CLI refuses 2026-13-45; with the value quoted nothing runs after it, so make's exit shows the failure."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / ".installed").touch()
    (venv / "bin" / "lakehouse").symlink_to(REPO / ".venv" / "bin" / "lakehouse")
    result = make("dags-test", "DATE=2026-13-45", f"VENV={venv}")
    assert result.returncode != 0
    assert "2026-13-45" in result.stderr


@pytest.mark.parametrize("template", ["python3; touch {marker}", "$(shell touch {marker})", "python3 -c 'x'"])
def test_a_python_command_with_shell_text_is_refused(template, tmp_path):
    marker = tmp_path / "pwned"
    result = make("-n", "venv", f"PYTHON={template.format(marker=marker)}", f"VENV={tmp_path / 'venv'}")
    assert result.returncode != 0
    assert "PYTHON must be" in result.stderr
    assert not marker.exists()
