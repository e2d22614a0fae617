"""Publish the gold marts to S3 (AWS or MinIO) through Airflow's ``lakehouse_s3`` connection.

See docs/contracts.md, "Published to S3". The marts published are an explicit list: by default the
AppMetrica marts (``lakehouse.assets.GOLD_MART_NAMES``); a declared source's marts, also under ``gold/``,
are not published with them, and their objects are left alone. Each listed mart's Delta table
(``gold/<mart>``, :mod:`lakehouse.delta`) is read at its latest version and written, rows ordered by
the mart's ``order_by`` key (recorded with its commits), as one Parquet file, the object
``<prefix>/<mart>/<mart>-<first 16 hex of its sha256>.parquet`` (e.g.
``gold/dim_devices/dim_devices-3f1c0a9be2d47c55.parquet``): a key is never reused for other bytes,
and the same table contents always give the same bytes and so the same key, so a rerun over
unchanged gold re-creates exactly the same keys and objects (an object already present and verified
is not uploaded again).

The order makes a half-published state invisible to manifest readers:

1. upload every object and verify it (size, sha256 metadata, ETag against the MD5 computed locally);
2. write ``<prefix>/_manifests/date=YYYY-MM-DD/manifest.json``, then ``<prefix>/_manifests/latest.json``;
3. delete the objects of the published marts that the new manifest does not list.

A reader that follows ``latest.json`` (or a date manifest) therefore finds every object it lists,
complete, at every moment: until step 2 the previous manifest and all its objects are untouched, and
the new manifest appears only after all its objects are in place. A reader that globs
``<prefix>/<mart>/**/*.parquet`` instead sees exactly one copy of each mart before step 1 and after
step 3; between them (a publish that changes a mart, or one killed before step 3 until it is rerun)
the glob can match the previous and the new version of a changed file side by side. An older date
manifest keeps naming the objects of its own publish; once a later publish replaced one of them, only
the manifest ``latest.json`` names resolves completely. Publishes must not overlap (step 3 of one
would delete what another just uploaded).
The feature registry (``gold/_registry/``, see transforms/feature_registry.py) is uploaded and verified
the same way under ``<prefix>/_registry/`` in step 1; the manifest lists it under ``registry``.

When the Airflow connection does not exist the same layout is written under
``$LAKEHOUSE_DATA_DIR/published/<prefix>/`` with atomic file writes, in the same order, and the log
says so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import logging
import math
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse.failpoints import failpoint
from lakehouse.fsutil import TMP_PREFIX, atomic_file, json_bytes, remove_if_abandoned, sha256_file, write_json
from lakehouse.settings import DEFAULT_S3_PREFIX, ConfigError, Layout, check_connection_env, check_name, parse_day

if TYPE_CHECKING:
    from airflow.sdk import Connection

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = "lakehouse_s3"
BUCKET_ENV = "LAKEHOUSE_S3_BUCKET"
PREFIX_ENV = "LAKEHOUSE_S3_PREFIX"
MANIFESTS_DIR = "_manifests"
REGISTRY_DIR = "_registry"  # the feature registry (transforms/feature_registry.py), published with the marts

# Explicit transfer settings: the expected multipart ETag is computed with the same part size.
MULTIPART_THRESHOLD = 8 * 1024 * 1024
MULTIPART_CHUNKSIZE = 8 * 1024 * 1024
_READ_BLOCK = 1024 * 1024
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys per request
_MAX_KEY_BYTES = 1024
CONTENT_HASH_CHARS = 16  # hex digits of the sha256 in an object's file name (64 bits)

_PREFIX_SEGMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]*$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_KMS_ENCRYPTION = {"aws:kms", "aws:kms:dsse"}


class PublishError(RuntimeError):
    """Publishing gold failed (nothing to publish, an upload or its verification failed)."""


@dataclass(frozen=True)
class GoldFile:
    """One Parquet file of a gold mart, with what the manifest and the verification need."""

    path: Path
    mart: str
    rel: str  # POSIX path relative to the mart folder
    size: int
    sha256: str
    md5: str  # hex MD5 of the whole file (single-part ETag)
    multipart_etag: str | None  # expected ETag when uploaded in parts, else None
    rows: int

    def key(self, prefix: str) -> str:
        """The object key (or path relative to the publish root) of this file under ``prefix``.

        ``<prefix>/<mart>/<folders of rel>/<stem>-<sha256[:16]><suffix>``: content-addressed, so new
        bytes never overwrite an object a published manifest lists.
        """
        folder, _, name = self.rel.rpartition("/")
        stem, dot, suffix = name.rpartition(".")
        if not dot or not stem:
            stem, suffix = name, ""
        hashed = f"{stem}-{self.sha256[:CONTENT_HASH_CHARS]}{dot}{suffix}"
        return "/".join(part for part in (prefix, self.mart, folder, hashed) if part)

    def expected_etag(self) -> str:
        """The ETag S3 reports for this file when uploaded with this module's transfer settings."""
        return self.multipart_etag or self.md5


