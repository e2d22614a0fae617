"""Shared by every silver job: the quarantine writer, its rate threshold and the staged day.

When too many rows were quarantined the day's silver must stay as it was while its quarantine is
replaced, so the bad rows can be inspected. The AppMetrica silver job (transforms/silver/job.py)
does so by committing only the quarantine's Delta tables. A declared source's silver job stages
each Parquet partition it writes (``lakehouse.fsutil.staged_dir``) and swaps them in only when the
whole day succeeded: :func:`staged_day` gives it that behaviour through
:attr:`StagedDay.discard_silver`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from lakehouse.fsutil import staged_dir
from lakehouse.settings import ConfigError
from transforms.silver.schemas import QUARANTINE_SCHEMA
from transforms.silver.writer import PartitionWriter, WriterLimits

DEFAULT_QUARANTINE_MAX_RATE = 0.01
MAX_RATE_ENV = "LAKEHOUSE_QUARANTINE_MAX_RATE"


def quarantine_max_rate() -> float:
    """The share of a resource's rows that may be quarantined before the day fails.

    Set by ``LAKEHOUSE_QUARANTINE_MAX_RATE`` (0..1, default 0.01 = 1 %).
    """
    raw = os.environ.get(MAX_RATE_ENV, str(DEFAULT_QUARANTINE_MAX_RATE))
    try:
        rate = float(raw)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"{MAX_RATE_ENV} must be a number between 0 and 1, got {raw!r}")
    return rate


class QuarantineWriter:
    """Rows of one resource that failed, written as ``QUARANTINE_SCHEMA`` Parquet into ``folder``."""

    def __init__(
        self, folder: Path, resource: str, day: dt.date, limits: WriterLimits, compression: str = "zstd"
    ) -> None:
        self.resource = resource
        self.day = day
        self.writer = PartitionWriter(folder, QUARANTINE_SCHEMA, limits, compression)

    def add(self, bronze_file: str, rows: list[int], reasons: list[str], details: list[str], raws: list[str]) -> None:
        """Quarantine ``rows`` (1-based record numbers in ``bronze_file``) with their reason, detail and raw text."""
        if not rows:
            return
        n = len(rows)
        self.writer.write(
            pa.table(
                {
                    "resource": pa.array([self.resource] * n),
                    "bronze_file": pa.array([bronze_file] * n),
                    "bronze_row": pa.array(rows, pa.int64()),
                    "reason": pa.array(reasons),
                    "detail": pa.array(details),
                    "raw": pa.array(raws),
                    "export_date": pa.array([self.day] * n, pa.date32()),
                }
            )
        )

    def close(self) -> int:
        """Flush and close; return the number of quarantined rows."""
        return int(self.writer.close()["rows"])


@dataclass
class StagedDay:
    """Staging folders of one day's partitions; set ``discard_silver`` to keep only the quarantine."""

    silver: dict[str, Path] = field(default_factory=dict)
    quarantine: dict[str, Path] = field(default_factory=dict)
    discard_silver: bool = False


class _DiscardSilver(Exception):
    """Internal: leave the staged silver partitions out of the swap."""


@contextlib.contextmanager
def staged_day(silver: Mapping[str, Path], quarantine: Mapping[str, Path]) -> Iterator[StagedDay]:
    """Stage the ``silver`` and ``quarantine`` partition folders (name -> final path) of one day.

    On a clean exit every staged folder replaces its target as a whole. With ``discard_silver``
    set, only the quarantine folders are swapped in and the silver targets stay as they were. On
    an exception nothing is replaced.
    """
    with contextlib.ExitStack() as quarantine_stack:
        day = StagedDay(quarantine={k: quarantine_stack.enter_context(staged_dir(p)) for k, p in quarantine.items()})
        try:
            with contextlib.ExitStack() as silver_stack:
                day.silver.update({k: silver_stack.enter_context(staged_dir(p)) for k, p in silver.items()})
                yield day
                if day.discard_silver:
                    raise _DiscardSilver
        except _DiscardSilver:
            pass
