"""S3 tools: ``lakehouse s3 ls|info|get|put|rm`` over Airflow's S3Hook (connection ``lakehouse_s3``).

The bucket is ``LAKEHOUSE_S3_BUCKET``; keys are bucket keys (``gold/fct_device_daily/...``) and
may also be written ``s3://<bucket>/<key>``. The lake's prefix is ``LAKEHOUSE_S3_PREFIX`` (default
``gold``): ``rm`` refuses any key outside it unless ``--force`` is given, and ``ls`` without an
argument lists it.

- ``ls [PREFIX]``: the direct children of PREFIX (as a folder): sub-folders first (``PRE``), then
  objects newest first with size and time. Listings are paginated (``--page-size`` keys per request),
  so any number of objects is listed.
- ``info KEY``: exists, size, ETag, last modified, content type, the ``sha256`` metadata when present.
  Exit status 1 when the key does not exist.
- ``get KEY [DEST]``: download to DEST (a file, or a folder to put the key's file name in; default
  the current folder). Written under a temporary name and renamed when complete; checked against
  the object's size and, when it has one, its ``sha256`` metadata.
- ``put FILE KEY``: upload with ``sha256`` metadata, as one request up to 8 MiB and as a multipart
  upload of 8 MiB parts above that, then verified (size, sha256 metadata, ETag = MD5 or multipart
  MD5), as ``lakehouse/publish.py`` does for gold.
- ``rm KEY [--force]``: delete one object.

Without a ``lakehouse_s3`` connection the same commands work on the local publish folder
(``$LAKEHOUSE_DATA_DIR/published/``, where gold is published then) and say so on stderr.
Secrets never appear in output: the hook reads them from the connection.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import mimetypes
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lakehouse.console import result, result_json
from lakehouse.settings import DEFAULT_S3_PREFIX, ConfigError, Layout

DEFAULT_PAGE_SIZE = 1000
_BLOCK = 1 << 20
_MAX_KEY_BYTES = 1024


class S3ToolsError(RuntimeError):
    """An S3 operation failed or was refused; the message names the key and why."""


@dataclass(frozen=True)
class Entry:
    """One child in a listing: a folder (``is_prefix``, key ending in ``/``) or an object."""

    key: str
    is_prefix: bool
    size: int | None = None
    modified: dt.datetime | None = None
    etag: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready values (``modified`` in ISO 8601)."""
        out = asdict(self)
        out["modified"] = self.modified.isoformat() if self.modified else None
        return out


def normalize_key(text: str, bucket: str | None, *, folder: bool = False) -> str:
    """A bucket key from ``text`` (``key`` or ``s3://bucket/key``); with ``folder`` a prefix ending in ``/``.

    Rejects another bucket, ``.``/``..`` segments, control characters and keys over 1024 bytes.
    """
    key = text.strip()
    if key.startswith("s3://"):
        rest = key[5:]
        named, _, key = rest.partition("/")
        if bucket is not None and named != bucket:
            raise ConfigError(f"{text!r} names bucket {named!r}, but the lake's bucket is {bucket!r}")
    key = key.lstrip("/")
    if any(part in (".", "..") for part in key.split("/")):
        raise ConfigError(f"key {text!r} has a '.' or '..' segment")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise ConfigError(f"key {text!r} contains a control character")
    if len(key.encode()) > _MAX_KEY_BYTES:
        raise ConfigError(f"key {text[:40]!r}... is longer than {_MAX_KEY_BYTES} bytes")
    if folder:
        return key if key == "" or key.endswith("/") else key + "/"
    if not key or key.endswith("/"):
        raise ConfigError(f"{text!r} is not an object key (empty, or ends with '/')")
    return key


def _sort_listing(entries: list[Entry]) -> list[Entry]:
    folders = sorted((e for e in entries if e.is_prefix), key=lambda e: e.key)
    objects = sorted((e for e in entries if not e.is_prefix), key=lambda e: e.key)
    objects.sort(key=lambda e: e.modified or dt.datetime.min.replace(tzinfo=dt.UTC), reverse=True)
    return folders + objects


