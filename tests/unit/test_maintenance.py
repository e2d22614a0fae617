"""Maintenance of the lake's Delta tables on local disk (lakehouse/maintenance.py, `lakehouse maintain`).

Tables are written with lakehouse/delta.py. Time passing is made the way Delta itself would see it: a commit's
``remove`` actions carry their deletion time, which is set back days; an orphan file's modification time is set
back with ``os.utime``; log entries are aged the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.cli import main
from lakehouse.delta import ConfigError, delta_schema, locate, open_table, read_table, replace_partition
from lakehouse.maintenance import (
    DEFAULT_RETENTION_HOURS,
    MIN_RETENTION_HOURS,
    RETENTION_ENV,
    lake_tables,
    maintain,
    retention_hours,
)
from lakehouse.settings import Layout

D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
SCHEMA = pa.schema([("appmetrica_device_id", pa.uint64()), ("n", pa.int64()), ("date", pa.date32())])
DAY_MS = 86_400_000


def _rows(day: dt.date, start: int, count: int) -> pa.Table:
    ids = [2**63 + start + i for i in range(count)]
    return pa.table({"appmetrica_device_id": ids, "n": [start + i for i in range(count)], "date": [day] * count},
                    SCHEMA)  # fmt: skip


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    monkeypatch.delenv("LAKEHOUSE_STORAGE_URL", raising=False)
    monkeypatch.delenv(RETENTION_ENV, raising=False)
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path))
    return Layout(tmp_path)


def _data_files(loc) -> set[str]:
    root = Path(loc.uri)
    return {p.relative_to(root).as_posix() for p in root.rglob("*.parquet") if "_delta_log" not in p.parts}


def _everything(loc) -> dict[str, int]:
    """Every file of the table folder (log included) with its modification time."""
    root = Path(loc.uri)
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def _live(loc) -> set[str]:
    return {os.path.relpath(uri, loc.uri) for uri in open_table(loc).file_uris()}


def _sorted_rows(loc, **kwargs) -> list[tuple]:
    rows = read_table(loc, schema=SCHEMA, **kwargs).to_pylist()
    return sorted((r["date"], r["appmetrica_device_id"], r["n"]) for r in rows)


def _age_removes(loc, version: int, days: float) -> list[str]:
    """Set the deletion time of every file ``version`` removed ``days`` back; the paths it removed."""
    entry = Path(loc.uri) / "_delta_log" / f"{version:020d}.json"
    lines, removed = [], []
    for line in entry.read_text().splitlines():
        action = json.loads(line)
        if "remove" in action:
            action["remove"]["deletionTimestamp"] -= int(days * DAY_MS)
            removed.append(action["remove"]["path"])
        lines.append(json.dumps(action))
    entry.write_text("\n".join(lines) + "\n")
    return removed


def _orphan(loc, name: str, *, days_old: float) -> str:
    """A Parquet file in the table's folder that no commit names (as a failed commit leaves one)."""
    path = Path(loc.uri) / f"date={D1.isoformat()}" / name
    pq.write_table(_rows(D1, 900, 2), path)
    then = time.time() - days_old * 86_400
    os.utime(path, (then, then))
    return path.relative_to(Path(loc.uri)).as_posix()


@pytest.fixture
def history(layout: Layout):
    """silver/events_part after three commits: v0 wrote D1, v1 wrote D2, v2 replaced D1 ten days ago, v3 replaced
    D2 just now; plus two orphans, one ten days old and one a minute old (a writer's file not committed yet)."""
    loc = locate("silver/events_part", layout)
    replace_partition(loc, _rows(D1, 0, 3), column="date", value=D1)
    replace_partition(loc, _rows(D2, 10, 3), column="date", value=D2)
    replace_partition(loc, _rows(D1, 20, 2), column="date", value=D1)
    replace_partition(loc, _rows(D2, 30, 2), column="date", value=D2)
    expired = _age_removes(loc, 2, days=10)  # v0's D1 file left the table ten days ago
    recent = _age_removes(loc, 3, days=0)  # v1's D2 file left it just now
    old_orphan = _orphan(loc, "part-old-orphan.parquet", days_old=10)
    fresh_orphan = _orphan(loc, "part-fresh-orphan.parquet", days_old=1 / 1440)
    return {"loc": loc, "expired": expired, "recent": recent, "old_orphan": old_orphan,
            "fresh_orphan": fresh_orphan}  # fmt: skip


