"""lakehouse.fsutil: atomic folder swaps (renameat2 exchange and the two-rename fallback), leftovers, kills."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from lakehouse import fsutil
from lakehouse.failpoints import failpoint
from lakehouse.fsutil import atomic_file, exchange_paths, remove_leftovers, staged_dir, write_json

EXCHANGE_WORKS = fsutil._renameat2 is not None
needs_exchange = pytest.mark.skipif(not EXCHANGE_WORKS, reason="this C library has no renameat2")


def _fill(folder: Path, version: str, files: int = 3) -> None:
    for i in range(files):
        (folder / f"part-{i}.txt").write_text(version * 1000)


def _temps(target: Path) -> list[str]:
    """Temporary entries beside ``target`` and beside its parent (where folders are staged)."""
    found = [*target.parent.glob(".tmp-*"), *target.parent.parent.glob(".tmp-*")]
    return sorted(p.relative_to(target.parent.parent).as_posix() for p in found)


def _stale_name(target: Path, old: bool = False, folder: bool = True) -> Path:
    """What a killed writer of ``target`` leaves: a staged folder one level up, a temp file beside it."""
    kind = "old-" if old else ""
    if folder:
        return target.parent.parent / f".tmp-{kind}{target.parent.name}@{target.name}.{uuid.uuid4().hex}"
    return target.with_name(f".tmp-{kind}{target.name}.{uuid.uuid4().hex}")


def _partition(tmp_path: Path, day: str = "2026-11-01") -> Path:
    return tmp_path / "silver" / "events_part" / f"date={day}"


@needs_exchange
def test_exchange_paths_swaps_two_folders(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "from_a").touch()
    (b / "from_b").touch()
    assert exchange_paths(a, b) is True
    assert [p.name for p in a.iterdir()] == ["from_b"]
    assert [p.name for p in b.iterdir()] == ["from_a"]


@needs_exchange
def test_exchange_paths_with_a_missing_side_raises(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    with pytest.raises(FileNotFoundError):
        exchange_paths(tmp_path / "a", tmp_path / "missing")


@needs_exchange
def test_staged_dir_replaces_through_one_exchange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = _partition(tmp_path)
    with staged_dir(target) as stage:
        _fill(stage, "a", files=4)
    calls: list[bool] = []
    real = fsutil.exchange_paths

    def spy(a: Path, b: Path) -> bool:
        calls.append(real(a, b))
        return calls[-1]

    monkeypatch.setattr(fsutil, "exchange_paths", spy)
    with staged_dir(target) as stage:
        _fill(stage, "b", files=2)
    assert calls == [True]
    assert sorted(p.name for p in target.iterdir()) == ["part-0.txt", "part-1.txt"]
    assert all(p.read_text() == "b" * 1000 for p in target.iterdir())
    assert _temps(target) == [], "the previous folder and the stage are gone"


@needs_exchange
def test_readers_never_see_the_folder_missing_or_mixed(tmp_path: Path) -> None:
    """While one thread replaces the folder over and over, another opens it and reads every file through
    that handle: with the exchange the folder always exists and always holds one version only. (A reader
    still inside the previous folder when it is removed after the swap finds its files gone: it retries.)"""
    target = _partition(tmp_path)
    with staged_dir(target) as stage:
        _fill(stage, "0")
    stop = threading.Event()
    seen = {"reads": 0, "missing": 0, "mixed": 0, "removed_under_reader": 0}
    errors: list[BaseException] = []

    def read_once() -> None:
        try:
            fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            seen["missing"] += 1
            return
        try:
            versions = set()
            for name in os.listdir(fd):
                part = os.open(name, os.O_RDONLY, dir_fd=fd)
                with os.fdopen(part, "rb") as fh:
                    versions.add(fh.read())
            if not versions:  # the previous folder, emptied by its removal after the swap
                seen["removed_under_reader"] += 1
                return
            seen["mixed"] += len(versions) > 1
            seen["reads"] += 1
        except FileNotFoundError:
            seen["removed_under_reader"] += 1
        finally:
            os.close(fd)

    def reader() -> None:
        try:
            while not stop.is_set():
                read_once()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, 150):
            with staged_dir(target) as stage:
                _fill(stage, str(i % 10))
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert seen["reads"] > 0
    assert seen["missing"] == 0 and seen["mixed"] == 0, seen
    assert _temps(target) == []


def test_a_glob_over_the_table_never_matches_a_stage(tmp_path: Path) -> None:
    """DuckDB's ``*`` matches names starting with a dot, so stages live beside the table folder, not in it."""
    import duckdb

    target = _partition(tmp_path)
    glob = f"{target.parent}/*/*.parquet"
    with staged_dir(target) as stage:
        duckdb.sql(f"copy (select 1 as v) to '{stage / 'part-00000.parquet'}' (format parquet)")
    with staged_dir(target) as stage:
        assert stage.parent == target.parent.parent
        duckdb.sql(f"copy (select 2 as v) to '{stage / 'part-00000.parquet'}' (format parquet)")
        assert duckdb.execute("select v from read_parquet(?)", [glob]).fetchall() == [(1,)]
    assert duckdb.execute("select v from read_parquet(?)", [glob]).fetchall() == [(2,)]


