"""Where the lake lives: local disk (default) or an S3-compatible object store (``LAKEHOUSE_STORAGE_URL``).

``LAKEHOUSE_STORAGE_URL`` unset, empty or a local path: the lake is ``$LAKEHOUSE_DATA_DIR`` as
before, and every method of :class:`LocalLake` does nothing. ``s3://bucket[/prefix]``: the object
store, reached through the ``lakehouse_s3`` Airflow connection, is the system of record and
``$LAKEHOUSE_DATA_DIR`` is only this worker's scratch copy.

The silver and quarantine tables are Delta Lake tables, written and read in place on the store
(lakehouse/delta.py). The other folders (bronze's raw files, gold) are *hydrated* into scratch
by the step that reads them (by their pointers), and each folder a step wrote is *committed*:

A partition (a folder such as ``bronze/appmetrica/events/date=2026-11-01``) is committed under a new
version prefix, then switched to by one PUT of its pointer (see docs/lake-on-s3.md):

    <prefix>/<rel>/_v/<version>/<file>...   the files of one version (never overwritten)
    <prefix>/<rel>/_current.json            {"version", "files": [{"name", "size", "sha256"}]}

Readers only follow pointers; they never list data keys. Single-object files (run records, state
JSON) are plain PUTs (one PUT is atomic on S3). Secrets never appear in messages or logs: the
client is built by the connection's hook, and the S3 secret is handed only to processes that need
it (dbt), through their environment.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakehouse.settings import ConfigError, Layout

log = logging.getLogger(__name__)

STORAGE_URL_ENV = "LAKEHOUSE_STORAGE_URL"
S3_CONN_ID = "lakehouse_s3"
POINTER = "_current.json"
VERSIONS = "_v"
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_.=-]+$")
_READ_ATTEMPTS = 3
LAKE_FOLDERS = frozenset({"bronze", "silver", "quarantine", "gold", "reports", "warehouse"})


@dataclass(frozen=True)
class StorageUrl:
    """A parsed ``LAKEHOUSE_STORAGE_URL``: ``bucket`` is None for local disk (then ``path`` may name it)."""

    bucket: str | None = None
    prefix: str = ""
    path: Path | None = None

    @property
    def is_s3(self) -> bool:
        return self.bucket is not None

    def key(self, rel: str) -> str:
        """The object key of ``rel`` (a lake-relative path such as ``silver/t/date=D``)."""
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def url(self, rel: str) -> str:
        return f"s3://{self.bucket}/{self.key(rel)}"


def parse_storage_url(raw: str | None) -> StorageUrl:
    """Validate ``LAKEHOUSE_STORAGE_URL``: unset/empty or a local path, or ``s3://bucket[/prefix]``.

    Anything else (another scheme, a bad bucket name, an unsafe prefix) raises ConfigError naming
    the variable and its value.
    """
    text = (raw or "").strip()
    if not text:
        return StorageUrl()
    if "://" not in text:
        return StorageUrl(path=Path(text).expanduser().resolve())
    scheme, _, rest = text.partition("://")
    if scheme.lower() == "file":
        return StorageUrl(path=Path(rest).expanduser().resolve())
    if scheme != "s3":
        raise ConfigError(f"{STORAGE_URL_ENV}={text!r}: the scheme must be s3:// (or a local path), got {scheme}://")
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise ConfigError(f"{STORAGE_URL_ENV}={text!r}: {bucket!r} is not a valid S3 bucket name")
    segments = [s for s in prefix.strip("/").split("/") if s]
    if len(segments) != len(prefix.strip("/").split("/")) and prefix.strip("/"):
        raise ConfigError(f"{STORAGE_URL_ENV}={text!r}: the key prefix has an empty segment")
    for seg in segments:
        if seg in (".", "..") or not _SEGMENT_RE.match(seg) or seg.startswith("_"):
            raise ConfigError(
                f"{STORAGE_URL_ENV}={text!r}: prefix segment {seg!r} must be letters, digits, '_.=-' "
                "and must not start with '_' or be '.'/'..'"
            )
    return StorageUrl(bucket=bucket, prefix="/".join(segments))


def storage_url() -> StorageUrl:
    """The parsed ``LAKEHOUSE_STORAGE_URL`` of this process."""
    return parse_storage_url(os.environ.get(STORAGE_URL_ENV))


def _check_rel(rel: str) -> str:
    parts = rel.split("/")
    if not rel or any(p in ("", ".", "..", VERSIONS) for p in parts):
        raise ConfigError(f"lake path {rel!r} is not a clean relative path")
    return rel


def _matches(folder: Path, files: list[dict[str, Any]]) -> bool:
    """Whether ``folder`` holds exactly ``files`` (names, sizes and sha256 of a pointer)."""
    from lakehouse.fsutil import TMP_PREFIX, sha256_file

    if not folder.is_dir():
        return False
    local = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    local = {n: p for n, p in local.items() if not any(part.startswith(TMP_PREFIX) for part in n.split("/"))}
    if set(local) != {f["name"] for f in files}:
        return False
    return all(local[f["name"]].stat().st_size == f["size"] and sha256_file(local[f["name"]]) == f["sha256"]
               for f in files)  # fmt: skip


def _new_version() -> str:
    """Versions sort by creation time: a commit's cleanup never removes a newer writer's files."""
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{now}-{uuid.uuid4().hex[:8]}"


class LocalLake:
    """The lake on local disk: ``$LAKEHOUSE_DATA_DIR`` is the lake, so syncing does nothing."""

    is_s3 = False

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def hydrate(self, rel: str) -> bool:
        """Make the committed partition ``rel`` present locally (a no-op here); True when it exists."""
        return (self.layout.root / _check_rel(rel)).exists()

    def commit(self, rel: str) -> str | None:
        """Commit the local partition ``rel`` (a no-op here)."""
        return None

    def pull_file(self, rel: str) -> bool:
        """Fetch the single-object file ``rel`` (a no-op here); True when it exists."""
        return (self.layout.root / _check_rel(rel)).exists()

    def push_file(self, rel: str) -> None:
        """Store the local single-object file ``rel`` (a no-op here)."""

    def remove_file(self, rel: str) -> None:
        """Delete the single-object file ``rel`` from the store (a no-op here)."""

    def pull_folder(self, rel: str) -> list[str]:
        """Fetch every single-object file under ``rel`` (a no-op here)."""
        return []


class S3Lake(LocalLake):
    """The lake on an S3-compatible store; ``layout.root`` is the local scratch copy."""

    is_s3 = True

    def __init__(self, layout: Layout, url: StorageUrl, client: Any, conn_id: str = S3_CONN_ID) -> None:
        super().__init__(layout)
        self.url = url
        self.bucket = url.bucket
        self.client = client
        self.conn_id = conn_id

    # -- low level ------------------------------------------------------------------------
    def _get(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def _keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(o["Key"] for o in page.get("Contents", []))
        return keys

    def _delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[i : i + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True})

    def pointer(self, rel: str) -> dict[str, Any] | None:
        """The committed pointer of partition ``rel``, or None when it has never been committed."""
        data = self._get(self.url.key(f"{_check_rel(rel)}/{POINTER}"))
        return None if data is None else json.loads(data)

    # -- partitions -----------------------------------------------------------------------
    def hydrate(self, rel: str) -> bool:
        """Replace the local folder ``rel`` by the committed version (or remove it when none is committed).

        A version deleted while it is downloaded (a newer commit switched the pointer and cleaned
        up) is retried from the new pointer.
        """
        from botocore.exceptions import ClientError

        from lakehouse.fsutil import sha256_file, staged_dir

        target = self.layout.root / _check_rel(rel)
        for attempt in range(1, _READ_ATTEMPTS + 1):
            current = self.pointer(rel)
            if current is None:
                if target.exists():
                    shutil.rmtree(target)
                return False
            if _matches(target, current["files"]):
                return True  # this worker already holds the committed version (e.g. it just wrote it)
            prefix = self.url.key(f"{rel}/{VERSIONS}/{current['version']}")
            try:
                with staged_dir(target) as stage:
                    for f in current["files"]:
                        dest = stage / f["name"]
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        self.client.download_file(self.bucket, f"{prefix}/{f['name']}", str(dest))
                        if dest.stat().st_size != f["size"] or sha256_file(dest) != f["sha256"]:
                            raise OSError(f"lake {rel}/{f['name']}: the download differs from its pointer's digest")
                return True
            except ClientError as exc:
                if attempt == _READ_ATTEMPTS or exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey"):
                    raise
                log.info("lake %s: version %s replaced while reading it; following the new pointer", rel,
                         current["version"])  # fmt: skip
        raise AssertionError("unreachable")

    def commit(self, rel: str) -> str | None:
        """Upload the local folder ``rel`` as a new version, switch its pointer to it, then remove older versions.

        Returns the new version (the current one when the folder holds exactly its files: nothing
        is uploaded; None when the local folder is absent: the partition is then removed from the
        store, pointer first). A kill before the pointer PUT leaves the old pointer, and the files
        it names, untouched.
        """
        from lakehouse.failpoints import failpoint
        from lakehouse.fsutil import TMP_PREFIX, json_bytes, sha256_file

        folder = self.layout.root / _check_rel(rel)
        pointer_key = self.url.key(f"{rel}/{POINTER}")
        versions = self.url.key(f"{rel}/{VERSIONS}/")
        if not folder.is_dir():
            self.client.delete_object(Bucket=self.bucket, Key=pointer_key)
            self._delete(self._keys(versions))
            return None
        current = self.pointer(rel)
        if current is not None and _matches(folder, current["files"]):
            log.info("lake %s: unchanged since version %s; nothing to commit", rel, current["version"])
            return current["version"]
        version = _new_version()
        files = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = path.relative_to(folder).as_posix()
            if any(part.startswith(TMP_PREFIX) for part in name.split("/")):
                continue
            size = path.stat().st_size
            digest = sha256_file(path)
            key = f"{versions}{version}/{name}"
            self.client.upload_file(str(path), self.bucket, key, ExtraArgs={"Metadata": {"sha256": digest}})
            head = self.client.head_object(Bucket=self.bucket, Key=key)
            if head["ContentLength"] != size:
                raise OSError(f"lake {rel}/{name}: uploaded {head['ContentLength']} bytes, expected {size}")
            files.append({"name": name, "size": size, "sha256": digest})
        failpoint("lake_pointer", rel)
        current = self.pointer(rel)
        if current is not None and current["version"] > version:
            log.warning("lake %s: a newer version %s was committed meanwhile; leaving it current", rel,
                        current["version"])  # fmt: skip
            self._delete(self._keys(f"{versions}{version}/"))
            return current["version"]
        body = json_bytes({"version": version, "files": files,
                           "committed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})  # fmt: skip
        self.client.put_object(Bucket=self.bucket, Key=pointer_key, Body=body, ContentType="application/json")
        stale = [k for k in self._keys(versions) if k[len(versions) :].split("/", 1)[0] < version]
        self._delete(stale)
        log.info("lake %s: committed version %s (%d file(s)); removed %d older object(s)", rel, version, len(files),
                 len(stale))  # fmt: skip
        return version

    def partitions(self, rel_table: str) -> list[str]:
        """The committed partitions (``<rel_table>/date=D``) of a table, by their pointers."""
        prefix = self.url.key(f"{_check_rel(rel_table)}/")
        found = set()
        for key in self._keys(prefix):
            rest = key[len(prefix) :].split("/")
            if len(rest) == 2 and rest[1] == POINTER:
                found.add(f"{rel_table}/{rest[0]}")
        return sorted(found)

    # -- single objects ---------------------------------------------------------------------
    def pull_file(self, rel: str) -> bool:
        from lakehouse.fsutil import atomic_file

        data = self._get(self.url.key(_check_rel(rel)))
        path = self.layout.root / rel
        if data is None:
            path.unlink(missing_ok=True)
            return False
        with atomic_file(path) as out:
            out.write(data)
        return True

    def push_file(self, rel: str) -> None:
        path = self.layout.root / _check_rel(rel)
        self.client.upload_file(str(path), self.bucket, self.url.key(rel))

    def remove_file(self, rel: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.url.key(_check_rel(rel)))

    def pull_folder(self, rel: str) -> list[str]:
        prefix = self.url.key(f"{_check_rel(rel)}/")
        folder = self.layout.root / rel
        if folder.exists():
            shutil.rmtree(folder)
        pulled = []
        for key in self._keys(prefix):
            name = key[len(prefix) :]
            self.pull_file(f"{rel}/{name}")
            pulled.append(name)
        return pulled


def _check_apart_from_publish(url: StorageUrl) -> None:
    """The lake and the published gold (``LAKEHOUSE_S3_BUCKET``/``LAKEHOUSE_S3_PREFIX``) must not share keys."""
    from lakehouse.settings import DEFAULT_S3_PREFIX

    if url.bucket != os.environ.get("LAKEHOUSE_S3_BUCKET"):
        return
    published = os.environ.get("LAKEHOUSE_S3_PREFIX", DEFAULT_S3_PREFIX).strip("/")
    lake = url.prefix
    if lake:
        overlap = not published or f"{published}/".startswith(f"{lake}/") or f"{lake}/".startswith(f"{published}/")
    else:  # the lake's top-level folders are its layers
        overlap = not published or published.split("/")[0] in LAKE_FOLDERS
    if overlap:
        raise ConfigError(
            f"{STORAGE_URL_ENV}={os.environ.get(STORAGE_URL_ENV)!r} overlaps the publish target "
            f"s3://{url.bucket}/{published}/ (LAKEHOUSE_S3_BUCKET/LAKEHOUSE_S3_PREFIX): give the lake a prefix of "
            "its own in that bucket, e.g. s3://<bucket>/lake"
        )


def httpfs_extension() -> str:
    """The path of the httpfs extension shipped by the ``duckdb-extension-httpfs`` wheel (works offline)."""
    import duckdb_extension_httpfs

    found = next(Path(duckdb_extension_httpfs.__path__[0]).rglob("*.duckdb_extension"), None)
    if found is None:
        raise ConfigError("the duckdb-extension-httpfs package has no .duckdb_extension file")
    return str(found)


def open_lake(layout: Layout | None = None, conn_id: str = S3_CONN_ID) -> LocalLake:
    """The lake of this process's ``LAKEHOUSE_STORAGE_URL`` (local disk unless it is ``s3://...``)."""
    layout = layout or Layout.from_env()
    url = storage_url()
    if not url.is_s3:
        if url.path is not None and url.path != layout.root:
            raise ConfigError(
                f"{STORAGE_URL_ENV}={str(url.path)!r} names a local folder other than LAKEHOUSE_DATA_DIR "
                f"({layout.root}); for a local lake set LAKEHOUSE_DATA_DIR instead"
            )
        return LocalLake(layout)
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from lakehouse.publish import find_connection

    _check_apart_from_publish(url)

    if find_connection(conn_id) is None:
        raise ConfigError(f"{STORAGE_URL_ENV}={os.environ[STORAGE_URL_ENV]!r} needs the Airflow connection {conn_id!r}")
    return S3Lake(layout, url, S3Hook(aws_conn_id=conn_id).get_conn(), conn_id)


