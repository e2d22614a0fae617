"""Constants of the CSV drop source (the per-source options live in sources.yml)."""

from __future__ import annotations

MANIFEST_NAME = "_manifest.json"
MANIFEST_VERSION = 1
INBOX_DIR = "inbox"
# Rejected inbox files go to quarantine/inbox/<source>/date=YYYY-MM-DD/ with a <file>.reason.json beside them.
QUARANTINE_DIR = "inbox"
LOCK_NAME = ".pickup.lock"
# Where objects of an S3 inbox are downloaded to during a pick-up (inside the local inbox folder, left alone there).
S3_DOWNLOAD_DIR = ".s3-download"
# Names a producer uses while still writing; such files are left alone until renamed.
IN_PROGRESS_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".filepart")
MAX_PROBLEMS_LISTED = 5
CSV_FIELD_SIZE_LIMIT = 1 << 24