def _fake_renameat2(err: int):
    def fake(*args: object) -> int:
        ctypes.set_errno(err)
        return -1

    return fake


@pytest.mark.parametrize("how", ["no renameat2 in libc", "EINVAL", "ENOSYS"])
def test_fallback_swaps_with_two_renames_and_logs_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    fake = None if how.startswith("no ") else _fake_renameat2(getattr(errno, how))
    monkeypatch.setattr(fsutil, "_renameat2", fake)
    monkeypatch.setattr(fsutil, "_fallback_logged", False)
    caplog.set_level(logging.WARNING, logger="lakehouse.fsutil")
    target = _partition(tmp_path)
    for version in "abc":
        with staged_dir(target) as stage:
            _fill(stage, version, files=2 if version == "c" else 3)
    assert sorted(p.name for p in target.iterdir()) == ["part-0.txt", "part-1.txt"]
    assert all(p.read_text() == "c" * 1000 for p in target.iterdir())
    assert _temps(target) == []
    warnings = [r.getMessage() for r in caplog.records if "RENAME_EXCHANGE" in r.getMessage()]
    assert len(warnings) == 1, warnings


def test_other_exchange_errors_fail_and_keep_the_old_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = _partition(tmp_path)
    with staged_dir(target) as stage:
        _fill(stage, "a")
    monkeypatch.setattr(fsutil, "_renameat2", _fake_renameat2(errno.EIO))
    with pytest.raises(OSError) as excinfo, staged_dir(target) as stage:
        _fill(stage, "b")
    assert excinfo.value.errno == errno.EIO
    assert all(p.read_text() == "a" * 1000 for p in target.iterdir())
    assert _temps(target) == []


def test_a_failure_inside_leaves_the_old_folder_and_no_stage(tmp_path: Path) -> None:
    target = _partition(tmp_path)
    with staged_dir(target) as stage:
        _fill(stage, "a")
    with pytest.raises(RuntimeError), staged_dir(target) as stage:
        _fill(stage, "b")
        raise RuntimeError("boom")
    assert all(p.read_text() == "a" * 1000 for p in target.iterdir())
    assert _temps(target) == []