# --------------------------------------------------------------------------------------------
# Stores


class S3Store:
    """The bucket through a boto3 client from ``S3Hook``."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        self.list_requests = 0

    def uri(self, key: str) -> str:
        """``s3://<bucket>/<key>``."""
        return f"s3://{self.bucket}/{key}"

    def ls(self, prefix: str, page_size: int = DEFAULT_PAGE_SIZE) -> list[Entry]:
        """Folders and objects directly under ``prefix``, ``page_size`` keys per ListObjectsV2 request."""
        from botocore.exceptions import BotoCoreError, ClientError

        entries: list[Entry] = []
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            pages = paginator.paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/", PaginationConfig={"PageSize": page_size}
            )
            for page in pages:
                self.list_requests += 1
                entries.extend(Entry(p["Prefix"], True) for p in page.get("CommonPrefixes", []))
                entries.extend(
                    Entry(o["Key"], False, int(o["Size"]), o["LastModified"], str(o.get("ETag", "")).strip('"'))
                    for o in page.get("Contents", [])
                    if o["Key"] != prefix  # a "folder marker" object is the folder itself
                )
        except (BotoCoreError, ClientError) as exc:
            raise S3ToolsError(f"listing {self.uri(prefix)} failed: {type(exc).__name__}: {exc}") from exc
        return entries

    def info(self, key: str) -> dict[str, Any]:
        """HEAD ``key``: ``exists`` False on 404, else size, ETag, modified, content type, sha256 metadata."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return {"uri": self.uri(key), "exists": False}
            raise S3ToolsError(f"reading {self.uri(key)} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise S3ToolsError(f"reading {self.uri(key)} failed: {exc}") from exc
        return {
            "uri": self.uri(key),
            "exists": True,
            "size": int(head["ContentLength"]),
            "etag": str(head.get("ETag", "")).strip('"'),
            "modified": head["LastModified"].isoformat() if head.get("LastModified") else None,
            "content_type": head.get("ContentType"),
            "sha256": (head.get("Metadata") or {}).get("sha256"),
        }

    def get(self, key: str, dest: Path) -> None:
        """Download ``key`` to the file ``dest``."""
        from botocore.exceptions import BotoCoreError, ClientError

        from lakehouse.publish import MULTIPART_CHUNKSIZE, MULTIPART_THRESHOLD

        config = _transfer_config(MULTIPART_THRESHOLD, MULTIPART_CHUNKSIZE)
        try:
            # s3transfer writes to a temporary name beside dest and renames it when complete.
            self.client.download_file(self.bucket, key, str(dest), Config=config)
        except (BotoCoreError, ClientError) as exc:
            raise S3ToolsError(f"downloading {self.uri(key)} failed: {type(exc).__name__}: {exc}") from exc

    def put(self, path: Path, key: str, sha256: str, etag: str) -> None:
        """Upload ``path`` to ``key`` with its sha256 as metadata, then verify size, sha256 and ``etag``."""
        from botocore.exceptions import BotoCoreError, ClientError

        from lakehouse.publish import MULTIPART_CHUNKSIZE, MULTIPART_THRESHOLD, PublishError, _verify_object

        config = _transfer_config(MULTIPART_THRESHOLD, MULTIPART_CHUNKSIZE)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        extra = {"Metadata": {"sha256": sha256}, "ContentType": content_type}
        try:
            self.client.upload_file(str(path), self.bucket, key, Config=config, ExtraArgs=extra)
        except (BotoCoreError, ClientError) as exc:
            raise S3ToolsError(f"uploading {path} to {self.uri(key)} failed: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # s3transfer wraps failures (S3UploadFailedError)
            raise S3ToolsError(f"uploading {path} to {self.uri(key)} failed: {type(exc).__name__}: {exc}") from exc
        try:
            _verify_object(self.client, self.bucket, key, size=path.stat().st_size, sha256=sha256, etag=etag)
        except PublishError as exc:
            raise S3ToolsError(str(exc)) from exc

    def rm(self, key: str) -> None:
        """Delete ``key``."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise S3ToolsError(f"deleting {self.uri(key)} failed: {type(exc).__name__}: {exc}") from exc


