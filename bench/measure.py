"""Run a command as a child process and measure it from the outside: wall time and peak RSS.

Peak RSS is sampled from the OS (psutil) every ``interval`` seconds over the whole process tree
(the child and every descendant, e.g. dbt or DuckDB helpers), summed per sample; the figure is
the largest sum seen. The child's stdout is returned (the paths print one JSON line there).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import psutil


@dataclass
class Measured:
    """One run: wall seconds, peak RSS of the process tree in bytes, and the JSON the child printed."""

    seconds: float
    peak_rss: int
    result: dict[str, Any]


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def run(
    cmd: list[str], *, env: dict[str, str] | None = None, interval: float = 0.05, cwd: str | None = None
) -> Measured:
    """Run ``cmd``; raise ``RuntimeError`` with its output if it fails."""
    started = time.perf_counter()
    child = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or dict(os.environ), cwd=cwd
    )
    proc = psutil.Process(child.pid)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc))
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = child.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {child.returncode}:\n{err[-4000:]}")
    return Measured(seconds, peak, _last_json_object(out))


def _last_json_object(out: str) -> dict:
    """The last line of ``out`` that is a JSON object (a child's result line), or {} when none is."""
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue  # e.g. a Python dict printed by a log line
            if isinstance(value, dict):
                return value
    return {}


def python_cmd(module: str, *args: str) -> list[str]:
    """``python -m module args...`` with this interpreter."""
    return [sys.executable, "-m", module, *args]