SILVER_VIEWS_SCHEMA = "lake_silver"


def dbt_lake_env(layout: Layout, database: Path) -> dict[str, str]:
    """Make silver readable by dbt; return the environment a dbt run needs for this lake.

    Creates, in the dbt DuckDB file ``database``, one view ``lake_silver.<table>`` per silver Delta
    table that exists: DuckDB's ``delta_scan`` of the table's current version, unsigned ids cast back
    from Delta's DECIMAL(20,0) (lakehouse/delta.py), so a build reads one committed version of each
    table, never a day being written. The sources read those views
    (dbt_project/models/staging/appmetrica/_appmetrica__sources.yml). Returns the path of the delta
    extension from the ``duckdb-extension-delta`` wheel (``LAKEHOUSE_DUCKDB_DELTA``) and, on S3, the
    variables that select the profile's ``s3`` target: httpfs from the ``duckdb-extension-httpfs``
    wheel and the S3 secret from the connection (as ``DBT_ENV_SECRET_*``, which dbt scrubs from its logs).
    """
    import duckdb

    from lakehouse.delta import delta_extension, duckdb_connect_lake, locate, open_table, scan_sql
    from transforms.silver.schemas import SILVER_TABLES

    open_lake(layout)  # validates LAKEHOUSE_STORAGE_URL (and that the lake on S3 is apart from the publish target)
    locations = {t: locate(f"silver/{t}", layout) for t in SILVER_TABLES}
    present = {t: loc for t, loc in locations.items() if open_table(loc) is not None}
    if len(present) < len(locations):
        log.info(
            "silver tables not in the lake yet (no view for dbt): %s", ", ".join(sorted(set(locations) - set(present)))
        )
    database.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(database)) as con:
        duckdb_connect_lake(con, next(iter(locations.values())))
        con.execute(f"create schema if not exists {SILVER_VIEWS_SCHEMA}")
        for table, loc in present.items():
            con.execute(
                f"create or replace view {SILVER_VIEWS_SCHEMA}.{table} as {scan_sql(loc, SILVER_TABLES[table].schema)}"
            )
    env = {"LAKEHOUSE_DUCKDB_DELTA": delta_extension()}
    url = storage_url()
    if not url.is_s3:
        return env
    log.info("dbt reads silver from %s through delta_scan over httpfs", url.url("silver"))
    options = next(iter(locations.values())).storage_options
    secret = _dbt_secret(options)
    env |= {
        "LAKEHOUSE_DBT_TARGET": "s3",
        "LAKEHOUSE_DUCKDB_HTTPFS": httpfs_extension(),
        "DBT_ENV_SECRET_LAKE_S3_KEY_ID": secret["key_id"],
        "DBT_ENV_SECRET_LAKE_S3_SECRET": secret["secret"],
        "LAKEHOUSE_S3_REGION": secret["region"],
    }
    if "endpoint" in secret:
        env |= {"LAKEHOUSE_S3_ENDPOINT": secret["endpoint"], "LAKEHOUSE_S3_USE_SSL": secret["use_ssl"],
                "LAKEHOUSE_S3_URL_STYLE": secret["url_style"]}  # fmt: skip
    return env


def _dbt_secret(options: dict[str, str]) -> dict[str, str]:
    """The profile's S3 secret settings from deltalake's storage options (holds the secret key)."""
    from urllib.parse import urlsplit

    secret = {"key_id": options["AWS_ACCESS_KEY_ID"], "secret": options["AWS_SECRET_ACCESS_KEY"],
              "region": options.get("AWS_REGION", "us-east-1")}  # fmt: skip
    if options.get("AWS_ENDPOINT_URL"):
        parts = urlsplit(options["AWS_ENDPOINT_URL"])
        secret |= {"endpoint": parts.netloc, "use_ssl": str(parts.scheme == "https").lower(), "url_style": "path"}
    return secret


def silver_present(layout: Layout, table: str = "events_part") -> bool:
    """Whether the lake holds the silver Delta table ``table`` (on local disk or S3; its days may be empty)."""
    from lakehouse.delta import locate, open_table

    return open_table(locate(f"silver/{table}", layout)) is not None