# --------------------------------------------------------------------------------------------
# Validation and configuration


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a safe key prefix: ``seg[/seg...]`` of ``[A-Za-z0-9._=-]``.

    Rejects ``..``, a leading or trailing ``/``, empty segments and segments starting with ``.``
    or ``_`` (``_manifests`` is reserved for the manifests).
    """
    if not isinstance(prefix, str) or not prefix:
        raise ConfigError(f"S3 prefix ({PREFIX_ENV}) must be a non-empty string, got {prefix!r}")
    problem = None
    if ".." in prefix:
        problem = "it contains '..'"
    elif prefix.startswith("/"):
        problem = "it starts with '/'"
    elif prefix.endswith("/"):
        problem = "it ends with '/'"
    elif len(prefix) > 256:
        problem = "it is longer than 256 characters"
    elif not all(_PREFIX_SEGMENT_RE.match(seg) for seg in prefix.split("/")):
        problem = "each '/'-separated part must match [A-Za-z0-9][A-Za-z0-9._=-]*"
    if problem:
        raise ConfigError(f"S3 prefix ({PREFIX_ENV}) {prefix!r} is invalid: {problem}")
    return prefix


def validate_bucket(bucket: str) -> str:
    """Return ``bucket`` if it is a valid S3 bucket name (3-63 chars of ``a-z0-9.-``, not an IP)."""
    problem = None
    if not isinstance(bucket, str) or not _BUCKET_RE.match(bucket):
        problem = "it must be 3-63 characters of a-z, 0-9, '.', '-', starting and ending with a letter or digit"
    elif ".." in bucket or ".-" in bucket or "-." in bucket:
        problem = "it must not contain '..', '.-' or '-.'"
    elif bucket.startswith("xn--") or bucket.endswith("-s3alias"):
        problem = "it uses a prefix or suffix S3 reserves"
    else:
        try:
            ipaddress.ip_address(bucket)
        except ValueError:
            pass
        else:
            problem = "it must not look like an IP address"
    if problem:
        raise ConfigError(f"S3 bucket ({BUCKET_ENV}) {bucket!r} is invalid: {problem}")
    return bucket


def find_connection(conn_id: str) -> Connection | None:
    """Return the Airflow connection ``conn_id``, or None when Airflow says it is not defined.

    In Airflow 3.3 ``BaseHook.get_connection`` (task SDK) raises
    ``airflow.sdk.exceptions.AirflowNotFoundException`` when no secrets backend has the id, both
    inside a task (the execution API answers "not found") and outside one (env-var backend only, no
    metadata DB needed). Only that exception means "no connection"; any other error propagates.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    check_connection_env(conn_id)  # a malformed variable is an error, not "no connection"
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


# --------------------------------------------------------------------------------------------
# Gold discovery


def _ignored(name: str) -> bool:
    return name.startswith((".", "_"))


