"""The README states facts the code can check: keep the two in step."""

from __future__ import annotations

import re
from pathlib import Path

from transforms.silver.quarantine_reasons import QUARANTINE_REASONS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_quarantine_reason_is_in_the_catalogue_table():
    section = README.split("## Data quality", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z0-9_]+)`(?:, `([a-z0-9_]+)`)? \|", section, flags=re.M))
    names = {n for pair in listed for n in pair if n}
    assert names == set(QUARANTINE_REASONS)


def _defined_tests() -> dict[str, set[str]]:
    tests_dir = Path(__file__).resolve().parents[1]
    found: dict[str, set[str]] = {}
    for path in tests_dir.rglob("test_*.py"):
        names = set(re.findall(r"^def (test_\w+)", path.read_text(), flags=re.M))
        found[path.relative_to(tests_dir).as_posix()] = names
    return found


def test_every_test_the_readme_names_exists():
    defined = _defined_tests()
    every = {name for names in defined.values() for name in names}
    for ref in re.findall(r"`((?:[a-z0-9_]+/)*test_[a-z0-9_]+\.py)(?:::(test_\w+\*?))?`", README):
        path, name = ref
        path = path.removeprefix("tests/")
        assert path in defined, f"README names {path}, which does not exist"
        if name:
            assert name.rstrip("*") in {n[: len(name.rstrip("*"))] for n in defined[path]}, f"{path}::{name}"
    for name in re.findall(r"`(test_\w+\*?)`", README):
        stem = name.rstrip("*")
        assert any(n == stem or (name.endswith("*") and n.startswith(stem)) for n in every), f"no test {name}"