def _hold_lock(path: Path) -> subprocess.Popen[str]:
    """A live process holding the writer's lock on ``path`` (as a writer in another process would)."""
    code = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_abandoned_stages_of_the_same_target_are_removed_and_nothing_else(tmp_path: Path) -> None:
    target = _partition(tmp_path)
    target.parent.mkdir(parents=True)
    stale, stale_old = _stale_name(target), _stale_name(target, old=True)
    for folder in (stale, stale_old):
        folder.mkdir()
        _fill(folder, "x")
    stale_file = _stale_name(target, folder=False)
    stale_file.write_bytes(b"half")
    other_date = _stale_name(target.with_name("date=2026-11-02"))  # another date's stage, in flight
    other_table = _stale_name(target.parent.with_name("tmp_event_properties") / target.name)
    longer = target.parent.parent / f".tmp-events_part@{target.name}0.{uuid.uuid4().hex}"  # prefix-sharing
    not_ours = target.parent.parent / f".tmp-events_part@{target.name}.notahexsuffix"
    for folder in (other_date, other_table, longer, not_ours):
        folder.mkdir()
    live = _stale_name(target)  # the same target, held by a live writer
    live.mkdir()
    holder = _hold_lock(live)
    try:
        with staged_dir(target) as stage:
            _fill(stage, "new")
        assert _temps(target) == sorted(p.name for p in (other_date, other_table, longer, not_ours, live))
    finally:
        holder.kill()
        holder.wait()
    # The holder died (as a killed writer does): its stage is abandoned now and goes on the next write.
    assert remove_leftovers(target) == [live]
    assert _temps(target) == sorted(p.name for p in (other_date, other_table, longer, not_ours))
    assert all(p.read_text() == "new" * 1000 for p in target.iterdir())


def test_atomic_file_removes_its_abandoned_temps_only(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "summary.json"
    path.parent.mkdir()
    stale = _stale_name(path, folder=False)
    stale.write_bytes(b'{"half":')
    other = _stale_name(path.with_name("drift.json"), folder=False)
    other.write_bytes(b"{")
    live = _stale_name(path, folder=False)
    live.write_bytes(b"")
    holder = _hold_lock(live)
    try:
        write_json(path, {"ok": True})
        assert _temps(path) == sorted(f"reports/{p.name}" for p in (other, live))
    finally:
        holder.kill()
        holder.wait()
    with atomic_file(path) as fh:
        fh.write(b"{}\n")
    assert path.read_bytes() == b"{}\n"
    assert _temps(path) == [f"reports/{other.name}"]


_WRITER = """
import sys
from pathlib import Path
from lakehouse.fsutil import staged_dir
with staged_dir(Path(sys.argv[1])) as stage:
    (stage / "part-0.txt").write_text("new")
"""


def test_kill_at_the_swap_keeps_the_old_folder_and_the_next_write_cleans_up(tmp_path: Path) -> None:
    target = _partition(tmp_path)
    with staged_dir(target) as stage:
        (stage / "part-0.txt").write_text("old")
    env = dict(os.environ, LAKEHOUSE_FAILPOINT=f"swap@{target.name}")
    proc = subprocess.run([sys.executable, "-c", _WRITER, str(target)], env=env, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "failpoint swap reached" in proc.stderr
    assert (target / "part-0.txt").read_text() == "old"
    (leftover,) = _temps(target)
    assert leftover.startswith(".tmp-events_part@date=2026-11-01.")
    assert (target.parent.parent / leftover / "part-0.txt").read_text() == "new", "the killed run's stage"

    other = dict(env, LAKEHOUSE_FAILPOINT="swap@date=2026-11-02")  # a point that is not reached: no kill
    proc = subprocess.run([sys.executable, "-c", _WRITER, str(target)], env=other, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (target / "part-0.txt").read_text() == "new"
    assert _temps(target) == []


def test_failpoint_is_a_no_op_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKEHOUSE_FAILPOINT", raising=False)
    failpoint("swap", "x")
    monkeypatch.setenv("LAKEHOUSE_FAILPOINT", "publish.upload")
    failpoint("swap", "x")
    monkeypatch.setenv("LAKEHOUSE_FAILPOINT", "swap@silver")
    failpoint("swap", "bronze/x")


def test_atomic_file_handle_is_named_after_its_temp_file(tmp_path: Path) -> None:
    """The bronze writer re-reads the temp file by ``fh.name`` (to count rows) before it is renamed."""
    path = tmp_path / "events.part-00000-of-00001.csv.gz"
    with atomic_file(path) as fh:
        fh.write(b"abc")
        fh.flush()
        name = Path(fh.name)
        assert name.parent == tmp_path and name.name.startswith(f".tmp-{path.name}.")
        assert name.read_bytes() == b"abc" and not path.exists()
    assert path.read_bytes() == b"abc" and not name.exists()