def _transfer_config(threshold: int, chunksize: int) -> Any:
    from boto3.s3.transfer import TransferConfig

    # The classic client: the CRT one would choose its own part sizes (and the expected ETag with them).
    return TransferConfig(multipart_threshold=threshold, multipart_chunksize=chunksize,
                          preferred_transfer_client="classic")  # fmt: skip


class LocalStore:
    """The local publish folder standing in for the bucket (no ``lakehouse_s3`` connection)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.list_requests = 0

    def uri(self, key: str) -> str:
        """The file standing for ``key``."""
        return str(self.root / key)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ConfigError(f"key {key!r} points outside {self.root}")
        return path

    def ls(self, prefix: str, page_size: int = DEFAULT_PAGE_SIZE) -> list[Entry]:
        """Folders and files directly under ``prefix`` (ETag = MD5 of the file)."""
        self.list_requests += 1
        folder = self._path(prefix) if prefix else self.root
        if not folder.is_dir():
            return []
        entries = []
        for child in folder.iterdir():
            if child.name.startswith(".tmp-") or not child.resolve().is_relative_to(self.root):
                continue  # a stage, or a link to something outside the publish folder (never shown nor read)
            key = f"{prefix}{child.name}"
            if child.is_dir():
                entries.append(Entry(key + "/", True))
            else:
                stat = child.stat()
                modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
                entries.append(Entry(key, False, stat.st_size, modified, _md5(child)))
        return entries

    def info(self, key: str) -> dict[str, Any]:
        """What :meth:`S3Store.info` returns, for a file."""
        path = self._path(key)
        if not path.is_file():
            return {"uri": str(path), "exists": False}
        stat = path.stat()
        return {"uri": str(path), "exists": True, "size": stat.st_size, "etag": _md5(path),
                "modified": dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC).isoformat(),
                "content_type": mimetypes.guess_type(path.name)[0], "sha256": None}  # fmt: skip

    def get(self, key: str, dest: Path) -> None:
        """Copy the file of ``key`` to ``dest`` atomically."""
        from lakehouse.fsutil import atomic_file

        with open(self._path(key), "rb") as fin, atomic_file(dest) as fout:
            shutil.copyfileobj(fin, fout, _BLOCK)

    def put(self, path: Path, key: str, sha256: str, etag: str) -> None:
        """Copy ``path`` to the file of ``key`` atomically and check its sha256."""
        from lakehouse.fsutil import atomic_file, sha256_file

        target = self._path(key)
        with open(path, "rb") as fin, atomic_file(target) as fout:
            shutil.copyfileobj(fin, fout, _BLOCK)
        if sha256_file(target) != sha256:
            raise S3ToolsError(f"verification of {target} failed: it does not match {path}")

    def rm(self, key: str) -> None:
        """Delete the file of ``key``."""
        self._path(key).unlink()


def _md5(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - what an S3 ETag of a single-part object is
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# The tools


class S3Tools:
    """The commands over one store (the bucket, or the local stand-in) and the lake's prefix."""

    def __init__(self, store: S3Store | LocalStore, lake_prefix: str, bucket: str | None) -> None:
        self.store = store
        self.lake_prefix = lake_prefix
        self.bucket = bucket

    def key(self, text: str) -> str:
        """``text`` as an object key of this bucket (see :func:`normalize_key`)."""
        return normalize_key(text, self.bucket)

    def ls(self, prefix: str | None = None, page_size: int = DEFAULT_PAGE_SIZE) -> list[Entry]:
        """Direct children of ``prefix`` (default: the lake prefix): folders, then objects newest first."""
        if page_size < 1 or page_size > 1000:
            raise ConfigError(f"--page-size must be between 1 and 1000, got {page_size}")
        folder = normalize_key(self.lake_prefix if prefix is None else prefix, self.bucket, folder=True)
        return _sort_listing(self.store.ls(folder, page_size))

    def info(self, key: str) -> dict[str, Any]:
        """What the store knows about ``key``; ``exists`` False when there is no such object."""
        return self.store.info(self.key(key))

    def get(self, key: str, dest: Path | None = None) -> dict[str, Any]:
        """Download ``key`` to ``dest`` (file or folder; default the current folder), checked; return its info."""
        key = self.key(key)
        info = self.store.info(key)
        if not info["exists"]:
            raise S3ToolsError(f"{info['uri']} does not exist")
        target = Path(dest) if dest is not None else Path.cwd()
        if target.is_dir():
            target = target / key.rsplit("/", 1)[-1]
        target.parent.mkdir(parents=True, exist_ok=True)
        self.store.get(key, target)
        size = target.stat().st_size
        problem = None
        if size != info["size"]:
            problem = f"size {size} != {info['size']}"
        elif info.get("sha256"):
            from lakehouse.fsutil import sha256_file

            local = sha256_file(target)
            if local != info["sha256"]:
                problem = f"sha256 {local} != metadata {info['sha256']}"
        if problem:
            target.unlink(missing_ok=True)
            raise S3ToolsError(f"downloading {info['uri']} failed verification ({problem}); removed {target}")
        return {**info, "dest": str(target)}

    def put(self, path: Path, key: str) -> dict[str, Any]:
        """Upload ``path`` to ``key`` (multipart above 8 MiB), verify it, and return the object's info."""
        from lakehouse.publish import _digest

        key = self.key(key)
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path} is not a file")
        size = path.stat().st_size
        sha, md5, multipart_etag = _digest(path, size)
        self.store.put(path, key, sha, multipart_etag or md5)
        info = self.store.info(key)
        parts = int(multipart_etag.rsplit("-", 1)[1]) if multipart_etag else 1
        return {**info, "source": str(path), "parts": parts}

    def rm(self, key: str, *, force: bool = False) -> dict[str, Any]:
        """Delete ``key``; refused outside the lake prefix unless ``force``. Raises when it does not exist."""
        key = self.key(key)
        inside = key.startswith(self.lake_prefix.rstrip("/") + "/")
        if not inside and not force:
            raise S3ToolsError(
                f"refusing to delete {self.store.uri(key)}: it is outside the lake prefix "
                f"{self.lake_prefix + '/'!r} (LAKEHOUSE_S3_PREFIX); pass --force to delete it anyway"
            )
        info = self.store.info(key)
        if not info["exists"]:
            raise S3ToolsError(f"{info['uri']} does not exist")
        self.store.rm(key)
        if self.store.info(key)["exists"]:
            raise S3ToolsError(f"{info['uri']} still exists after the delete")
        return {"uri": info["uri"], "deleted": True, "size": info["size"]}


