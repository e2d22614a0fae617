"""Cross-process locks for runs of different dates that share state.

Several dates may be in flight at once (a backfill, parallel Airflow runs). Their bronze and silver
partitions are per date, but a run also re-exports its lookback days (which another run may be
writing), and gold (one DuckDB warehouse and one dbt target), the GX Data Docs site and the
publish prefix are shared. ``exclusive(name)`` serialises those sections with ``flock`` on a file
under ``$LAKEHOUSE_DATA_DIR/warehouse/locks/``: processes on one machine (LocalExecutor, the CLI's
backfill). Workers on several machines need a lock that spans them (an Airflow pool of one slot
for the gold tasks); docs/operations.md says so. The silver and quarantine Delta tables do not
depend on these locks: a day's commit is conditional, and of two writers of one day the second
fails with ``LakeCommitConflict`` (lakehouse/delta.py) and is retried. The day lock still lets a
run read a lookback day's bronze only after another run's export of it, and skip a rebuild the
other run already committed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator

from lakehouse.settings import ConfigError, Layout, check_name

log = logging.getLogger(__name__)

LOCK_TIMEOUT_ENV = "LAKEHOUSE_LOCK_TIMEOUT_SECONDS"
DEFAULT_LOCK_TIMEOUT = 6 * 3600.0
_POLL = 0.2


class LockTimeout(RuntimeError):
    """Another run held the lock for longer than the timeout."""


def lock_timeout() -> float:
    """Seconds to wait for a lock (``LAKEHOUSE_LOCK_TIMEOUT_SECONDS``, default 6 h)."""
    raw = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{LOCK_TIMEOUT_ENV} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise ConfigError(f"{LOCK_TIMEOUT_ENV} must be positive, got {raw!r}")
    return value


def day_lock_name(day: object) -> str:
    """The lock of one date's bronze and silver partitions."""
    return "day_" + str(day).replace("-", "_")


@contextlib.contextmanager
def exclusive(name: str, layout: Layout | None = None, timeout: float | None = None) -> Iterator[None]:
    """Hold the lock ``name`` ([a-z][a-z0-9_]*) for the ``with`` block, waiting while another run holds it."""
    check_name(name, what="lock name")
    layout = layout or Layout.from_env()
    folder = layout.root / "warehouse" / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    limit = lock_timeout() if timeout is None else timeout
    fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        started = time.monotonic()
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if waited >= limit:
                    raise LockTimeout(f"lock {name!r} still held by another run after {waited:.0f} s") from None
                if not announced:
                    log.info("waiting for lock %r (another run of the pipeline holds it)", name)
                    announced = True
                time.sleep(_POLL)
        if announced:
            log.info("got lock %r after %.1f s", name, time.monotonic() - started)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