def _digest(path: Path, size: int) -> tuple[str, str, str | None]:
    """sha256, MD5 and (for a multipart upload) the expected multipart ETag, in one read of the file."""
    from s3transfer.utils import ChunksizeAdjuster

    multipart = size >= MULTIPART_THRESHOLD
    part_size = ChunksizeAdjuster().adjust_chunksize(MULTIPART_CHUNKSIZE, size) if multipart else _READ_BLOCK
    sha, md5 = hashlib.sha256(), hashlib.md5()  # noqa: S324 - MD5 is what S3 ETags are made of
    part_digests: list[bytes] = []
    with open(path, "rb") as fh:
        while block := fh.read(part_size):
            sha.update(block)
            md5.update(block)
            if multipart:
                part_digests.append(hashlib.md5(block).digest())  # noqa: S324
    etag = None
    if multipart:
        expected_parts = math.ceil(size / part_size)
        if len(part_digests) != expected_parts:
            raise PublishError(f"gold file {path} changed while it was read ({len(part_digests)} parts read)")
        etag = hashlib.md5(b"".join(part_digests)).hexdigest() + f"-{len(part_digests)}"  # noqa: S324
    return sha.hexdigest(), md5.hexdigest(), etag


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    try:
        return int(pq.read_metadata(path).num_rows)
    except Exception as exc:
        raise PublishError(f"gold file {path} is not readable Parquet: {exc}") from exc


def appmetrica_marts() -> tuple[str, ...]:
    """The AppMetrica pipeline's gold marts, the default publish list: ``lakehouse.assets.GOLD_MART_NAMES``.

    That tuple is the one list of them (``tests/unit/test_assets.py`` checks it against the dbt models
    with ``meta.gold``); a declared source's marts under ``gold/`` are not in it.
    """
    from lakehouse.assets import GOLD_MART_NAMES

    return tuple(GOLD_MART_NAMES)


def _mart_list(marts: Iterable[str]) -> list[str]:
    if isinstance(marts, str):
        raise ConfigError(f"the marts to publish must be a list of names, not the string {marts!r}")
    names = [check_name(m, what="gold mart to publish") for m in marts]
    if not names:
        raise ConfigError("the list of marts to publish is empty")
    dupes = sorted({m for m in names if names.count(m) > 1})
    if dupes:
        raise ConfigError(f"the list of marts to publish names {', '.join(dupes)} more than once")
    if any(_ignored(m) for m in names):
        raise ConfigError(f"a mart name may not start with '.' or '_': {names}")
    return sorted(names)


def collect_gold(layout: Layout, marts: Iterable[str], staging: Path | None = None) -> list[GoldFile]:
    """One Parquet file per listed mart, written from its gold Delta table under ``staging``; sorted by mart.

    ``staging`` defaults to ``<warehouse>/publish`` (scratch: rewritten by every publish). The file
    of ``mart`` is ``<staging>/<mart>/<mart>.parquet``: the table's latest version, its unsigned
    columns as written, rows ordered by the ``order_by`` key recorded with the commit, then by every
    other column, zstd-compressed, written by one DuckDB thread so the bytes depend on
    the rows only. Raises PublishError when a listed mart has no Delta table (nothing is published).
    """
    import duckdb

    from lakehouse.delta import commit_metadata, locate, open_table, register_duckdb

    wanted = _mart_list(marts)
    locations = {m: locate(f"gold/{m}", layout) for m in wanted}
    missing = [m for m, loc in locations.items() if open_table(loc) is None]
    if missing:
        raise PublishError(
            f"nothing to publish: gold mart(s) {', '.join(missing)} listed for publishing have no Delta table "
            f"under {locations[missing[0]].uri.rsplit('/', 1)[0]}; run the dbt step first. Nothing was published"
        )
    staging = staging or layout.warehouse / "publish"
    files: list[GoldFile] = []
    with duckdb.connect(config={"threads": 1}) as con:
        for mart, loc in locations.items():
            table = register_duckdb(con, loc, "mart")
            if table is None:
                raise PublishError(f"gold mart {mart} has no Delta table at {loc.uri} any more. Nothing was published")
            version = table.version()
            names = [r[0] for r in con.execute("describe mart").fetchall()]
            key = [c for c in (commit_metadata(loc, version).get("lakehouse.order_by") or "").split(",") if c in names]
            # the key, then every other column: ties (a key that is not unique) still come out in one order
            order_by = ", ".join('"' + c.replace('"', '""') + '"' for c in [*key, *(n for n in names if n not in key)])
            path = staging / mart / f"{mart}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{TMP_PREFIX}{path.name}")
            target = str(tmp).replace("'", "''")
            con.execute(f"copy (select * from mart order by {order_by}) to '{target}' "  # noqa: S608 - quoted names
                        "(format parquet, compression zstd)")  # fmt: skip
            os.replace(tmp, path)
            size = path.stat().st_size
            sha, md5, etag = _digest(path, size)
            files.append(GoldFile(path, mart, path.name, size, sha, md5, etag, _parquet_rows(path)))
            log.info("gold %s version %s: %d rows for publishing", mart, version, files[-1].rows)
    return files