def test_vacuum_removes_only_expired_files_and_old_orphans(history) -> None:
    loc = history["loc"]
    live = _live(loc)
    [summary] = maintain()
    gone = _data_files(loc)
    assert summary["vacuumed"]["files"] == sorted([*history["expired"], history["old_orphan"]])
    assert summary["vacuumed"]["bytes"] > 0
    assert not set(summary["vacuumed"]["files"]) & gone
    # Every file of the current version, the file removed just now and the writer's fresh file stay.
    assert live | set(history["recent"]) | {history["fresh_orphan"]} <= gone
    current = _rows(D1, 20, 2).to_pylist() + _rows(D2, 30, 2).to_pylist()
    assert _sorted_rows(loc) == sorted((r["date"], r["appmetrica_device_id"], r["n"]) for r in current)
    # A reader of version 2 (current until just now) still has every file; version 0's D1 expired ten days ago.
    assert len(_sorted_rows(loc, as_of=2)) == 2 + 3
    with pytest.raises(Exception, match=r"(?i)not found|no such file"):
        read_table(loc, as_of=0)


def test_dry_run_lists_what_would_go_and_changes_nothing(history) -> None:
    loc = history["loc"]
    before, version = _everything(loc), open_table(loc).version()
    [summary] = maintain(dry_run=True)
    assert summary["dry_run"] and summary["vacuumed"]["files"] == sorted([*history["expired"], history["old_orphan"]])
    assert summary["checkpoint_version"] is None and summary["log_entries_removed"] == 0
    assert _everything(loc) == before and open_table(loc).version() == version == summary["version_after"]


def test_compaction_merges_small_files_per_partition_and_keeps_the_rows(layout: Layout) -> None:
    from deltalake import write_deltalake

    loc = locate("gold/fct_device_daily", layout)
    replace_partition(loc, _rows(D1, 0, 2), column="date", value=D1)
    replace_partition(loc, _rows(D2, 100, 2), column="date", value=D2)
    for i in range(4):  # appends: small files pile up in D1 only
        write_deltalake(loc.uri, _rows(D1, 10 + i * 3, 3).cast(delta_schema(SCHEMA)), mode="append")
    rows = _sorted_rows(loc)
    assert len(_live(loc)) == 6
    [dry] = maintain(dry_run=True)
    assert dry["compacted"]["would_compact"] == {"date=2026-11-01": 5} and len(_live(loc)) == 6
    [summary] = maintain()
    assert summary["compacted"] | {"skipped": []} == {"partitions": 1, "files_removed": 5, "files_added": 1,
                                                      "bytes_removed": dry["compacted"]["bytes_removed"],
                                                      "skipped": []}  # fmt: skip
    assert (summary["files_before"], summary["files_after"]) == (6, 2) and len(_live(loc)) == 2
    assert _sorted_rows(loc) == rows
    assert open_table(loc).history(1)[0]["operation"] == "OPTIMIZE"
    # The compacted-away files stay until the retention has passed: version 5 still reads whole.
    assert _sorted_rows(loc, as_of=5) == rows


def test_a_checkpoint_is_written_at_the_latest_version_and_a_second_run_changes_nothing(layout: Layout) -> None:
    loc = locate("quarantine/events", layout)
    for i in range(3):
        replace_partition(loc, _rows(D1, i, 1), column="date", value=D1)
    log_dir = Path(loc.uri) / "_delta_log"
    assert not list(log_dir.glob("*.checkpoint.parquet"))
    [first] = maintain()
    assert first["checkpoint_version"] == open_table(loc).version() == 2
    assert (log_dir / "00000000000000000002.checkpoint.parquet").is_file()
    assert json.loads((log_dir / "_last_checkpoint").read_text())["version"] == 2
    files = _everything(loc)
    [second] = maintain()
    assert second["version_before"] == second["version_after"] == 2 and second["compacted"]["files_removed"] == 0
    assert second["vacuumed"]["files"] == [] and _everything(loc) == files


