"""Named crash points for the kill -9 tests.

``failpoint(name, where)`` is a no-op unless the environment variable ``LAKEHOUSE_FAILPOINT`` names
it; then it kills the current process with SIGKILL on the spot: no ``finally`` block, no cleanup,
exactly what a ``kill -9`` or an OOM kill at that line would do. The value is ``name`` (the first
time that point is reached) or ``name@text`` (the first time it is reached with ``text`` in
``where``, e.g. ``swap@silver/tmp_event_properties``). Points: ``swap`` (fsutil.staged_dir, just
before a staged partition replaces the live one; ``where`` = the partition path), ``commit``
(lakehouse/delta.py, just before a lake table's Delta commit is written; ``where`` = ``<layer>/<table> <what>``,
e.g. ``silver/events_part export_date=2026-11-01``) and ``publish.upload`` (publish, after each gold object
is in place; ``where`` = its key) and ``lake_pointer``
(lakehouse/storage.py, a commit's files uploaded, its pointer not yet switched; ``where`` = the partition).
"""

from __future__ import annotations

import os
import signal
import sys

ENV = "LAKEHOUSE_FAILPOINT"


def failpoint(name: str, where: str = "") -> None:
    """SIGKILL this process if ``LAKEHOUSE_FAILPOINT`` is ``name`` or ``name@text`` with ``text`` in ``where``."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    wanted, _, needle = spec.partition("@")
    if wanted == name and needle in where:
        sys.stderr.write(f"failpoint {name} reached at {where or '-'}: SIGKILL\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
