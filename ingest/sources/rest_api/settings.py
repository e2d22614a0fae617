"""Constants of the declarative REST API source (the per-source options live in sources.yml)."""

from __future__ import annotations

USER_AGENT = "appmetrica-lakehouse-sources/0.1"
MANIFEST_NAME = "_manifest.json"
MANIFEST_VERSION = 1
PAGE_FILE = "page-{number:05d}.json"
# Statuses that mean "try again later" (and may carry Retry-After); other 4xx fail at once.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
BODY_SNIPPET = 300
