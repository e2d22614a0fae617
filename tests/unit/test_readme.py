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
