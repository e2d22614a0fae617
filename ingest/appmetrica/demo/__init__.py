"""A local stand-in for the AppMetrica Logs API: a deterministic data generator and an HTTP server.

- :mod:`ingest.appmetrica.demo.generator`: ``generate_rows(resource, day, ...)`` and ``write_csv``.
- :mod:`ingest.appmetrica.demo.server`: ``DemoLogsApiServer`` (202 -> 200, 429, parts, gzip, faults).
- ``python -m ingest.appmetrica.demo --port 8765``: the server in the foreground.
"""

from __future__ import annotations

from ingest.appmetrica.demo.generator import generate_rows, write_csv
from ingest.appmetrica.demo.server import DemoLogsApiServer

__all__ = ["DemoLogsApiServer", "generate_rows", "write_csv"]
