"""Where the features are read from: the gold Delta tables of the lake, or the published gold on S3.

A :class:`FeatureSource` names the lake's gold (by default: ``$LAKEHOUSE_DATA_DIR/gold``, or the
lake on S3 when ``LAKEHOUSE_STORAGE_URL`` says so), a gold folder of Delta tables, or a publish
location (``s3://bucket/prefix``, the layout ``lakehouse.publish`` writes). It loads the feature
registry and makes a mart readable in a DuckDB connection as a view. The gold Delta tables can be
read as they were at an earlier version or time (``as_of``, Delta time travel); the published copy
has only its latest publish.

S3 is read with the ``lakehouse_s3`` Airflow connection's credentials (``login``/``password``,
``extra.endpoint_url``/``region_name``; none = the default AWS chain). DuckDB's ``httpfs``
extension is used when it is already installed (it is downloaded from DuckDB's own extension site,
which an offline machine cannot reach, and no PyPI package ships it for DuckDB 2.x); otherwise
the mart's Parquet objects are read with pyarrow's ``S3FileSystem`` and handed to DuckDB as an
Arrow table. ``FeatureSource.s3_reader`` says which path was taken. No credential is ever put in
a log line, an exception text or a returned value.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakehouse.settings import DEFAULT_S3_PREFIX, ConfigError, Layout, check_name
from transforms.feature_registry import REGISTRY_DIR, REGISTRY_JSON, check_registry, read_registry

log = logging.getLogger(__name__)

S3_CONN_ID = "lakehouse_s3"
_S3_URI_RE = re.compile(r"^s3://(?P<bucket>[^/]+)(?:/(?P<prefix>.*?))?/?$")


class FeatureError(ValueError):
    """A feature request is invalid (unknown feature, bad entity rows, missing registry); the message says why."""


@dataclass(frozen=True)
class S3Credentials:
    """What pyarrow / DuckDB need to reach the bucket (from the Airflow connection)."""

    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    endpoint_url: str | None = None
    region: str | None = None

    @classmethod
    def from_connection(cls, conn_id: str = S3_CONN_ID) -> S3Credentials:
        """Read the Airflow connection ``conn_id`` (env ``AIRFLOW_CONN_*`` or the metadata DB)."""
        from lakehouse.publish import find_connection

        conn = find_connection(conn_id)
        if conn is None:
            raise ConfigError(f"reading features from S3 needs the Airflow connection {conn_id!r}; it does not exist")
        extra = conn.extra_dejson or {}
        return cls(
            access_key=conn.login or None,
            secret_key=conn.password or None,
            endpoint_url=extra.get("endpoint_url") or None,
            region=extra.get("region_name") or None,
        )


@dataclass
class FeatureSource:
    """The gold Delta tables (``gold_dir``; ``lake``: the lake's own, wherever it lives) or published gold on S3
    (``bucket`` + ``prefix``). ``as_of``: read every gold table at that version or aware time."""

    gold_dir: Path | None = None
    lake: bool = False
    as_of: int | dt.datetime | None = None
    bucket: str | None = None
    prefix: str = DEFAULT_S3_PREFIX
    credentials: S3Credentials | None = field(default=None, repr=False)
    s3_reader: str | None = None  # "httpfs" or "pyarrow" once an S3 mart was read

    @classmethod
    def resolve(cls, source: str | Path | FeatureSource | None = None, *, conn_id: str = S3_CONN_ID) -> FeatureSource:
        """``None`` or ``"local"``: ``$LAKEHOUSE_DATA_DIR/gold``; a path: that gold folder;
        ``"s3"``: ``s3://$LAKEHOUSE_S3_BUCKET/$LAKEHOUSE_S3_PREFIX``; ``"s3://bucket/prefix"``: there.
        S3 sources read the credentials of the Airflow connection ``conn_id``."""
        if isinstance(source, FeatureSource):
            return source
        if source is None or source == "local":
            return cls(gold_dir=Layout.from_env().gold, lake=True)
        if isinstance(source, Path):
            return cls(gold_dir=source)
        if not isinstance(source, str) or not source:
            raise ConfigError(f"feature source must be 'local', 's3', s3://bucket/prefix or a folder, got {source!r}")
        if source == "s3":
            bucket = os.environ.get("LAKEHOUSE_S3_BUCKET")
            if not bucket:
                raise ConfigError("feature source 's3' needs LAKEHOUSE_S3_BUCKET")
            prefix = os.environ.get("LAKEHOUSE_S3_PREFIX") or DEFAULT_S3_PREFIX
        elif source.startswith("s3://"):
            match = _S3_URI_RE.match(source)
            if not match:
                raise ConfigError(f"feature source {source!r} is not s3://bucket/prefix")
            bucket, prefix = match["bucket"], match["prefix"] or DEFAULT_S3_PREFIX
        else:
            return cls(gold_dir=Path(source).expanduser().resolve())
        from lakehouse.publish import validate_bucket, validate_prefix

        validate_bucket(bucket)
        validate_prefix(prefix)
        return cls(bucket=bucket, prefix=prefix, credentials=S3Credentials.from_connection(conn_id))

    @property
    def is_s3(self) -> bool:
        return self.bucket is not None

    def describe(self) -> str:
        """Where the source points (never any credential)."""
        return f"s3://{self.bucket}/{self.prefix}" if self.is_s3 else str(self.gold_dir)

    # ------------------------------------------------------------------ registry

    def registry(self) -> dict[str, Any]:
        """The published feature registry (``_registry/feature_registry.json``)."""
        if not self.is_s3:
            assert self.gold_dir is not None
            if self.lake:  # on a lake in S3 the registry is committed there: bring it here first
                from lakehouse.storage import open_lake

                open_lake().hydrate(f"gold/{REGISTRY_DIR}")
            return read_registry(self.gold_dir / REGISTRY_DIR / REGISTRY_JSON)
        # Object names carry a content hash (lakehouse/publish.py): follow latest.json to the registry object.
        listed = [e["key"] for e in self.latest_manifest().get("registry", []) if e["key"].endswith(".json")]
        if not listed:
            raise FeatureError(f"s3://{self.bucket}/{self.prefix}/_manifests/latest.json lists no feature registry")
        key = listed[0]
        data = self.read_s3_bytes(key)
        try:
            return check_registry(json.loads(data), where=f"s3://{self.bucket}/{key}")
        except ValueError as exc:
            raise FeatureError(f"s3://{self.bucket}/{key} is not a feature registry: {exc}") from exc

    # ------------------------------------------------------------------ S3 access

    def latest_manifest(self) -> dict[str, Any]:
        """The last complete publish (``<prefix>/_manifests/latest.json``): every object it lists is in place."""
        key = f"{self.prefix}/_manifests/latest.json"
        try:
            manifest = json.loads(self.read_s3_bytes(key))
        except ValueError as exc:
            raise FeatureError(f"s3://{self.bucket}/{key} is not a publish manifest: {exc}") from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("objects"), list):
            raise FeatureError(f"s3://{self.bucket}/{key} is not a publish manifest (no objects list)")
        return manifest

    def published_keys(self, mart: str) -> list[str]:
        """The keys of ``mart``'s objects in the last complete publish (never a half-published one)."""
        return sorted(o["key"] for o in self.latest_manifest()["objects"] if o.get("mart") == mart)

    def _keys_or_fail(self, mart: str, base: str) -> list[str]:
        keys = self.published_keys(mart)
        if not keys:
            raise FeatureError(f"gold mart {mart!r} has no Parquet objects under s3://{self.bucket}/{base}/")
        return keys

    def pyarrow_filesystem(self) -> Any:
        """A pyarrow S3FileSystem for this source's bucket."""
        from pyarrow import fs

        creds = self.credentials or S3Credentials()
        kwargs: dict[str, Any] = {"region": creds.region or "us-east-1"}
        if creds.access_key and creds.secret_key:
            kwargs.update(access_key=creds.access_key, secret_key=creds.secret_key)
        if creds.endpoint_url:
            scheme, _, rest = creds.endpoint_url.partition("://")
            kwargs.update(endpoint_override=rest.rstrip("/") if rest else scheme, scheme=scheme if rest else "https")
        return fs.S3FileSystem(**kwargs)

    def read_s3_bytes(self, key: str) -> bytes:
        """One object's bytes; FeatureError naming the key when it cannot be read."""
        filesystem = self.pyarrow_filesystem()
        try:
            with filesystem.open_input_stream(f"{self.bucket}/{key}") as stream:
                return stream.read()
        except (OSError, ValueError) as exc:
            raise FeatureError(f"cannot read s3://{self.bucket}/{key}: {self.scrub(exc)}") from None

    def scrub(self, exc: BaseException) -> str:
        """An exception's text with the connection's secrets blanked out (for error messages)."""
        text = f"{type(exc).__name__}: {exc}"
        creds = self.credentials or S3Credentials()
        for secret in (creds.secret_key, creds.access_key):
            if secret:
                text = text.replace(secret, "***")
        return text

    def s3_etag(self, key: str) -> str | None:
        """A cheap change marker of one object (size + mtime), or None when it does not exist."""
        from pyarrow import fs

        info = self.pyarrow_filesystem().get_file_info(f"{self.bucket}/{key}")
        if info.type == fs.FileType.NotFound:
            return None
        return f"{info.size}:{info.mtime_ns}"

    def _try_httpfs(self, con: Any) -> bool:
        """Load DuckDB's httpfs (only if already installed) and register the S3 secret; False if unavailable."""
        import duckdb

        try:
            con.execute("load httpfs")
        except duckdb.Error:
            return False
        creds = self.credentials or S3Credentials()
        if not (creds.access_key and creds.secret_key):
            return False  # the default AWS chain needs the aws extension too; pyarrow handles it
        options = ["type s3", "key_id ?", "secret ?", "region ?"]
        params: list[Any] = [creds.access_key, creds.secret_key, creds.region or "us-east-1"]
        if creds.endpoint_url:
            scheme, _, rest = creds.endpoint_url.partition("://")
            options += ["endpoint ?", "url_style 'path'", f"use_ssl {'true' if scheme == 'https' else 'false'}"]
            params.append(rest.rstrip("/"))
        try:
            con.execute(f"create or replace temporary secret lakehouse_features_s3 ({', '.join(options)})", params)
        except duckdb.Error:
            log.warning("DuckDB httpfs is loaded but the S3 secret could not be created; reading with pyarrow")
            return False
        return True

    # ------------------------------------------------------------------ marts

    def mart_location(self, mart: str) -> Any:
        """The Delta table of ``mart`` (a :class:`lakehouse.delta.DeltaLocation`; not for a published source)."""
        from lakehouse.delta import DeltaLocation, locate

        check_name(mart, what="gold mart")
        assert self.gold_dir is not None
        if self.lake:  # the lake's table: under gold_dir on local disk, or in the lake on S3
            return locate(f"gold/{mart}", Layout(self.gold_dir.parent))
        return DeltaLocation(f"gold/{mart}", str(self.gold_dir / mart))

    def mart_version(self, mart: str) -> int | None:
        """The latest version of ``mart``'s Delta table (None when it has none): what a cache can watch."""
        from lakehouse.delta import open_table

        table = open_table(self.mart_location(mart))
        return None if table is None else table.version()

    def register_mart(self, con: Any, mart: str, columns: list[str], view: str) -> Any:
        """Create view ``view`` over ``mart`` (only ``columns``) in the DuckDB connection ``con``.

        Returns the Delta table read (at ``as_of`` when set), or None for a published source.
        """
        check_name(mart, what="gold mart")
        check_name(view, what="view name")
        select = ", ".join(_quote(c) for c in columns)
        if not self.is_s3:
            from lakehouse.delta import register_duckdb

            loc = self.mart_location(mart)
            try:
                table = register_duckdb(con, loc, view, as_of=self.as_of, columns=columns)
            except ConfigError as exc:
                raise FeatureError(str(exc)) from None
            if table is None:
                raise FeatureError(f"gold mart {mart!r} has no Delta table at {loc.uri}: build gold first")
            return table
        if self.as_of is not None:
            raise FeatureError("as_of reads the gold Delta tables (time travel); a published source has only its "
                               "latest publish")  # fmt: skip
        base = f"{self.prefix}/{mart}"
        if self.s3_reader != "pyarrow" and self._try_httpfs(con):
            self.s3_reader = "httpfs"
            urls = ", ".join(_sql_string(f"s3://{self.bucket}/{k}") for k in self._keys_or_fail(mart, base))
            con.execute(
                f"create or replace temporary view {view} as select {select} "  # noqa: S608 - validated names
                f"from read_parquet([{urls}], hive_partitioning = true)"
            )
            return None
        import pyarrow.dataset as ds

        self.s3_reader = "pyarrow"
        try:
            dataset = ds.dataset(
                [f"{self.bucket}/{k}" for k in self._keys_or_fail(mart, base)],
                filesystem=self.pyarrow_filesystem(),
                format="parquet",
                partitioning="hive",
                partition_base_dir=f"{self.bucket}/{base}",
            )
            table = dataset.to_table(columns=columns)
        except (OSError, ValueError) as exc:
            raise FeatureError(f"cannot read gold mart s3://{self.bucket}/{base}/: {self.scrub(exc)}") from None
        if table.num_rows == 0 and not dataset.files:
            raise FeatureError(f"gold mart {mart!r} has no Parquet objects under s3://{self.bucket}/{base}/")
        con.register(f"{view}__arrow", table)
        con.execute(f"create or replace temporary view {view} as select * from {view}__arrow")  # noqa: S608
        return None


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
