"""Write-then-rename helpers: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

TMP_PREFIX = ".tmp-"


def fsync_path(path: Path) -> None:
    """fsync a file or folder by path (a folder: so a rename inside it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; on success it is fsynced and renamed onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_path(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def json_bytes(payload: Any) -> bytes:
    """``payload`` as pretty, key-sorted UTF-8 JSON with a final newline (manifests, reports)."""
    return (json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode()


def write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` as :func:`json_bytes` atomically."""
    with atomic_file(path) as fh:
        fh.write(json_bytes(payload))


@contextlib.contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces ``target`` as a whole.

    The old folder is moved aside and removed only after the new one is in place, so a
    failure part-way leaves the previous partition untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    stage = target.with_name(f"{TMP_PREFIX}{target.name}.{token}")
    stage.mkdir()
    try:
        yield stage
        fsync_path(stage)
        old = target.with_name(f"{TMP_PREFIX}old-{target.name}.{token}")
        had_old = target.exists()
        if had_old:
            os.replace(target, old)
        os.replace(stage, target)
        fsync_path(target.parent)
        if had_old:
            shutil.rmtree(old)
    finally:
        if stage.exists():
            shutil.rmtree(stage)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
