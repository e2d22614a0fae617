"""An S3 prefix as the inbox of a CSV drop source (``inbox: s3://<bucket>/<prefix>/`` in sources.yml).

The objects directly under the prefix are the inbox's files. :class:`S3Inbox` lists them (paginated,
so any number), downloads one into a local file, and removes one once the pick-up has written it to
bronze or quarantine; :meth:`CsvDropSource.pick_up <ingest.sources.csv_drop.CsvDropSource.pick_up>`
runs the same checks, bronze, quarantine and checksum dedup on the downloaded copy as on a local
inbox file. The client comes from Airflow's ``S3Hook`` and the source's ``connection`` (default
``lakehouse_s3``, as for publishing), so credentials never appear in the declaration or a message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.sources.config import SourceConfigError
from ingest.sources.csv_drop.helpers import left_alone, printable
from lakehouse.fsutil import atomic_file

log = logging.getLogger(__name__)

LIST_PAGE_SIZE = 1000  # keys per ListObjectsV2 request (S3's largest page)
_BLOCK = 1 << 20


class S3InboxError(RuntimeError):
    """Talking to the S3 inbox failed; the message names the object and the S3 error, never a secret."""


class ObjectChanged(S3InboxError):
    """The object is not the version that was listed (a producer replaced it meanwhile)."""


@dataclass(frozen=True)
class InboxObject:
    """One file of the inbox: its key, its name (the key under the prefix), size and ETag."""

    key: str
    name: str
    size: int
    etag: str


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class S3Inbox:
    """The objects directly under ``s3://<bucket>/<prefix>`` through a boto3 client."""

    def __init__(self, client: Any, bucket: str, prefix: str, page_size: int | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.page_size = page_size or LIST_PAGE_SIZE
        self.list_requests = 0

    @classmethod
    def from_connection(cls, conn_id: str, bucket: str, prefix: str) -> S3Inbox:
        """The inbox through ``S3Hook(aws_conn_id=conn_id)``; SourceConfigError when the connection is missing."""
        from lakehouse.publish import find_connection

        if find_connection(conn_id) is None:
            raise SourceConfigError(
                f"the S3 inbox s3://{bucket}/{prefix} needs the Airflow connection {conn_id!r} (type aws), "
                "which does not exist"
            )
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return cls(S3Hook(aws_conn_id=conn_id).get_conn(), bucket, prefix)

    def uri(self, key: str) -> str:
        """``s3://<bucket>/<key>``."""
        return f"s3://{self.bucket}/{key}"

    def list(self) -> list[InboxObject]:
        """The files to pick up, by name: direct children of the prefix, without names left alone
        (``.``/``_`` first, ``*.tmp``, ``*.part``, ...) and without sub-folders."""
        from botocore.exceptions import BotoCoreError, ClientError

        found: list[InboxObject] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix, Delimiter="/", PaginationConfig={"PageSize": self.page_size}
            )
            for page in pages:
                self.list_requests += 1
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(self.prefix) :]
                    if not name or left_alone(name):
                        continue
                    found.append(InboxObject(obj["Key"], name, int(obj["Size"]), str(obj["ETag"]).strip('"')))
        except (BotoCoreError, ClientError) as exc:
            raise S3InboxError(f"listing {self.uri(self.prefix)} failed: {type(exc).__name__}: {exc}") from exc
        return sorted(found, key=lambda o: o.name)

    def download(self, obj: InboxObject, dest: Path) -> None:
        """Write the listed version of ``obj`` to ``dest`` (atomically); ObjectChanged when it was replaced."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=obj.key, IfMatch=obj.etag)["Body"]
            with atomic_file(dest) as out:
                while block := body.read(_BLOCK):
                    out.write(block)
        except ClientError as exc:
            if _code(exc) in ("PreconditionFailed", "412", "NoSuchKey", "404"):
                raise ObjectChanged(f"{self.uri(obj.key)} changed or went away after it was listed") from exc
            raise S3InboxError(f"downloading {self.uri(obj.key)} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise S3InboxError(f"downloading {self.uri(obj.key)} failed: {type(exc).__name__}: {exc}") from exc
        size = dest.stat().st_size
        if size != obj.size:
            dest.unlink(missing_ok=True)
            raise ObjectChanged(f"{self.uri(obj.key)}: downloaded {size} bytes, listed {obj.size}")

    def remove(self, obj: InboxObject) -> bool:
        """Delete ``obj`` from the inbox if it is still the version picked up; False (and kept) otherwise."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=obj.key)
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return True  # already gone (a rerun after a kill, or removed by hand)
            raise S3InboxError(f"reading {self.uri(obj.key)} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise S3InboxError(f"reading {self.uri(obj.key)} failed: {type(exc).__name__}: {exc}") from exc
        if str(head.get("ETag", "")).strip('"') != obj.etag:
            log.warning("%s was replaced after it was picked up; the new version stays for the next pick-up",
                        printable(self.uri(obj.key)))  # fmt: skip
            return False
        try:
            self.client.delete_object(Bucket=self.bucket, Key=obj.key)
        except (BotoCoreError, ClientError) as exc:
            raise S3InboxError(f"deleting {self.uri(obj.key)} failed: {type(exc).__name__}: {exc}") from exc
        return True
