"""Declaration files are read with a bounded size and without YAML anchors or aliases: an alias bomb is refused at
once, in little memory, with an error naming the file, in the CLI and when the DAG file is parsed."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ingest.sources.config import SourceConfigError, load_declarations
from lakehouse.settings import ConfigError
from lakehouse.yaml_files import parse_yaml, read_yaml_file

REPO = Path(__file__).resolve().parents[2]


def alias_bomb(levels: int = 9) -> str:
    """A valid CSV source whose ``description`` is the classic billion laughs: ``levels`` anchors, each listing the
    previous one 9 times (9**levels strings once expanded, from under a kilobyte of text)."""
    lines = ["version: 1", "sources:", "  rates:", "    kind: csv_drop", "    description:", '      a0: &a0 ["lol"]']
    for i in range(1, levels):
        lines.append(f"      a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines += [
        "    resources:",
        "      daily:",
        "        file_pattern: 'rates*.csv'",
        "        write_disposition: merge",
        "        primary_key: [day]",
        "        fields: {day: date, rate: number}",
    ]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_fast_with_the_file_named(tmp_path):
    path = tmp_path / "bomb.yml"
    path.write_text(alias_bomb())
    assert path.stat().st_size < 1000
    started = time.perf_counter()
    with pytest.raises(SourceConfigError, match=r"bomb.yml: not valid YAML at line \d+.*anchors and aliases"):
        load_declarations(path)
    assert time.perf_counter() - started < 1.0


def test_the_cli_refuses_an_alias_bomb_in_a_bounded_process(tmp_path):
    """`lakehouse sources list` under a 1 GiB address-space cap: it used to need 1.6 GB and 13 s for this file."""
    path = tmp_path / "sources.yml"
    path.write_text(alias_bomb())
    cap = 1024**3

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", "sources", "list"],
        env={"LAKEHOUSE_SOURCES_FILE": str(path), "PATH": "/usr/bin:/bin", "LAKEHOUSE_DATA_DIR": str(tmp_path)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
    )
    assert time.perf_counter() - started < 20
    assert result.returncode == 2, result.stderr
    assert "sources.yml: not valid YAML" in result.stderr
    assert "aliases are not allowed" in result.stderr or "anchors and aliases are not allowed" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "text", ["a: &x 1\nb: *x\n", "base: &b {k: 1}\nother:\n  <<: *b\n", "a: &only_an_anchor 1\n", "- *undefined\n"]
)
def test_any_anchor_or_alias_is_refused(text):
    with pytest.raises(ConfigError, match="anchors and aliases are not allowed"):
        parse_yaml(text, "x.yml")


def test_plain_yaml_still_loads():
    assert parse_yaml("a: [1, 2]\nb: {c: 'd'}\n", "x.yml") == yaml.safe_load("a: [1, 2]\nb: {c: 'd'}\n")


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path, monkeypatch):
    path = tmp_path / "big.yml"
    path.write_text("version: 1\nsources: {}\n" + "# padding\n" * 110_000)  # ~1.1 MB of comments
    with pytest.raises(SourceConfigError, match=r"big.yml is larger than 1,048,576 bytes.*LAKEHOUSE_YAML_MAX_BYTES"):
        load_declarations(path)
    monkeypatch.setenv("LAKEHOUSE_YAML_MAX_BYTES", str(2 * 1024 * 1024))
    assert load_declarations(path) == {}
    monkeypatch.setenv("LAKEHOUSE_YAML_MAX_BYTES", "1.5")
    with pytest.raises(ConfigError, match="LAKEHOUSE_YAML_MAX_BYTES must be a positive whole number"):
        load_declarations(path)


def test_a_device_or_folder_is_not_read(tmp_path):
    with pytest.raises(SourceConfigError, match="not a regular file"):
        read_yaml_file(tmp_path, what="the sources file", error=SourceConfigError)
    with pytest.raises(ConfigError, match="not a regular file"):
        read_yaml_file(Path("/dev/zero"))


def test_the_dag_file_refuses_an_alias_bomb_at_parse_time(tmp_path, monkeypatch):
    """The DAG processor imports dags/sources.py, which loads the declarations: the bomb is an import error there,
    raised at once, not a parse that eats the processor's memory."""
    path = tmp_path / "sources.yml"
    path.write_text(alias_bomb())
    monkeypatch.setenv("LAKEHOUSE_SOURCES_FILE", str(path))
    from lakehouse.source_dags import build_source_dags

    started = time.perf_counter()
    with pytest.raises(SourceConfigError, match="anchors and aliases are not allowed"):
        build_source_dags()
    assert time.perf_counter() - started < 1.0
