"""The generated gold lake the feature-store tests share (constants and its handle); conftest.py builds it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

FIT_START = dt.date(2026, 10, 3)
FIT_END = dt.date(2026, 10, 20)
# active only after the training window, with an OS and a country no device had in it
LATE_DEVICE = 2**64 - 42
LATE_OS, LATE_COUNTRY = "harmonyos", "ZZ"
# moves from RU to KZ and from app 1.0.0 to 2.0.0 on MOVE_DAY; sends its device_type from then on only
MOVER_DEVICE = 2**64 - 77
MOVER_FIRST_DAY, MOVE_DAY = dt.date(2026, 10, 6), dt.date(2026, 10, 13)


@dataclass
class FeatureLake:
    """Gold built from generated silver with the transformers fitted on FIT_START .. FIT_END."""

    root: Path
    summary: dict

    @property
    def gold(self) -> Path:
        return self.root / "gold"
