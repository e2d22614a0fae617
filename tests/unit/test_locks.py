"""Runs of different dates serialise their shared sections through file locks."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from lakehouse.locks import LockTimeout, day_lock_name, exclusive
from lakehouse.settings import ConfigError, Layout


def _hold(root: str, seconds: float, ready) -> None:
    with exclusive("gold", Layout(Path(root))):
        ready.set()
        time.sleep(seconds)


def test_a_second_process_waits_for_the_holder(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(tmp_path), 1.5, ready))
    holder.start()
    try:
        assert ready.wait(30)
        started = time.monotonic()
        with exclusive("gold", Layout(tmp_path), timeout=30):
            waited = time.monotonic() - started
        assert waited > 0.5, "the lock was taken while another process held it"
        # flock belongs to the open file: a second descriptor, even in this process, must wait
        with (
            exclusive("other", Layout(tmp_path)),
            pytest.raises(LockTimeout, match="'other'"),
            exclusive("other", Layout(tmp_path), timeout=0.3),
        ):
            pass
    finally:
        holder.join(30)


def test_lock_names_are_checked():
    assert day_lock_name("2026-11-01") == "day_2026_11_01"
    with pytest.raises(ConfigError, match="lock name"), exclusive("../gold"):
        pass