def collect_registry(gold: Path) -> list[GoldFile]:
    """The feature registry files (``gold/_registry/feature_registry.{json,parquet}``), if gold has them.

    They are uploaded and verified like the marts' files, before the manifest, under
    ``<prefix>/_registry/``; the manifest lists them under ``registry``, apart from the marts.
    """
    folder = gold / REGISTRY_DIR
    if not folder.is_dir():
        return []
    files = []
    for path in sorted(folder.iterdir()):
        if _ignored(path.name) or not path.is_file() or path.suffix not in {".json", ".parquet"}:
            continue
        size = path.stat().st_size
        sha, md5, etag = _digest(path, size)
        if path.suffix == ".parquet":
            rows = _parquet_rows(path)
        else:
            try:
                rows = len(json.loads(path.read_bytes())["features"])
            except (ValueError, KeyError, TypeError) as exc:
                raise PublishError(f"feature registry {path} is not a registry JSON file: {exc}") from exc
        files.append(GoldFile(path, REGISTRY_DIR, path.name, size, sha, md5, etag, rows))
    return files


# --------------------------------------------------------------------------------------------
# Manifest


def _manifest_keys(prefix: str, day: dt.date) -> tuple[str, str]:
    base = f"{prefix}/{MANIFESTS_DIR}"
    return f"{base}/date={day.isoformat()}/manifest.json", f"{base}/latest.json"


def build_manifest(
    files: Iterable[GoldFile], *, day: dt.date, run_id: str, bucket: str | None, prefix: str, storage: str
) -> dict[str, Any]:
    """The manifest of one publish: every object with key, mart, file (its path under gold/), bytes, sha256, rows,
    plus totals."""
    objects = [
        {
            "key": f.key(prefix),
            "mart": f.mart,
            "file": f"{f.mart}/{f.rel}",
            "bytes": f.size,
            "sha256": f.sha256,
            "rows": f.rows,
        }
        for f in files
    ]
    marts: dict[str, dict[str, int]] = {}
    for obj in objects:
        tot = marts.setdefault(obj["mart"], {"objects": 0, "bytes": 0, "rows": 0})
        tot["objects"] += 1
        tot["bytes"] += obj["bytes"]
        tot["rows"] += obj["rows"]
    return {
        "date": day.isoformat(),
        "run_id": run_id,
        "published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "storage": storage,
        "bucket": bucket,
        "prefix": prefix,
        "objects": objects,
        "totals": {
            "objects": len(objects),
            "bytes": sum(o["bytes"] for o in objects),
            "rows": sum(o["rows"] for o in objects),
            "marts": marts,
        },
    }


# --------------------------------------------------------------------------------------------
# S3


def _head_object(client: Any, bucket: str, key: str) -> dict[str, Any]:
    """HEAD one object (a separate function so tests can corrupt what verification sees)."""
    return client.head_object(Bucket=bucket, Key=key)


def _client_error(exc: Exception, what: str) -> PublishError:
    # botocore messages carry the error code, operation and endpoint, never the credentials.
    return PublishError(f"{what} failed: {type(exc).__name__}: {exc}")


