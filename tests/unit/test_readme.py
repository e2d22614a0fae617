"""The README and docs/ state facts the code can check: keep them in step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from transforms.silver.quarantine_reasons import QUARANTINE_REASONS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DOCS = {path.name: path.read_text() for path in sorted((ROOT / "docs").glob("*.md"))}
PAGES = {"README.md": README, **{f"docs/{name}": text for name, text in DOCS.items()}}
ALL_TEXT = "\n".join(PAGES.values())


def test_every_quarantine_reason_is_in_the_catalogue_table():
    section = DOCS["data-quality.md"].split("**1. Quarantine (silver).**", 1)[1].split("**2.", 1)[0]
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


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_test_the_docs_name_exists(page):
    text = PAGES[page]
    defined = _defined_tests()
    every = {name for names in defined.values() for name in names}
    for ref in re.findall(r"`((?:[a-z0-9_]+/)*test_[a-z0-9_]+\.py)(?:::(test_\w+\*?))?`", text):
        path, name = ref
        path = path.removeprefix("tests/")
        assert path in defined, f"{page} names {path}, which does not exist"
        if name:
            assert name.rstrip("*") in {n[: len(name.rstrip("*"))] for n in defined[path]}, f"{path}::{name}"
    for name in re.findall(r"`(test_\w+\*?)`", text):
        stem = name.rstrip("*")
        assert any(n == stem or (name.endswith("*") and n.startswith(stem)) for n in every), f"{page}: no test {name}"


def test_the_readme_is_a_short_door_to_every_docs_page():
    assert len(README.splitlines()) <= 250
    for heading in ("## Quick start", "## Documentation"):
        assert heading in README
    linked = set(re.findall(r"\]\(docs/([a-z0-9-]+\.md)\)", README))
    assert linked == set(DOCS), f"pages not in the README's map: {set(DOCS) - linked}; missing: {linked - set(DOCS)}"


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_relative_link_resolves(page):
    base = (ROOT / page).parent
    for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", PAGES[page]):
        assert (base / target).exists(), f"{page} links {target}, which does not exist"


def test_nothing_refers_to_files_outside_the_repo():
    tracked = [p for p in ROOT.rglob("*") if p.is_file() and p.suffix in {".py", ".md", ".yml", ".yaml", ".sql"}]
    skip = {".venv", ".airflow", "data", "node_modules", ".git", "target"}
    for path in tracked:
        if skip & set(path.relative_to(ROOT).parts) or path == Path(__file__):
            continue
        text = path.read_text(errors="replace")
        for needle in ("CONTRACTS.md", "shared/APPMETRICA", "../shared", "ARCHITECTURE.md"):
            assert needle not in text, f"{path.relative_to(ROOT)} cites {needle}, a file outside the repo"


def test_the_layout_names_every_package():
    layout = DOCS["architecture.md"].split("## Layout", 1)[1]
    for init in sorted(ROOT.glob("*/**/__init__.py")):
        package = init.parent.relative_to(ROOT)
        if package.parts[0] in {"tests", ".venv"} or ".venv" in package.parts:
            continue
        assert f"{package.name}/" in layout, f"the Layout in docs/architecture.md leaves out {package}/"
