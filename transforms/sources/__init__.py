"""Bronze -> silver for declared sources (ingest/sources/sources.yml). Entry point: :func:`build_source_silver`."""

from transforms.sources.silver import SourceSilverError, build_source_silver, silver_schema

__all__ = ["SourceSilverError", "build_source_silver", "silver_schema"]