def _verify_object(client: Any, bucket: str, key: str, *, size: int, sha256: str, etag: str) -> None:
    """Check an uploaded object against the local file; raise PublishError naming the key on mismatch."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        head = _head_object(client, bucket, key)
    except (BotoCoreError, ClientError) as exc:
        raise _client_error(exc, f"verifying s3://{bucket}/{key}") from exc
    _check_head(client, bucket, key, head, size=size, sha256=sha256, etag=etag)


def _check_head(client: Any, bucket: str, key: str, head: dict[str, Any], *, size: int, sha256: str, etag: str) -> None:
    remote_size = head.get("ContentLength")
    if remote_size != size:
        raise PublishError(f"verification of s3://{bucket}/{key} failed: size {remote_size} != local {size}")
    remote_sha = (head.get("Metadata") or {}).get("sha256")
    if remote_sha != sha256:
        raise PublishError(f"verification of s3://{bucket}/{key} failed: metadata sha256 {remote_sha} != {sha256}")
    remote_etag = str(head.get("ETag", "")).strip('"')
    if remote_etag == etag:
        return
    if head.get("ServerSideEncryption") in _KMS_ENCRYPTION:
        # With SSE-KMS the ETag is not an MD5: read the object back and hash it instead.
        _verify_by_download(client, bucket, key, sha256)
        return
    raise PublishError(f"verification of s3://{bucket}/{key} failed: ETag {remote_etag} != expected {etag}")


def _already_published(client: Any, bucket: str, key: str, f: GoldFile) -> bool:
    """True when ``key`` already holds exactly ``f`` (verified as after an upload); False when absent or different."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        head = _head_object(client, bucket, key)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in {"404", "NoSuchKey", "NotFound"}:
            return False
        raise _client_error(exc, f"checking s3://{bucket}/{key}") from exc
    except BotoCoreError as exc:
        raise _client_error(exc, f"checking s3://{bucket}/{key}") from exc
    try:
        _check_head(client, bucket, key, head, size=f.size, sha256=f.sha256, etag=f.expected_etag())
    except PublishError as exc:
        log.warning("%s; uploading it again", exc)
        return False
    return True


def _verify_by_download(client: Any, bucket: str, key: str, sha256: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    digest = hashlib.sha256()
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        for chunk in body.iter_chunks(_READ_BLOCK):
            digest.update(chunk)
    except (BotoCoreError, ClientError) as exc:
        raise _client_error(exc, f"reading back s3://{bucket}/{key}") from exc
    if digest.hexdigest() != sha256:
        raise PublishError(
            f"verification of s3://{bucket}/{key} failed: content sha256 {digest.hexdigest()} != {sha256}"
        )


def _list_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    from botocore.exceptions import BotoCoreError, ClientError

    keys: list[str] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
    except (BotoCoreError, ClientError) as exc:
        raise _client_error(exc, f"listing s3://{bucket}/{prefix}") from exc
    return keys


def _delete_keys(client: Any, bucket: str, keys: list[str]) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    for start in range(0, len(keys), _DELETE_BATCH):
        batch = keys[start : start + _DELETE_BATCH]
        try:
            resp = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
        except (BotoCoreError, ClientError) as exc:
            raise _client_error(exc, f"deleting {len(batch)} stale objects from s3://{bucket}") from exc
        errors = resp.get("Errors") or []
        if errors:
            first = errors[0]
            raise PublishError(
                f"deleting stale objects from s3://{bucket} failed for {len(errors)} keys, "
                f"e.g. {first.get('Key')!r}: {first.get('Code')} {first.get('Message')}"
            )


def _put_json(client: Any, bucket: str, key: str, data: bytes) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    sha = hashlib.sha256(data).hexdigest()
    try:
        client.put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/json", Metadata={"sha256": sha})
    except (BotoCoreError, ClientError) as exc:
        raise _client_error(exc, f"writing s3://{bucket}/{key}") from exc
    _verify_object(client, bucket, key, size=len(data), sha256=sha, etag=hashlib.md5(data).hexdigest())  # noqa: S324


def _publish_s3(files: list[GoldFile], manifest: dict[str, Any], *, conn_id: str, bucket: str, prefix: str) -> None:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import BotoCoreError, ClientError

    client = S3Hook(aws_conn_id=conn_id).get_conn()
    config = TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD,
        multipart_chunksize=MULTIPART_CHUNKSIZE,
        preferred_transfer_client="classic",  # the CRT client would choose its own part sizes
    )
    dated_key, latest_key = _manifest_keys(prefix, dt.date.fromisoformat(manifest["date"]))

    # 1. Every object in place and verified. Keys are content-addressed: nothing a published manifest
    #    lists is overwritten, and an object already there with the same bytes is kept as it is.
    kept = 0
    for f in files:
        key = f.key(prefix)
        if _already_published(client, bucket, key, f):
            kept += 1
        else:
            try:
                client.upload_file(
                    str(f.path),
                    bucket,
                    key,
                    ExtraArgs={"Metadata": {"sha256": f.sha256}, "ContentType": "application/vnd.apache.parquet"},
                    Config=config,
                )
            except (BotoCoreError, ClientError) as exc:
                raise _client_error(exc, f"uploading {f.path} to s3://{bucket}/{key}") from exc
            except Exception as exc:  # s3transfer wraps failures (e.g. S3UploadFailedError)
                raise PublishError(
                    f"uploading {f.path} to s3://{bucket}/{key} failed: {type(exc).__name__}: {exc}"
                ) from exc
            _verify_object(client, bucket, key, size=f.size, sha256=f.sha256, etag=f.expected_etag())
            log.debug("uploaded and verified s3://%s/%s (%d bytes, %d rows)", bucket, key, f.size, f.rows)
        failpoint("publish.upload", key)
    if kept:
        log.info("%d of %d object(s) were already published with the same bytes", kept, len(files))

    # 2. The manifests, last: the date's, then latest.json.
    data = json_bytes(manifest)  # as fsutil.write_json writes the local manifests
    _put_json(client, bucket, dated_key, data)
    _put_json(client, bucket, latest_key, data)

    # 3. Objects of the published marts that the new manifest does not list (earlier versions).
    by_mart: dict[str, set[str]] = {}
    for f in files:
        by_mart.setdefault(f.mart, set()).add(f.key(prefix))
    for mart, wanted in sorted(by_mart.items()):
        mart_prefix = f"{prefix}/{mart}/"
        stale = sorted(set(_list_keys(client, bucket, mart_prefix)) - wanted)
        if stale:
            _delete_keys(client, bucket, stale)
            log.info("deleted %d superseded object(s) of mart %s under s3://%s/%s", len(stale), mart, bucket,
                     mart_prefix)  # fmt: skip
        present = set(_list_keys(client, bucket, mart_prefix))
        if present != wanted:
            raise PublishError(
                f"after publishing, s3://{bucket}/{mart_prefix} holds {sorted(present ^ wanted)[:5]} "
                "unexpectedly (missing or extra keys; is another publish running?)"
            )