def open_tools(
    conn_id: str | None = None,
    *,
    bucket: str | None = None,
    prefix: str | None = None,
    layout: Layout | None = None,
) -> S3Tools:
    """The tools over ``lakehouse_s3`` (bucket ``LAKEHOUSE_S3_BUCKET``), or over the local publish folder.

    Raises ConfigError when the connection exists but no bucket is set, or a name is invalid.
    """
    from lakehouse.publish import (
        BUCKET_ENV,
        DEFAULT_CONN_ID,
        PREFIX_ENV,
        find_connection,
        validate_bucket,
        validate_prefix,
    )

    conn_id = conn_id or DEFAULT_CONN_ID
    prefix = validate_prefix(prefix if prefix is not None else (os.environ.get(PREFIX_ENV) or DEFAULT_S3_PREFIX))
    bucket = bucket if bucket is not None else (os.environ.get(BUCKET_ENV) or None)
    if bucket is not None:
        validate_bucket(bucket)
    if find_connection(conn_id) is None:
        root = (layout or Layout.from_env()).published
        print(f"[lakehouse s3] no Airflow connection {conn_id!r}: working on the local publish folder {root}",
              file=sys.stderr)  # fmt: skip
        return S3Tools(LocalStore(root), prefix, None)
    if bucket is None:
        raise ConfigError(f"the Airflow connection {conn_id!r} exists but no bucket is set: set {BUCKET_ENV}")
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Tools(S3Store(S3Hook(aws_conn_id=conn_id).get_conn(), bucket), prefix, bucket)


