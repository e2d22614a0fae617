"""Where a ``lakehouse`` command writes: its result on stdout, everything else (logs, progress) on stderr.

Libraries log to whatever ``sys.stdout`` is when their handler or logger is made (Airflow's
structlog loggers, for one, print ``[info ] ...`` lines there), which used to put log lines ahead of
``--json`` output. While a command runs under :func:`results_apart`, ``sys.stdout`` is stderr and
only :func:`result` / :func:`result_json` reach the real stdout, so the output stays parseable.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import TextIO

_results: TextIO | None = None


def result(text: str) -> None:
    """Write ``text`` (one line or more) as the command's result, on stdout."""
    print(text, file=_results or sys.stdout)


def result_json(obj: object, *, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON as the command's result, on stdout."""
    result(json.dumps(obj, indent=indent, ensure_ascii=False, default=str))


@contextlib.contextmanager
def results_apart() -> Iterator[None]:
    """Send everything written to ``sys.stdout`` to stderr, except :func:`result` output."""
    global _results
    previous, _results = _results, sys.stdout
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout, _results = _results, previous
