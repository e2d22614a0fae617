"""Bronze -> silver: the silver tables of docs/contracts.md, typed, deduplicated, traceable.

Public entry point: :func:`build_silver`.
"""

from transforms.silver.job import SilverError, build_silver

__all__ = ["SilverError", "build_silver"]
