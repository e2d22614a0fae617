"""The silver helpers every job shares: quarantine threshold, quarantine writer, staged day."""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
import pytest

from lakehouse.settings import ConfigError
from transforms.silver.quarantine import QuarantineWriter, quarantine_max_rate, staged_day
from transforms.silver.schemas import QUARANTINE_SCHEMA
from transforms.silver.writer import WriterLimits

DAY = dt.date(2026, 11, 1)


def test_max_rate_default_and_bad_values(monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_QUARANTINE_MAX_RATE", raising=False)
    assert quarantine_max_rate() == 0.01
    monkeypatch.setenv("LAKEHOUSE_QUARANTINE_MAX_RATE", "0.5")
    assert quarantine_max_rate() == 0.5
    for bad in ("2", "-0.1", "lots"):
        monkeypatch.setenv("LAKEHOUSE_QUARANTINE_MAX_RATE", bad)
        with pytest.raises(ConfigError, match="LAKEHOUSE_QUARANTINE_MAX_RATE"):
            quarantine_max_rate()


def test_quarantine_writer_writes_the_shared_schema(tmp_path):
    q = QuarantineWriter(tmp_path, "things", DAY, WriterLimits())
    q.add("bronze/x/page-00001.json", [3, 5], ["invalid_integer", "missing_required_field"], ["a=x", "b=<empty>"],
          ["{}", "{}"])  # fmt: skip
    assert q.close() == 2
    table = pq.read_table(tmp_path / "part-00000.parquet")
    assert table.schema.equals(QUARANTINE_SCHEMA)
    assert table.column("bronze_row").to_pylist() == [3, 5]
    assert set(table.column("resource").to_pylist()) == {"things"}


def _write(folder, text):
    (folder / "f.txt").write_text(text)


def test_staged_day_swaps_everything_on_success(tmp_path):
    silver, quarantine = tmp_path / "silver/t/date=1", tmp_path / "quarantine/t/date=1"
    with staged_day({"t": silver}, {"t": quarantine}) as day:
        _write(day.silver["t"], "new silver")
        _write(day.quarantine["t"], "new quarantine")
    assert (silver / "f.txt").read_text() == "new silver"
    assert (quarantine / "f.txt").read_text() == "new quarantine"


def test_staged_day_discard_silver_keeps_the_old_silver_but_replaces_quarantine(tmp_path):
    silver, quarantine = tmp_path / "silver/t/date=1", tmp_path / "quarantine/t/date=1"
    silver.mkdir(parents=True)
    _write(silver, "old silver")
    with staged_day({"t": silver}, {"t": quarantine}) as day:
        _write(day.silver["t"], "new silver")
        _write(day.quarantine["t"], "new quarantine")
        day.discard_silver = True
    assert (silver / "f.txt").read_text() == "old silver"
    assert (quarantine / "f.txt").read_text() == "new quarantine"
    assert sorted(p.name for p in silver.parent.iterdir()) == ["date=1"]  # no staging folder left


def test_staged_day_replaces_nothing_on_error(tmp_path):
    silver, quarantine = tmp_path / "silver/t/date=1", tmp_path / "quarantine/t/date=1"
    with pytest.raises(RuntimeError, match="boom"), staged_day({"t": silver}, {"t": quarantine}) as day:
        _write(day.silver["t"], "new")
        raise RuntimeError("boom")
    assert not silver.exists() and not quarantine.exists()
    assert list(silver.parent.iterdir()) == [] and list(quarantine.parent.iterdir()) == []
