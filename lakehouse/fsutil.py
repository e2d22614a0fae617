"""Write-then-rename helpers: readers see the old file or folder or the new one, never half of one.

A file is written as ``.tmp-<name>.<32 hex>`` beside it (a name no ``*.parquet`` glob matches). A
folder (a date partition) is staged one level up, beside the folder that holds it:
``silver/events_part/date=D`` is built in ``silver/.tmp-events_part@date=D.<32 hex>``, so globs over
the table (``silver/events_part/*/*.parquet``, ``gold/<mart>/**/*.parquet``; DuckDB's ``*`` also
matches names starting with a dot) never see a staging folder, nor the previous folder while it is
removed after the swap (``.tmp-old-...`` is the fallback's name for that one). The writer
holds an exclusive ``flock`` on its temporary entry for as long as it works on it, so when a
process is killed (``kill -9``, OOM) the kernel drops the lock and the entry can be recognised as
abandoned: the next write of the same target removes it, while an entry a live process still
holds (the same target written concurrently) is left alone. Entries of other targets, e.g. the
partition of another date being written in parallel, are never touched.

A folder replaces its predecessor in one step with Linux ``renameat2(RENAME_EXCHANGE)`` (called
through glibc with ctypes): at every instant the target path names either the old folder or the
new one. Where the kernel, the file system or the C library lacks it, the old folder is renamed
aside and the new one renamed in (two steps: a crash between them leaves no target until the
next write); that fallback is logged once per process.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from lakehouse.failpoints import failpoint

log = logging.getLogger(__name__)

TMP_PREFIX = ".tmp-"
OLD_PREFIX = f"{TMP_PREFIX}old-"

_AT_FDCWD = -100
_RENAME_EXCHANGE = 1 << 1
# errno values that mean "this kernel / file system / sandbox cannot exchange": fall back.
_NO_EXCHANGE = frozenset({errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM})
_CLAIM_ATTEMPTS = 8


def _load_renameat2() -> Callable[..., int] | None:
    """glibc's ``renameat2`` (2.28+), or None when this C library has no such function."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_renameat2 = _load_renameat2()
_fallback_logged = False


def exchange_paths(a: Path, b: Path) -> bool:
    """Atomically swap the entries at ``a`` and ``b`` (both must exist); False when unsupported here.

    Raises OSError for any other failure (e.g. one of them does not exist).
    """
    fn = _renameat2
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in _NO_EXCHANGE:
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def fsync_path(path: Path) -> None:
    """fsync a file or folder by path (a folder: so a rename inside it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _rmtree_quiet(path: Path) -> None:
    """Remove a folder tree (or a file); entries that vanish meanwhile (removed by another cleaner) are fine."""

    def onerror(func: Any, name: str, exc_info: Any) -> None:
        if not isinstance(exc_info[1], FileNotFoundError):
            raise exc_info[1]

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, onerror=onerror)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _same_entry(path: Path, fd: int) -> bool:
    """True when ``path`` still names the file or folder open as ``fd``."""
    try:
        cur = os.lstat(path)
    except FileNotFoundError:
        return False
    st = os.fstat(fd)
    return (cur.st_dev, cur.st_ino) == (st.st_dev, st.st_ino)


def _temp_home(target: Path, *, folder: bool) -> tuple[Path, str]:
    """Where the temporary entries of ``target`` live and the name they are made from."""
    if folder:
        return target.parent.parent, f"{target.parent.name}@{target.name}"
    return target.parent, target.name


def _leftover_re(name: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(TMP_PREFIX)}(?:old-)?{re.escape(name)}\.[0-9a-f]{{32}}$")


def remove_if_abandoned(path: Path) -> bool:
    """Remove the temporary entry ``path`` unless a live writer holds its lock; True if it was removed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        path.unlink(missing_ok=True)  # a symlink is never one of ours in use
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live process is writing it
        if not _same_entry(path, fd):
            return False  # replaced or removed meanwhile
        _rmtree_quiet(path)
        return True
    finally:
        os.close(fd)


def remove_leftovers(target: Path) -> list[Path]:
    """Remove the abandoned temporary entries of ``target`` and return them.

    Those are ``.tmp-[old-]<name>.<hex>`` beside ``target`` (files) and
    ``.tmp-[old-]<parent>@<name>.<hex>`` beside its parent (staged folders). Only entries of this
    target are considered, and of those only the ones no live process holds: a concurrent writer's
    staging entry stays.
    """
    candidates: list[Path] = []
    for folder in (False, True):
        home, base = _temp_home(target, folder=folder)
        pattern = _leftover_re(base)
        try:
            candidates += sorted(home / e.name for e in os.scandir(home) if pattern.match(e.name))
        except FileNotFoundError:
            continue
    removed = [path for path in candidates if remove_if_abandoned(path)]
    if removed:
        log.info("removed %d temporary entr%s of %s left by an interrupted run: %s", len(removed),
                 "y" if len(removed) == 1 else "ies", target, ", ".join(p.name for p in removed))  # fmt: skip
    return removed


