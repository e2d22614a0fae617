"""CSV drop sources: files put into ``$LAKEHOUSE_DATA_DIR/inbox/<source>/`` -> bronze, or quarantine.

Public entry point: :func:`csv_drop_source`. Usage::

    source = csv_drop_source("exchange_rates")
    summary = source.pick_up()          # every file now in inbox/exchange_rates/

Each file in the inbox (names starting with ``.`` or ``_``, and names a producer is still
writing such as ``*.tmp`` or ``*.part``, are left alone: write elsewhere, then rename into the inbox)
is matched to the first resource whose ``file_pattern`` fits its name, then:

- a file whose sha256 was loaded before (it is in a bronze manifest of the source) is not loaded
  again: it is moved to quarantine with reason ``duplicate_file``;
- a file that does not fit the declared schema (no matching resource, undecodable, a missing
  column, a row with the wrong field count, a value of the wrong type, a required value missing)
  is moved whole to ``quarantine/inbox/<source>/date=D/<time>-<name>`` with
  ``<time>-<name>.reason.json`` saying why (the first problems, with row numbers);
- a good file is copied to ``bronze/<source>/<resource>/date=D/<sha256[:12]>-<name>``, listed in that
  partition's ``_manifest.json`` (original name, sha256, bytes, rows, received_at), and only then
  removed from the inbox.

D is the day the file was picked up, in the source's time zone. A lock file in the inbox keeps two
pick-ups of one source from interleaving. Settings are in ``settings.py``, reading and checking a
file in ``helpers.py``.

A source declaring ``inbox: s3://<bucket>/<prefix>/`` has its inbox on S3 instead (``s3_inbox.py``,
through the Airflow connection ``connection``, default ``lakehouse_s3``): the objects directly under
the prefix are listed (paginated), the same names are left alone, and each object is downloaded to
``inbox/<source>/.s3-download/`` and goes through the same steps. The object is deleted from the
prefix only after its bronze file and manifest (or its quarantine copy and reason) are written, and
only if it is still the version downloaded; a pick-up killed in between finds it again next time,
and the checksum dedup keeps it from being loaded twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import fnmatch
import hashlib
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.sources.config import ResourceSpec, SourceConfigError, SourceSpec, get_source
from ingest.sources.csv_drop.helpers import check_file, left_alone, printable, safe_file_name
from ingest.sources.csv_drop.settings import (
    INBOX_DIR,
    LOCK_NAME,
    MANIFEST_NAME,
    MANIFEST_VERSION,
    QUARANTINE_DIR,
    S3_DOWNLOAD_DIR,
)
from lakehouse.fsutil import atomic_file, fsync_path, write_json
from lakehouse.settings import Layout

log = logging.getLogger(__name__)

__all__ = ["MANIFEST_NAME", "CsvDropSource", "CsvResource", "csv_drop_source", "inbox_dir"]

_COPY_BLOCK = 1 << 20


def inbox_dir(layout: Layout, source: str) -> Path:
    """``$LAKEHOUSE_DATA_DIR/inbox/<source>/``."""
    return layout.root / INBOX_DIR / source


def quarantine_dir(layout: Layout, source: str, day: dt.date) -> Path:
    """Where rejected inbox files of ``day`` go: ``quarantine/inbox/<source>/date=D/``."""
    return layout.root / "quarantine" / QUARANTINE_DIR / source / f"date={day.isoformat()}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _copy_hashing(src: Path, dest: Path) -> tuple[str, int]:
    """Copy ``src`` to ``dest`` atomically; return the sha256 and size of the bytes copied."""
    digest = hashlib.sha256()
    size = 0
    with open(src, "rb") as fin, atomic_file(dest) as fout:
        while block := fin.read(_COPY_BLOCK):
            digest.update(block)
            size += len(block)
            fout.write(block)
    return digest.hexdigest(), size


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_COPY_BLOCK):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class CsvResource:
    """One resource as the loader sees it: write mode and primary key made explicit."""

    name: str
    write_disposition: str
    primary_key: tuple[str, ...]
    file_pattern: str
    spec: ResourceSpec


class CsvDropSource:
    """A declared CSV drop source; :meth:`pick_up` moves its inbox into bronze (or quarantine)."""

    def __init__(self, spec: SourceSpec) -> None:
        if spec.kind != "csv_drop":
            raise SourceConfigError(f"source {spec.name!r} is a {spec.kind} source, not csv_drop")
        self.spec = spec
        self.resources = {
            name: CsvResource(name, r.write_disposition, r.primary_key, r.file_pattern, r)
            for name, r in spec.resources.items()
        }

    @property
    def name(self) -> str:
        """The source's name."""
        return self.spec.name

    def match(self, file_name: str) -> ResourceSpec | None:
        """The first resource whose ``file_pattern`` matches ``file_name`` (case-sensitive), or None."""
        for res in self.spec.resources.values():
            if fnmatch.fnmatchcase(file_name, res.file_pattern):
                return res
        return None

    def loaded_checksums(self, layout: Layout) -> dict[str, str]:
        """sha256 -> bronze file (relative to the data dir) of every file loaded so far, from the manifests."""
        seen: dict[str, str] = {}
        root = layout.root / "bronze" / self.spec.name
        for manifest_path in sorted(root.glob(f"*/date=*/{MANIFEST_NAME}")):
            try:
                manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise SourceConfigError(f"bronze manifest {manifest_path} is unreadable: {exc}") from None
            for entry in manifest.get("files", []):
                rel = (manifest_path.parent / entry["file"]).relative_to(layout.root).as_posix()
                seen.setdefault(entry["sha256"], rel)
        return seen

    @staticmethod
    def _candidates(inbox: Path) -> list[Path]:
        files = []
        for path in sorted(inbox.iterdir()):
            if left_alone(path.name):
                continue
            if path.is_file() and not path.is_symlink():
                files.append(path)
        return files

    def pick_up(self, *, layout: Layout | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
        """Process every file now in the inbox (local, or the declared S3 prefix); return what was loaded,
        rejected and skipped.

        ``days`` in the result lists the bronze partitions that got new files (their silver needs a rebuild).
        """
        layout = layout if layout is not None else Layout.from_env()
        now = now if now is not None else dt.datetime.now(dt.UTC)
        day = now.astimezone(self.spec.tz).date()
        inbox = inbox_dir(layout, self.spec.name)
        inbox.mkdir(parents=True, exist_ok=True)
        where = self.spec.inbox or str(inbox)
        summary: dict[str, Any] = {"source": self.spec.name, "date": day.isoformat(), "inbox": where,
                                   "loaded": [], "rejected": [], "skipped": [], "days": []}  # fmt: skip
        with _locked(inbox / LOCK_NAME):
            seen = self.loaded_checksums(layout)
            if self.spec.s3_inbox is not None:
                self._pick_up_s3(inbox / S3_DOWNLOAD_DIR, layout, day, now, seen, summary)
            else:
                for path in self._candidates(inbox):
                    self._process(path, path.name, layout, day, now, seen, summary)
        summary["days"] = sorted({e["date"] for e in summary["loaded"]})
        log.info("source %s inbox %s: %d loaded, %d rejected, %d skipped", self.spec.name, where,
                 len(summary["loaded"]), len(summary["rejected"]), len(summary["skipped"]))  # fmt: skip
        return summary

    def _pick_up_s3(
        self, staging: Path, layout: Layout, day: dt.date, now: dt.datetime, seen: dict[str, str],
        summary: dict[str, Any],
    ) -> None:  # fmt: skip
        """Each object of the S3 inbox: download, the same steps as a local file, then delete it from S3."""
        from ingest.sources.csv_drop.s3_inbox import ObjectChanged, S3Inbox

        assert self.spec.s3_inbox is not None and self.spec.connection is not None
        bucket, prefix = self.spec.s3_inbox
        s3 = S3Inbox.from_connection(self.spec.connection, bucket, prefix)
        if staging.exists():
            shutil.rmtree(staging)  # a killed pick-up's downloads; their objects are still in S3
        staging.mkdir(parents=True)
        try:
            for number, obj in enumerate(s3.list()):
                path = staging / f"{number:06d}-{safe_file_name(obj.name)}"
                try:
                    s3.download(obj, path)
                except ObjectChanged as exc:
                    summary["skipped"].append({"file": obj.name, "reason": f"{exc}; next time"})
                    continue
                outcome = self._process(path, obj.name, layout, day, now, seen, summary, origin=s3.uri(obj.key))
                path.unlink(missing_ok=True)
                if outcome != "skipped" and not s3.remove(obj):
                    summary["skipped"].append({"file": obj.name, "reason": "replaced in the inbox while it was "
                                               "picked up: the new version is left for next time"})  # fmt: skip
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _process(
        self, path: Path, name: str, layout: Layout, day: dt.date, now: dt.datetime, seen: dict[str, str],
        summary: dict[str, Any], origin: str | None = None,
    ) -> str:  # fmt: skip
        """Check, dedup and load (or quarantine) the file at ``path``, named ``name`` in its inbox.

        Appends to ``summary`` and returns ``loaded``, ``rejected`` or ``skipped``; ``path`` is removed
        unless skipped. ``origin`` is where the file came from when that is not ``path`` (an S3 object).
        """
        res = self.match(name)
        sha = _sha256(path)
        if res is None:
            patterns = ", ".join(r.file_pattern for r in self.spec.resources.values())
            info = {"reason": f"no_matching_resource: the name fits none of the file patterns ({patterns})"}
            summary["rejected"].append(self._reject(path, name, layout, day, now, sha, None, info, origin))
            return "rejected"
        if sha in seen:
            info = {"reason": f"duplicate_file: the same bytes (sha256 {sha[:12]}...) were loaded as {seen[sha]}"}
            summary["rejected"].append(self._reject(path, name, layout, day, now, sha, res.name, info, origin))
            return "rejected"
        check = check_file(path, res, self.spec.tz)
        if not check.ok:
            summary["rejected"].append(self._reject(path, name, layout, day, now, sha, res.name, check.as_dict(),
                                                    origin))  # fmt: skip
            return "rejected"
        loaded = self._load(path, name, layout, res, day, now, sha, check.rows, origin)
        if loaded is None:
            summary["skipped"].append({"file": name, "reason": "changed while being read; next time"})
            return "skipped"
        seen[sha] = loaded["bronze"]
        summary["loaded"].append(loaded)
        return "loaded"

    def _load(
        self, path: Path, original: str, layout: Layout, res: ResourceSpec, day: dt.date, now: dt.datetime,
        sha: str, rows: int, origin: str | None,
    ) -> dict[str, Any] | None:  # fmt: skip
        folder = layout.bronze(res.name, day, source=self.spec.name)
        name = f"{sha[:12]}-{safe_file_name(original)}"
        copied_sha, size = _copy_hashing(path, folder / name)
        if copied_sha != sha:
            (folder / name).unlink(missing_ok=True)
            log.warning("source %s: %s changed while it was being loaded; left in the inbox", self.spec.name,
                        printable(path))  # fmt: skip
            return None
        manifest_path = folder / MANIFEST_NAME
        if manifest_path.exists():
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        else:
            manifest = {"manifest_version": MANIFEST_VERSION, "kind": "csv_drop", "source": self.spec.name,
                        "resource": res.name, "date": day.isoformat(), "files": []}  # fmt: skip
        entry = {"file": name, "original_name": original, "sha256": sha, "bytes": size, "rows": rows,
                 "received_at": now.astimezone(dt.UTC).isoformat(timespec="seconds")}  # fmt: skip
        if origin is not None:
            entry["origin"] = origin
        manifest["files"] = [f for f in manifest["files"] if f["file"] != name] + [entry]
        manifest["rows"] = sum(f["rows"] for f in manifest["files"])
        manifest["bytes"] = sum(f["bytes"] for f in manifest["files"])
        manifest["primary_key"] = list(res.primary_key)
        manifest["write_disposition"] = res.write_disposition
        write_json(manifest_path, manifest)
        path.unlink()
        fsync_path(path.parent)
        bronze = (folder / name).relative_to(layout.root).as_posix()
        log.info("source %s: %s (%d rows) -> %s", self.spec.name, printable(origin or path), rows, bronze)
        return {"file": original, "resource": res.name, "rows": rows, "sha256": sha, "bronze": bronze,
                "date": day.isoformat()}  # fmt: skip

    def _reject(
        self,
        path: Path,
        original: str,
        layout: Layout,
        day: dt.date,
        now: dt.datetime,
        sha: str,
        resource: str | None,
        info: dict[str, Any],
        origin: str | None = None,
    ) -> dict[str, Any]:
        folder = quarantine_dir(layout, self.spec.name, day)
        stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        name = f"{stamp}-{sha[:8]}-{safe_file_name(original)}"
        with open(path, "rb") as fin, atomic_file(folder / name) as fout:
            shutil.copyfileobj(fin, fout, _COPY_BLOCK)
        record = {"file": original, "resource": resource, "sha256": sha, "source": self.spec.name,
                  "quarantined_at": now.astimezone(dt.UTC).isoformat(timespec="seconds"), **info}  # fmt: skip
        if origin is not None:
            record["origin"] = origin
        write_json(folder / f"{name}.reason.json", record)
        path.unlink()
        fsync_path(path.parent)
        where = (folder / name).relative_to(layout.root).as_posix()
        log.warning("source %s: %s rejected (%s) -> %s", self.spec.name, printable(origin or path),
                    printable(info["reason"]), where)  # fmt: skip
        return {"file": original, "resource": resource, "reason": info["reason"], "quarantine": where}


def csv_drop_source(source: str | SourceSpec) -> CsvDropSource:
    """The declared CSV drop source ``source`` (a name in sources.yml, or a parsed declaration)."""
    spec = get_source(source) if isinstance(source, str) else source
    return CsvDropSource(spec)
