"""Maintenance of the lake's Delta tables: compact small files, vacuum, checkpoint, clean up the log.

Every Delta table of the lake is maintained (``lakehouse maintain`` and the daily
``lakehouse_maintenance`` DAG), found by listing: the folders (or, on S3, the key prefixes) under
``silver/``, ``quarantine/`` and ``gold/`` that hold a ``_delta_log``. Listing rather than the table
lists of the code (``SILVER_TABLES``, the gold marts) means a table nobody listed, such as a declared
source's, is maintained too, and a listed table that was never written is no error.

For each table, in this order:

1. **compact**: in every partition holding two or more files smaller than the target size (the
   table's ``delta.targetFileSize``, else Delta's 100 MiB), the small files are rewritten into
   fewer, one commit per partition (``optimize.compact``). Rows are unchanged; the old files stay
   on storage, removed from the table, until vacuum expires them. A writer that replaced the same
   partition meanwhile wins: that partition is left for the next run.
2. **vacuum** (``full=True``): deletes the files that left the table more than the retention ago,
   and files no version ever referenced (orphans of failed or lost commits) once they are older
   than the retention. Files of the current version are never deleted.
3. **checkpoint** at the table's latest version, so readers replay one Parquet file instead of the
   whole JSON log.
4. **log cleanup**: log entries older than the table's ``delta.logRetentionDuration`` (Delta's
   default 30 days) and older than the checkpoint are deleted.

The retention is ``LAKEHOUSE_DELTA_RETENTION_HOURS`` (default 168, a week) and never less than
:data:`MIN_RETENTION_HOURS`: a reader that started on a version (a run, a query of another engine, a
training set read ``as_of`` a recent version) finds its files for that long after they left the
table, and a writer's files that are not committed yet are never taken for orphans.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from lakehouse.delta import DELTA_LAYERS, DeltaLocation, locate, open_table, s3_storage_options
from lakehouse.settings import ConfigError, Layout
from lakehouse.storage import S3_CONN_ID, storage_url

log = logging.getLogger(__name__)

RETENTION_ENV = "LAKEHOUSE_DELTA_RETENTION_HOURS"
DEFAULT_RETENTION_HOURS = 168
# A day: longer than any run of the lake's DAGs with its retries, a backfill day or a query holds a version it
# started on, and than a writer holds files before committing them; and a whole maintenance period, so a version
# that was current at one maintenance run is still readable at the next.
MIN_RETENTION_HOURS = 24
DEFAULT_TARGET_FILE_SIZE = 100 * 1024 * 1024  # Delta's when the table sets no delta.targetFileSize
LOG = "_delta_log"


def retention_hours(value: str | int | None = None, *, what: str = RETENTION_ENV) -> int:
    """The vacuum retention in whole hours: ``value`` (``what`` names where it came from) or the setting.

    Refused, naming ``what``: anything but a whole number, and fewer than :data:`MIN_RETENTION_HOURS`.
    """
    if value is None:
        value = os.environ.get(RETENTION_ENV, "").strip() or DEFAULT_RETENTION_HOURS
        what = RETENTION_ENV
    text = str(value).strip()
    try:
        hours = int(text)
    except ValueError:
        raise ConfigError(f"{what} must be a whole number of hours, got {text!r}") from None
    if hours < MIN_RETENTION_HOURS:
        raise ConfigError(
            f"{what}={hours} is too short: vacuum would delete files that readers of a recent version and writers "
            f"about to commit still need; use at least {MIN_RETENTION_HOURS} hours (default {DEFAULT_RETENTION_HOURS})"
        )
    return hours


class _Lake:
    """The file listing maintenance needs: the lake's folders on local disk, or its keys on S3 (through the
    ``lakehouse_s3`` connection's client; deltalake lists for itself)."""

    def __init__(self, layout: Layout) -> None:
        self.url, self.root = storage_url(), layout.root
        self.client: Any = None
        if self.url.is_s3:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            s3_storage_options()  # a missing or malformed connection is named here
            self.client = S3Hook(aws_conn_id=S3_CONN_ID).get_conn()

    def _pages(self, rel: str, **kwargs: Any) -> Iterable[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        return paginator.paginate(Bucket=self.url.bucket, Prefix=self.url.key(rel) + "/", **kwargs)

    def folders(self, rel: str) -> list[str]:
        """The names of the folders right under ``rel``."""
        if not self.url.is_s3:
            folder = self.root / rel
            return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        pages = self._pages(rel, Delimiter="/")
        return sorted(
            p["Prefix"].rstrip("/").rsplit("/", 1)[-1] for page in pages for p in page.get("CommonPrefixes", [])
        )

    def files(self, rel: str) -> dict[str, int]:
        """Every file under ``rel`` (its path relative to ``rel``) and its size in bytes."""
        if not self.url.is_s3:
            folder = self.root / rel
            return {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*") if p.is_file()}
        start = len(self.url.key(rel)) + 1
        return {o["Key"][start:]: o["Size"] for page in self._pages(rel) for o in page.get("Contents", [])}

    def has_log(self, rel: str) -> bool:
        if not self.url.is_s3:
            return (self.root / rel / LOG).is_dir()
        return any(page.get("KeyCount") for page in self._pages(f"{rel}/{LOG}", PaginationConfig={"MaxItems": 1}))


def lake_tables(layout: Layout | None = None) -> list[str]:
    """Every Delta table of this process's lake, as ``<layer>/<name>``: what holds a ``_delta_log``."""
    layout = layout or Layout.from_env()
    lake = _Lake(layout)
    found: list[str] = []
    for layer in DELTA_LAYERS:
        for name in lake.folders(layer):
            if not lake.has_log(f"{layer}/{name}"):
                continue
            try:
                found.append(locate(f"{layer}/{name}", layout).rel)
            except ConfigError as exc:
                log.warning("%s/%s has a Delta log but is not a lake table, so it is left alone: %s", layer, name, exc)
    return found


def _small_files(table: Any) -> dict[tuple[tuple[str, str | None], ...], list[tuple[str, int]]]:
    """The table's files smaller than its target size, by partition (values as Delta stores them)."""
    import pyarrow as pa

    target = int(table.metadata().configuration.get("delta.targetFileSize") or DEFAULT_TARGET_FILE_SIZE)
    columns = list(table.metadata().partition_columns)
    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    small: dict[tuple[tuple[str, str | None], ...], list[tuple[str, int]]] = defaultdict(list)
    for action in actions:
        if action["size_bytes"] < target:
            key = tuple((c, action.get(f"partition.{c}")) for c in columns)
            small[key].append((action["path"], action["size_bytes"]))
    return small


def _partition_name(key: tuple[tuple[str, Any], ...]) -> str:
    return "/".join(f"{c}={v}" for c, v in key) or "(unpartitioned)"


def _compact(table: Any, rel: str, *, dry_run: bool) -> dict[str, Any]:
    """Compact every partition with two or more small files; what was (or would be) compacted."""
    from deltalake.exceptions import CommitFailedError

    candidates = {key: files for key, files in _small_files(table).items() if len(files) >= 2}
    done: dict[str, Any] = {"partitions": 0, "files_removed": 0, "files_added": 0, "bytes_removed": 0,
                            "skipped": []}  # fmt: skip
    if dry_run:
        done["partitions"] = len(candidates)
        done["files_removed"] = sum(len(f) for f in candidates.values())
        done["bytes_removed"] = sum(size for f in candidates.values() for _, size in f)
        done["would_compact"] = {_partition_name(k): len(f) for k, f in sorted(candidates.items(), key=str)}
        return done
    # A partition value Delta cannot filter on (null) makes one compaction over the whole table instead.
    whole = any(v is None for key in candidates for _, v in key)
    for key in [()] if whole and candidates else sorted(candidates, key=str):
        filters = [(c, "=", v) for c, v in key] or None
        try:
            metrics = table.optimize.compact(partition_filters=filters)
        except CommitFailedError as exc:
            # A writer replaced this partition since the table was read: its new files are the next run's.
            log.info("%s %s: compaction left for the next run (%s)", rel, _partition_name(key),
                     str(exc).splitlines()[0])  # fmt: skip
            done["skipped"].append(_partition_name(key))
            continue
        if metrics["numFilesRemoved"]:
            done["partitions"] += metrics["partitionsOptimized"]
            done["files_removed"] += metrics["numFilesRemoved"]
            done["files_added"] += metrics["numFilesAdded"]
            done["bytes_removed"] += json.loads(metrics["filesRemoved"])["totalSize"]
    return done


def _vacuum(table: Any, loc: DeltaLocation, lake: _Lake, hours: int, *, dry_run: bool) -> dict[str, Any]:
    """Full vacuum at ``hours``: the files deleted (or that would be), and their bytes."""
    sizes = lake.files(loc.rel)
    # A table that states its own minimum (delta.deletedFileRetentionDuration) keeps Delta's check of it;
    # otherwise this module's minimum, checked by retention_hours(), stands in for Delta's default week.
    enforce = "delta.deletedFileRetentionDuration" in table.metadata().configuration
    try:
        removed = table.vacuum(retention_hours=hours, dry_run=dry_run, enforce_retention_duration=enforce, full=True)
    except Exception as exc:
        if "Invalid retention period" not in str(exc):
            raise
        raise ConfigError(f"{RETENTION_ENV}={hours} is below what {loc.rel} itself requires: "
                          f"{str(exc).splitlines()[0]}") from None  # fmt: skip
    removed = sorted(removed)
    return {"files": removed, "bytes": sum(sizes.get(p, 0) for p in removed)}


def _log_entries(loc: DeltaLocation, lake: _Lake) -> set[str]:
    return set(lake.files(f"{loc.rel}/{LOG}"))


def _live(table: Any) -> tuple[int, int]:
    import pyarrow as pa

    sizes = pa.table(table.get_add_actions()).column("size_bytes").to_pylist()
    return len(sizes), sum(sizes)


def maintain_table(loc: DeltaLocation, lake: _Lake, hours: int, *, dry_run: bool = False) -> dict[str, Any]:
    """Compact, vacuum, checkpoint and clean up the log of the table at ``loc``; what was (or would be) done."""
    table = open_table(loc)
    if table is None:
        raise ConfigError(f"{loc.rel} is not a Delta table: no {LOG} at {loc.uri}")
    before = table.version()
    files_before, bytes_before = _live(table)
    log_before = _log_entries(loc, lake)
    compacted = _compact(table, loc.rel, dry_run=dry_run)
    vacuumed = _vacuum(table, loc, lake, hours, dry_run=dry_run)
    checkpoint = None
    log_removed: list[str] = []
    if not dry_run:
        table.update_incremental()
        checkpoint = table.version()
        if f"{checkpoint:020d}.checkpoint.parquet" not in log_before:
            table.create_checkpoint()
        table.cleanup_metadata()
        log_removed = sorted(log_before - _log_entries(loc, lake))
    files_after, bytes_after = _live(table)
    summary = {
        "table": loc.rel,
        "dry_run": dry_run,
        "retention_hours": hours,
        "version_before": before,
        "version_after": table.version(),
        "files_before": files_before,
        "files_after": files_after,
        "bytes_before": bytes_before,
        "bytes_after": bytes_after,
        "compacted": compacted,
        "vacuumed": vacuumed,
        "checkpoint_version": checkpoint,
        "log_entries_removed": len(log_removed),
    }
    log.info("%s", summary_line(summary))
    return summary


def summary_line(s: dict[str, Any]) -> str:
    """One line saying what maintenance did (or would do) to one table."""
    would = "would " if s["dry_run"] else ""
    c, v = s["compacted"], s["vacuumed"]
    parts = [
        f"{s['table']}: {would}compact {c['files_removed']} small file(s) in {c['partitions']} partition(s)"
        + ("" if s["dry_run"] else f" into {c['files_added']}"),
        f"{would}vacuum {len(v['files'])} file(s) ({v['bytes']:,} bytes)",
    ]
    if not s["dry_run"]:
        parts.append(f"checkpoint at version {s['checkpoint_version']}, {s['log_entries_removed']} log entries removed")
    parts.append(f"version {s['version_before']} -> {s['version_after']}, {s['files_after']} live file(s)")
    if c.get("skipped"):
        parts.append(f"left for the next run (a writer committed first): {', '.join(c['skipped'])}")
    return "; ".join(parts)


def maintain(
    tables: Iterable[str] | None = None,
    *,
    retention: str | int | None = None,
    dry_run: bool = False,
    layout: Layout | None = None,
) -> list[dict[str, Any]]:
    """Maintain ``tables`` (``<layer>/<name>``; default every Delta table of the lake); one summary per table.

    ``retention`` (hours) overrides ``LAKEHOUSE_DELTA_RETENTION_HOURS``; both are checked before any table is
    touched, as is every named table.
    """
    hours = retention_hours(retention, what="--retention-hours") if retention is not None else retention_hours()
    layout = layout or Layout.from_env()
    names = list(tables) if tables is not None else lake_tables(layout)
    locations = [locate(name, layout) for name in names]
    lake = _Lake(layout)
    for loc in locations:
        if not lake.has_log(loc.rel):
            raise ConfigError(f"{loc.rel} is not a Delta table: no {LOG} at {loc.uri}")
    return [maintain_table(loc, lake, hours, dry_run=dry_run) for loc in locations]
