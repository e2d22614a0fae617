"""Declared sources beyond AppMetrica: REST/JSON APIs and CSV drops, from ``sources.yml``.

Entry points: :func:`ingest.sources.rest_api.rest_api_source` and
:func:`ingest.sources.csv_drop.csv_drop_source`; declarations: :func:`load_declarations`.
"""

from __future__ import annotations

from ingest.sources.config import SourceConfigError, SourceSpec, get_source, load_declarations

__all__ = ["SourceConfigError", "SourceSpec", "get_source", "load_declarations"]