# --------------------------------------------------------------------------------------------
# Local fallback


def _matches(src: GoldFile, dest: Path) -> bool:
    return dest.is_file() and dest.stat().st_size == src.size and sha256_file(dest) == src.sha256


def _copy_verified(src: GoldFile, dest: Path) -> bool:
    """Copy ``src`` to ``dest`` atomically and verify it; False when ``dest`` already held these bytes."""
    if _matches(src, dest):
        return False
    with open(src.path, "rb") as fin, atomic_file(dest) as fout:
        shutil.copyfileobj(fin, fout, _READ_BLOCK)
    if not _matches(src, dest):
        raise PublishError(f"verification of {dest} failed: it does not match {src.path}")
    return True


def _remove_stale_local(mart_dir: Path, wanted: set[Path]) -> int:
    removed = 0
    for path in sorted(mart_dir.rglob("*"), reverse=True):  # children before their folders
        if path.name.startswith(TMP_PREFIX):
            remove_if_abandoned(path)  # a killed copy's temp file; a live writer's stays
        elif path.is_dir() and not path.is_symlink():
            if not any(path.iterdir()):
                path.rmdir()
        elif path not in wanted:
            path.unlink()
            removed += 1
    return removed


def _publish_local(files: list[GoldFile], manifest: dict[str, Any], *, root: Path, prefix: str) -> None:
    """The S3 order on local disk: files (atomic, verified), the date manifest, latest.json, then stale files."""
    dated_key, latest_key = _manifest_keys(prefix, dt.date.fromisoformat(manifest["date"]))
    for f in files:
        _copy_verified(f, root / f.key(prefix))
        failpoint("publish.upload", f.key(prefix))
    write_json(root / dated_key, manifest)
    write_json(root / latest_key, manifest)
    by_mart: dict[str, set[Path]] = {}
    for f in files:
        by_mart.setdefault(f.mart, set()).add(root / f.key(prefix))
    for mart, wanted in sorted(by_mart.items()):
        removed = _remove_stale_local(root / prefix / mart, wanted)
        if removed:
            log.info("deleted %d superseded file(s) of mart %s under %s", removed, mart, root / prefix / mart)