def test_expired_log_entries_before_the_checkpoint_are_cleaned_up(layout: Layout) -> None:
    loc = locate("silver/mobile_devices", layout)
    for i in range(4):
        replace_partition(loc, _rows(D1, i, 1), column="date", value=D1)
    log_dir = Path(loc.uri) / "_delta_log"
    then = time.time() - 40 * 86_400  # older than Delta's default delta.logRetentionDuration of 30 days
    for entry in log_dir.glob("*.json"):
        os.utime(entry, (then, then))
    [summary] = maintain()
    assert summary["log_entries_removed"] == 3  # versions 0-2; 3 is the checkpoint's own
    assert sorted(p.name for p in log_dir.glob("*.json")) == ["00000000000000000003.json"]
    assert _sorted_rows(loc) == [(D1, 2**63 + 3, 3)]
    with pytest.raises(ConfigError, match="no version as of 1"):
        read_table(loc, as_of=1)


def test_every_delta_table_of_the_lake_is_found_and_nothing_else(layout: Layout) -> None:
    for rel in ("silver/events_part", "silver/source_vacancies_items", "quarantine/events", "gold/dim_devices"):
        replace_partition(locate(rel, layout), _rows(D1, 0, 1), column="date", value=D1)
    plain = layout.root / "silver" / "crashes" / "date=2026-11-01"  # Parquet without a Delta log
    plain.mkdir(parents=True)
    pq.write_table(_rows(D1, 0, 1), plain / "part-0.parquet")
    (layout.root / "bronze" / "appmetrica" / "events" / "_delta_log").mkdir(parents=True)
    (layout.root / "gold" / "Not-A-Name" / "_delta_log").mkdir(parents=True)
    found = ["silver/events_part", "silver/source_vacancies_items", "quarantine/events", "gold/dim_devices"]
    assert lake_tables(layout) == found
    assert [s["table"] for s in maintain(dry_run=True)] == found
    assert [s["table"] for s in maintain(["quarantine/events"], dry_run=True)] == ["quarantine/events"]
    with pytest.raises(ConfigError, match="silver/crashes is not a Delta table: no _delta_log"):
        maintain(["silver/crashes"])
    assert maintain() and lake_tables(Layout(layout.root / "empty")) == []


def test_a_retention_below_what_readers_need_is_refused_naming_the_setting(history, monkeypatch, capsys) -> None:
    loc = history["loc"]
    before = _everything(loc)
    assert retention_hours() == DEFAULT_RETENTION_HOURS == 168 and retention_hours(24) == MIN_RETENTION_HOURS
    for bad, message in (("12", "LAKEHOUSE_DELTA_RETENTION_HOURS=12 is too short"), ("0", "=0 is too short"),
                         ("-5", "=-5 is too short"), ("1.5", "must be a whole number of hours, got '1.5'"),
                         ("week", "must be a whole number")):  # fmt: skip
        monkeypatch.setenv(RETENTION_ENV, bad)
        with pytest.raises(ConfigError, match=message):
            maintain()
        assert main(["maintain"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("lakehouse maintain: LAKEHOUSE_DELTA_RETENTION_HOURS") and message in err
    monkeypatch.delenv(RETENTION_ENV)
    assert main(["maintain", "--retention-hours", "23"]) == 2
    assert "--retention-hours=23 is too short" in capsys.readouterr().err
    assert _everything(loc) == before, "a refused setting touched the table"


def test_the_command_prints_one_summary_per_table(history, capsys, caplog) -> None:
    caplog.set_level(logging.INFO, logger="lakehouse.maintenance")
    assert main(["maintain", "--dry-run", "--table", "silver/events_part"]) == 0
    out = capsys.readouterr()
    [summary] = json.loads(out.out)
    assert summary["table"] == "silver/events_part" and history["old_orphan"] in summary["vacuumed"]["files"]
    assert "silver/events_part: would compact 0 small file(s) in 0 partition(s); would vacuum 2 file(s)" in caplog.text
    assert main(["maintain", "--retention-hours", "300", "--table", "silver/events_part"]) == 0
    [summary] = json.loads(capsys.readouterr().out)
    # With 300 hours' retention the files that left ten days ago are still kept.
    assert summary["retention_hours"] == 300 and summary["vacuumed"]["files"] == []