# --------------------------------------------------------------------------------------------
# CLI


def add_parser(sub: Any) -> None:
    """Register ``s3`` and its subcommands on the ``lakehouse`` CLI's subparsers."""
    parser = sub.add_parser("s3", help="list, inspect, download, upload and delete objects of the lake's bucket")
    parser.add_argument("--conn-id", default=None, help="Airflow connection (default lakehouse_s3)")
    cmds = parser.add_subparsers(dest="s3_command", required=True)
    ls = cmds.add_parser("ls", help="direct children of a prefix, newest first (default: the lake prefix)")
    ls.add_argument("prefix", nargs="?")
    ls.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE, help="keys per list request (1-1000)")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info = cmds.add_parser("info", help="exists, size, etag, modified of one key")
    info.add_argument("key")
    get = cmds.add_parser("get", help="download a key (to DEST, a file or folder; default .)")
    get.add_argument("key")
    get.add_argument("dest", nargs="?")
    put = cmds.add_parser("put", help="upload a file to a key (multipart above 8 MiB), verified")
    put.add_argument("file")
    put.add_argument("key")
    rm = cmds.add_parser("rm", help="delete a key (only inside the lake prefix unless --force)")
    rm.add_argument("key")
    rm.add_argument("--force", action="store_true", help="allow a key outside LAKEHOUSE_S3_PREFIX")


def format_listing(entries: Sequence[Entry]) -> list[str]:
    """``ls`` lines: ``YYYY-MM-DD HH:MM:SS  size  key`` for objects, ``PRE key/`` for folders."""
    lines = []
    for e in entries:
        if e.is_prefix:
            lines.append(f"{'':19}  {'PRE':>15}  {e.key}")
        else:
            when = e.modified.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if e.modified else "-"
            lines.append(f"{when:19}  {e.size or 0:>15,}  {e.key}")
    return lines


def run(args: argparse.Namespace) -> int:
    """Run the ``s3`` subcommand parsed into ``args``; return the exit status (1: failed or missing, 2: refused)."""
    try:
        tools = open_tools(args.conn_id)
        cmd = args.s3_command
        if cmd == "ls":
            entries = tools.ls(args.prefix, args.page_size)
            if args.json:
                result_json([e.as_dict() for e in entries])
            else:
                result("\n".join(format_listing(entries)) if entries else "(nothing there)")
            return 0
        if cmd == "info":
            info = tools.info(args.key)
            result_json(info)
            return 0 if info["exists"] else 1
        if cmd == "get":
            got = tools.get(args.key, Path(args.dest) if args.dest else None)
            result(f"downloaded {got['uri']} ({got['size']:,} bytes) -> {got['dest']}")
        elif cmd == "put":
            put = tools.put(Path(args.file), args.key)
            how = f"multipart, {put['parts']} parts" if put["parts"] > 1 else "single request"
            result(f"uploaded {args.file} -> {put['uri']} ({put['size']:,} bytes, {how}, ETag {put['etag']})")
        elif cmd == "rm":
            gone = tools.rm(args.key, force=args.force)
            result(f"deleted {gone['uri']} ({gone['size']:,} bytes)")
    except S3ToolsError as exc:
        print(f"lakehouse s3 {args.s3_command}: {exc}", file=sys.stderr)
        return 2 if str(exc).startswith("refusing") else 1
    return 0