# --------------------------------------------------------------------------------------------
# Entry point


def publish_gold(
    day: dt.date | str,
    *,
    layout: Layout | None = None,
    run_id: str = "manual",
    conn_id: str = DEFAULT_CONN_ID,
    bucket: str | None = None,
    prefix: str | None = None,
    marts: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Publish the listed gold marts for ``day``; return the manifest plus ``target`` and ``manifest_uri``.

    ``marts`` defaults to the AppMetrica marts (:func:`appmetrica_marts`); the feature registry goes
    out with any list holding one of them. A list of other marts (a declared source's) is published
    without the registry, and should
    go to a prefix of its own (the manifests ``_manifests/latest.json`` are per prefix). Other folders
    under ``gold/`` and other marts' objects under the prefix are left alone; a listed mart that gold
    lacks is a PublishError before anything is written.

    With the Airflow connection ``conn_id`` (type aws; ``extra.endpoint_url``/``region_name`` for
    MinIO) the files go to ``s3://<bucket>/<prefix>/<mart>/...`` through ``S3Hook``; the bucket comes
    from ``bucket`` or env ``LAKEHOUSE_S3_BUCKET`` (required then), the prefix from ``prefix`` or env
    ``LAKEHOUSE_S3_PREFIX`` (default ``gold``). Without the connection the same layout is written
    under ``layout.published``. Object names carry a hash of their content; the manifests are written
    after every object was verified, and only then are superseded objects of the marts deleted.

    Raises ConfigError for a bad or missing setting and PublishError when publishing fails.
    """
    day = parse_day(day)
    layout = layout or Layout.from_env()
    prefix = validate_prefix(prefix if prefix is not None else (os.environ.get(PREFIX_ENV) or DEFAULT_S3_PREFIX))
    bucket = bucket if bucket is not None else (os.environ.get(BUCKET_ENV) or None)
    if bucket is not None:
        validate_bucket(bucket)

    conn = find_connection(conn_id)
    if conn is not None and bucket is None:
        raise ConfigError(
            f"the Airflow connection {conn_id!r} exists but no bucket is set: set {BUCKET_ENV} (or pass bucket=)"
        )

    listed = appmetrica_marts() if marts is None else marts
    files = collect_gold(layout, listed)
    # The feature registry describes the AppMetrica marts: it goes out with them, never with another pipeline's.
    with_registry = bool({f.mart for f in files} & set(appmetrica_marts()))
    registry = collect_registry(layout.gold) if with_registry else []
    storage = "s3" if conn is not None else "local"
    manifest = build_manifest(
        files, day=day, run_id=str(run_id), bucket=bucket if conn is not None else None, prefix=prefix, storage=storage
    )
    if registry:
        manifest["registry"] = [
            {"key": f.key(prefix), "bytes": f.size, "sha256": f.sha256, "rows": f.rows} for f in registry
        ]
    dated_key, _ = _manifest_keys(prefix, day)
    totals = manifest["totals"]

    if conn is not None:
        assert bucket is not None
        target = f"s3://{bucket}/{prefix}"
        log.info("publishing %d gold file(s) of %d mart(s) to %s", len(files), len(totals["marts"]), target)
        _publish_s3([*files, *registry], manifest, conn_id=conn_id, bucket=bucket, prefix=prefix)
        manifest_uri = f"s3://{bucket}/{dated_key}"
    else:
        root = layout.published
        target = str(root / prefix)
        _publish_local([*files, *registry], manifest, root=root, prefix=prefix)
        manifest_uri = str(root / dated_key)
        hint = f" ({BUCKET_ENV} is set but unused)" if bucket else ""
        log.warning("No Airflow connection %r found, so gold was published locally at %s%s", conn_id, target, hint)

    log.info(
        "published %d object(s), %d bytes, %d rows to %s; manifest %s",
        totals["objects"],
        totals["bytes"],
        totals["rows"],
        target,
        manifest_uri,
    )
    return {**manifest, "target": target, "manifest_uri": manifest_uri}
