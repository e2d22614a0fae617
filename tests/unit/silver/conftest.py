"""Write bronze partitions by hand, byte for byte, so silver sees exactly the quirks under test."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from silver_helpers import DAY, csv_bytes

from ingest.appmetrica.resources import RESOURCES, requested_fields
from lakehouse.settings import Layout


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path / "data")


@pytest.fixture
def write_bronze(layout: Layout) -> Callable[..., Path]:
    """write_bronze(resource, body_bytes_or_rows, day=DAY, gz=True, attributes=()): one bronze partition with a
    manifest; ``attributes`` are the custom profile attributes requested besides the documented fields."""

    def _write(
        resource: str,
        body: bytes | list[dict[str, str]],
        day: dt.date = DAY,
        gz: bool = True,
        attributes: tuple[str, ...] = (),
    ) -> Path:
        fields = list(requested_fields(RESOURCES[resource], attributes))
        if isinstance(body, list):
            body = csv_bytes(fields, [[r[f] for f in fields] for r in body])
        folder = layout.bronze(resource, day)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{resource}.part-00000-of-00001.csv" + (".gz" if gz else "")
        (folder / name).write_bytes(gzip.compress(body, mtime=0) if gz else body)
        manifest = {"resource": resource, "date": day.isoformat(), "fields": fields, "parts": [{"file": name}]}
        (folder / "_manifest.json").write_text(json.dumps(manifest))
        return folder / name

    return _write


@pytest.fixture
def empty_bronze(write_bronze: Callable[..., Path]) -> Callable[..., None]:
    """Give every resource an export with a header and no rows (tests then overwrite the ones they need)."""

    def _fill(day: dt.date = DAY) -> None:
        for name in RESOURCES:
            write_bronze(name, [], day=day)

    return _fill