def _claim(target: Path, *, folder: bool) -> tuple[Path, BinaryIO | int]:
    """Create and lock a fresh temporary entry beside ``target``.

    Returns its path and, for a folder, the locked fd; for a file, the locked file object open for
    writing (its ``name`` is the temporary path). A cleaner may lock and remove the entry between
    its creation and our lock; then the path no longer names our inode and we try a new name.
    """
    home, base = _temp_home(target, folder=folder)
    for _ in range(_CLAIM_ATTEMPTS):
        tmp = home / f"{TMP_PREFIX}{base}.{uuid.uuid4().hex}"
        handle: BinaryIO | int
        if folder:
            tmp.mkdir()
            handle = fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)
        else:
            handle = open(tmp, "xb")  # noqa: SIM115 - closed by atomic_file
            fd = handle.fileno()
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _same_entry(tmp, fd):
            return tmp, handle
        if folder:
            os.close(fd)
        else:
            handle.close()
    raise OSError(f"could not create a temporary entry beside {target}: removed by others {_CLAIM_ATTEMPTS} times")


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; on success it is fsynced and renamed onto ``path``.

    Abandoned temporary files of ``path`` (from a killed writer) are removed first.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    tmp, handle = _claim(path, folder=False)
    assert not isinstance(handle, int)
    try:
        with handle as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
            os.replace(tmp, path)  # still locked: a cleaner never sees an unlocked temp of ours
        fsync_path(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _exists(path: Path) -> bool:
    return os.path.lexists(path)


def json_bytes(payload: Any) -> bytes:
    """``payload`` as pretty, key-sorted UTF-8 JSON with a final newline (manifests, reports)."""
    return (json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode()


def write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` as :func:`json_bytes` atomically."""
    with atomic_file(path) as fh:
        fh.write(json_bytes(payload))


def _swap_in(stage: Path, target: Path) -> None:
    """Put the folder ``stage`` at ``target``; whatever was at ``target`` is removed afterwards."""
    global _fallback_logged
    if not _exists(target):
        os.replace(stage, target)
        fsync_path(stage.parent)
        fsync_path(target.parent)
        return
    if exchange_paths(stage, target):
        fsync_path(stage.parent)
        fsync_path(target.parent)
        _rmtree_quiet(stage)  # the stage path now holds the previous folder
        return
    if not _fallback_logged:
        _fallback_logged = True
        log.warning("renameat2(RENAME_EXCHANGE) is not available for %s: replacing folders with two renames "
                    "(a crash between them leaves the folder missing until the next write)", target.parent)  # fmt: skip
    old = stage.with_name(f"{OLD_PREFIX}{stage.name.removeprefix(TMP_PREFIX)}")
    os.replace(target, old)
    os.replace(stage, target)
    fsync_path(stage.parent)
    fsync_path(target.parent)
    _rmtree_quiet(old)


@contextlib.contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """Yield an empty staging folder (beside ``target``'s parent); on success it replaces ``target`` as a whole.

    Abandoned staging folders of ``target`` are removed first. The swap is a single
    ``renameat2(RENAME_EXCHANGE)`` where supported, so a reader of ``target`` sees the old folder
    or the new one at every instant; the old one is removed after the swap. A failure (or a kill)
    before the swap leaves ``target`` untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    stage, fd = _claim(target, folder=True)
    assert isinstance(fd, int)
    try:
        yield stage
        fsync_path(stage)
        failpoint("swap", str(target))
        _swap_in(stage, target)
    finally:
        try:
            if _exists(stage):
                _rmtree_quiet(stage)
        finally:
            os.close(fd)


@contextlib.contextmanager
def scratch_dir(target: Path) -> Iterator[Path]:
    """Yield an empty, locked temporary folder for work on ``target`` (named as ``staged_dir`` names its stage);
    it is removed afterwards. Folders of ``target`` that a killed process left are removed first."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    folder, fd = _claim(target, folder=True)
    assert isinstance(fd, int)
    try:
        yield folder
    finally:
        try:
            _rmtree_quiet(folder)
        finally:
            os.close(fd)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
