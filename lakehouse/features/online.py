"""The latest feature vector of one device, served from memory.

:class:`LatestFeatureStore` loads, once, the latest ``device_features_daily`` row of every device
(one DuckDB query over the gold Delta table: ``qualify row_number() over (partition by device
order by feature_date desc) = 1``) into a sorted id array; a lookup is then a binary search. It
reloads when gold changes: for the gold tables it compares the mart's table version and the
registry file at most every ``check_seconds``; for published gold on S3 it compares the registry object and
``_manifests/latest.json`` (written last by every publish) at most every ``check_seconds``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from lakehouse.features.store import FeatureError, FeatureSource

FEATURE_MART = "device_features_daily"
_MAX_UINT64 = 2**64 - 1


def parse_device_id(value: str | int) -> int:
    """A device id from a path segment or an int: 1-20 digits within the unsigned 64-bit range."""
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= _MAX_UINT64:
        raise FeatureError(f"appmetrica_device_id must be within the unsigned 64-bit range, got a {value.bit_length()}"
                           "-bit integer")  # fmt: skip
    text = str(value).strip() if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not text.isdigit() or not text.isascii() or len(text) > 20:
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:24]}... ({len(str(value))} characters)"
        raise FeatureError(f"appmetrica_device_id must be 1-20 digits, got {shown}")
    number = int(text)
    if number > _MAX_UINT64:
        raise FeatureError(f"appmetrica_device_id {value!r} is above the unsigned 64-bit range")
    return number


def json_value(value: Any) -> Any:
    """A feature value the way JSON carries it: an exact decimal (a money amount) as fixed-point text, since a JSON
    number would turn into a float on the way; anything else as it is."""
    return format(value, "f") if isinstance(value, Decimal) else value


@dataclass(frozen=True)
class _Snapshot:
    marker: Any
    feature_set_version: str
    columns: tuple[str, ...]  # feature columns, registry order
    ids: Any  # numpy uint64, sorted
    feature_dates: list[dt.date]
    values: dict[str, list[Any]]
    loaded_at: float


class LatestFeatureStore:
    """Latest-feature lookups over gold (local or S3), cached in memory and refreshed when gold changes."""

    def __init__(self, source: str | Path | FeatureSource | None = None, *, check_seconds: float = 2.0) -> None:
        self._source_arg = source
        self._source: FeatureSource | None = None
        self.check_seconds = check_seconds
        self._snapshot: _Snapshot | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    @property
    def source(self) -> FeatureSource:
        if self._source is None:
            self._source = FeatureSource.resolve(self._source_arg)
        return self._source

    def _marker(self) -> Any:
        source = self.source
        if source.is_s3:
            # latest.json changes with every publish; the objects it lists carry content hashes.
            return (source.s3_etag(f"{source.prefix}/_manifests/latest.json"),)
        assert source.gold_dir is not None
        registry = source.gold_dir / "_registry" / "feature_registry.json"
        stat = registry.stat() if registry.exists() else None
        return (stat and (stat.st_size, stat.st_mtime_ns), source.mart_version(FEATURE_MART))

    def _load(self, marker: Any) -> _Snapshot:
        import duckdb
        import numpy as np

        source = self.source
        registry = source.registry()
        entries = [f for f in registry["features"] if f["model"] == FEATURE_MART]
        if not entries:
            raise FeatureError(f"the feature registry has no {FEATURE_MART} columns")
        key = entries[0]["entity_key"]
        stamp = entries[0]["timestamp_column"]
        columns = tuple(f["column"] for f in entries if f["role"] == "feature")
        with duckdb.connect() as con:
            source.register_mart(con, FEATURE_MART, [key, stamp, *columns], "latest_raw")
            table = con.sql(
                f'select "{key}" as id, cast("{stamp}" as date) as feature_date, '  # noqa: S608 - registry names
                + ", ".join(f'"{c}"' for c in columns)
                + f' from latest_raw qualify row_number() over (partition by "{key}" order by "{stamp}" desc) = 1 '
                "order by id"
            ).to_arrow_table()
        return _Snapshot(
            marker=marker,
            feature_set_version=registry["feature_set_version"],
            columns=columns,
            ids=np.asarray(table.column("id").to_numpy(), dtype=np.uint64),
            feature_dates=table.column("feature_date").to_pylist(),
            values={c: table.column(c).to_pylist() for c in columns},
            loaded_at=time.time(),
        )

    def snapshot(self) -> _Snapshot:
        """The current in-memory snapshot, (re)loaded when gold changed since the last check."""
        now = time.monotonic()
        snap = self._snapshot
        if snap is not None and now - self._checked_at < self.check_seconds:
            return snap
        with self._lock:
            snap = self._snapshot
            if snap is not None and time.monotonic() - self._checked_at < self.check_seconds:
                return snap
            marker = self._marker()
            if snap is None or marker != snap.marker:
                snap = self._load(marker)
                self._snapshot = snap
            self._checked_at = time.monotonic()
            return snap

    def lookup(self, device_id: str | int) -> dict[str, Any] | None:
        """The latest feature vector of a device, or None when gold has no row for it.

        Returns ``{"appmetrica_device_id": str, "feature_date": "YYYY-MM-DD", "feature_set_version":
        str, "features": {column: value}}`` (the id as text: JSON numbers above 2**53 lose digits).
        """
        import numpy as np

        number = parse_device_id(device_id)
        snap = self.snapshot()
        target = np.uint64(number)
        index = int(np.searchsorted(snap.ids, target))
        if index >= len(snap.ids) or snap.ids[index] != target:
            return None
        return {
            "appmetrica_device_id": str(number),
            "feature_date": snap.feature_dates[index].isoformat(),
            "feature_set_version": snap.feature_set_version,
            "features": {c: snap.values[c][index] for c in snap.columns},
        }

    def device_ids(self, limit: int | None = None) -> list[int]:
        """Ids of devices that have features (the first ``limit`` in id order)."""
        ids = self.snapshot().ids
        return [int(v) for v in (ids if limit is None else ids[:limit])]


def lookup_latency(
    n: int = 1000, *, source: str | Path | FeatureSource | None = None, through: str = "http", seed: int = 0
) -> dict[str, Any]:
    """Time ``n`` latest-feature lookups and report percentiles in milliseconds (for ``make bench``).

    ``through="http"`` sends ``GET /{id}`` to the FastAPI app in-process (routing, validation, JSON;
    Airflow's auth dependency left out), ``"store"`` calls :meth:`LatestFeatureStore.lookup`.
    Device ids are drawn (seeded) from the devices with features, plus 10 % unknown ids (404s).
    One untimed warm-up lookup loads the snapshot first.
    """
    import random
    import statistics

    if through not in {"http", "store"}:
        raise ValueError(f"through must be 'http' or 'store', got {through!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    store = LatestFeatureStore(source, check_seconds=3600)
    known = store.device_ids()
    if not known:
        raise FeatureError("gold has no device with features: nothing to look up")
    rng = random.Random(seed)
    ids = [str(rng.choice(known)) if rng.random() >= 0.1 else str(rng.randrange(1, 2**64)) for _ in range(n)]
    if through == "http":
        from fastapi.testclient import TestClient

        from lakehouse.features.api import create_app

        client = TestClient(create_app(store, require_auth=False))

        def call(device: str) -> None:
            response = client.get(f"/{device}")
            if response.status_code not in (200, 404):
                raise RuntimeError(f"lookup of {device} answered {response.status_code}: {response.text[:200]}")

    else:

        def call(device: str) -> None:
            store.lookup(device)

    httpx_logger = logging.getLogger("httpx")  # logs every request at INFO: not part of a lookup's cost
    level = httpx_logger.level
    httpx_logger.setLevel(logging.WARNING)
    try:
        call(ids[0])
        timings = []
        for device in ids:
            started = time.perf_counter()
            call(device)
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        httpx_logger.setLevel(level)
    timings.sort()

    def pct(p: float) -> float:
        return round(timings[min(len(timings) - 1, int(p * len(timings)))], 4)

    return {
        "through": through,
        "lookups": n,
        "devices": len(known),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(timings[-1], 4),
        "mean_ms": round(statistics.fmean(timings), 4),
        "source": store.source.describe(),
    }
