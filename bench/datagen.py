"""Deterministic synthetic AppMetrica events exports for the benchmark, at any size.

The demo generator (``ingest.appmetrica.demo.generator``) simulates a population day by day in
Python; it is realistic (every events field, nested ``event_json`` with quotes, commas, line
breaks and non-ASCII text, 0.5 % exact duplicates, one >128 KiB field on some days) but holds a
day in memory and makes ~30k rows/s. To reach 1M-50M rows a day, a *base block* of demo rows is
generated once and then repeated as *tiles*: each tile is the base block with its device, session,
installation and profile ids moved to a tile-specific range, so tiles are different devices with
the same behaviour. The CSV text of a tile is built with Arrow string kernels (no Python loop per
row) and written as gzip, exactly the bytes a Logs API export would hold (header, minimal quoting,
``\\n`` line ends, as ``write_csv`` writes them).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.appmetrica.demo.generator import generate_rows, write_csv
from ingest.appmetrica.resources import RESOURCES

APPLICATION_ID = "4242"
TZ = "Europe/Moscow"
BASE_DEVICES = 40_000  # ~124k event rows per base block
# Fields carrying ids that must differ between tiles (adjacent in the events field list).
_ID_FIELDS = ("session_id", "installation_id", "profile_id", "appmetrica_device_id")
_U64 = 2**64
_DEVICE_STEP = 0x9E3779B97F4A7C15  # odd, so tiles map device ids to distinct values mod 2**64
_SESSION_STEP = 0xC2B2AE3D27D4EB4F


def _base_block(day: dt.date, devices: int) -> tuple[bytes, pa.Table, int]:
    """The base rows as CSV lines split around the id fields: (header, table of parts, rows)."""
    fields = list(RESOURCES["events"].fields)
    first = fields.index(_ID_FIELDS[0])
    assert fields[first : first + len(_ID_FIELDS)] == list(_ID_FIELDS)
    rows = generate_rows("events", day, application_id=APPLICATION_ID, tz=TZ, devices=devices)
    heads, tails = [], []
    ids: dict[str, list[str]] = {f: [] for f in _ID_FIELDS}
    for row in rows:
        buf = io.StringIO()
        writer = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow([row[f] for f in fields[:first]])
        heads.append(buf.getvalue()[:-1])
        buf = io.StringIO()
        writer = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow([row[f] for f in fields[first + len(_ID_FIELDS) :]])
        tails.append(buf.getvalue())
        for f in _ID_FIELDS:
            ids[f].append(row[f])
    header = io.StringIO()
    write_csv([], fields, header)
    table = pa.table(
        {
            "head": pa.array(heads, pa.large_string()),
            "tail": pa.array(tails, pa.large_string()),
            "session_id": pa.array([int(v) if v else None for v in ids["session_id"]], pa.uint64()),
            "installation_id": pa.array(ids["installation_id"], pa.large_string()),
            "profile_id": pa.array(ids["profile_id"], pa.large_string()),
            "appmetrica_device_id": pa.array([int(v) for v in ids["appmetrica_device_id"]], pa.uint64()),
        }
    )
    return header.getvalue().encode("utf-8"), table, len(rows)


def _shift(arr: pa.ChunkedArray, tile: int, step: int) -> pa.Array:
    """Add ``tile * step`` modulo 2**64 (wrapping uint64 addition) and render as decimal text."""
    offset = pa.scalar((tile * step) % _U64, pa.uint64())
    return pc.cast(pc.add(arr, offset), pa.large_string())


def _tile_text(base: pa.Table, tile: int) -> tuple[bytes, int]:
    """The CSV bytes of one tile (the base lines with tile-specific ids) and its distinct rows."""
    if tile == 0:
        sessions = pc.cast(base["session_id"], pa.large_string())
        devices = pc.cast(base["appmetrica_device_id"], pa.large_string())
        installs = base["installation_id"]
        profiles = base["profile_id"]
    else:
        sessions = _shift(base["session_id"], tile, _SESSION_STEP)
        devices = _shift(base["appmetrica_device_id"], tile, _DEVICE_STEP)
        tag = pa.scalar(f"{tile:06x}", pa.large_string())
        suffix = pa.scalar(f".t{tile}", pa.large_string())
        installs = pc.binary_join_element_wise(
            tag, pc.utf8_slice_codeunits(base["installation_id"], 6), pa.scalar("", pa.large_string())
        )
        tagged = pc.binary_join_element_wise(base["profile_id"], suffix, pa.scalar("", pa.large_string()))
        profiles = pc.if_else(pc.equal(base["profile_id"], ""), base["profile_id"], tagged)
    sessions = pc.fill_null(sessions, "")
    lines = pc.binary_join_element_wise(
        base["head"], sessions, installs, profiles, devices, base["tail"], pa.scalar(",", pa.large_string())
    )
    chunks = lines.chunks if isinstance(lines, pa.ChunkedArray) else [lines]
    out = []
    for chunk in chunks:
        _, offsets, data = chunk.buffers()
        bounds = np.frombuffer(offsets, dtype=np.int64)[chunk.offset : chunk.offset + len(chunk) + 1]
        out.append(data[int(bounds[0]) : int(bounds[-1])].to_pybytes())
    return b"".join(out), pc.count_distinct(lines).as_py()


def write_events_export(path: Path, rows: int, *, day: dt.date, base_devices: int = BASE_DEVICES) -> dict:
    """Write a gzip CSV events export of exactly ``rows`` rows to ``path`` (the last tile may be partial).

    Returns ``{"rows": n, "bytes": compressed size, "raw_bytes": uncompressed size, "tiles": k,
    "duplicates": exact duplicate rows in the file}``. Deterministic in (rows, day, base_devices).
    """
    header, base, base_rows = _base_block(day, base_devices)
    tiles = max(1, -(-rows // base_rows))
    distinct = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    raw = 0
    with open(tmp, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=1, mtime=0) as gz:
        gz.write(header)
        raw += len(header)
        for tile in range(tiles):
            last = rows - tile * base_rows
            text, n_distinct = _tile_text(base if last >= base_rows else base.slice(0, last), tile)
            gz.write(text)
            raw += len(text)
            distinct += n_distinct
    tmp.replace(path)
    return {"rows": rows, "bytes": path.stat().st_size, "raw_bytes": raw, "tiles": tiles, "duplicates": rows - distinct}


def write_bronze_day(root: Path, day: dt.date, rows: int, *, base_devices: int = BASE_DEVICES) -> dict:
    """A bronze day under ``root`` (a LAKEHOUSE_DATA_DIR): the events export of ``rows`` rows and
    header-only exports of the other resources, each with the manifest silver reads."""
    info: dict = {}
    for name in RESOURCES:
        folder = root / "bronze" / "appmetrica" / name / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        file = f"{name}.part-00000-of-00001.csv.gz"
        if name == "events":
            info = write_events_export(folder / file, rows, day=day, base_devices=base_devices)
            count = info["rows"]
        else:
            text = io.StringIO()
            write_csv([], RESOURCES[name].fields, text)
            (folder / file).write_bytes(gzip.compress(text.getvalue().encode(), mtime=0))
            count = 0
        manifest = {"resource": name, "date": day.isoformat(), "parts": [{"file": file, "rows": count}], "rows": count}
        (folder / "_manifest.json").write_text(json.dumps(manifest))
    return info


def write_generated_day(root: Path, day: dt.date, devices: int) -> dict[str, int]:
    """A bronze day under ``root`` straight from the demo generator (all four resources, no tiling)."""
    counts = {}
    for name, resource in RESOURCES.items():
        rows = generate_rows(name, day, application_id=APPLICATION_ID, tz=TZ, devices=devices)
        folder = root / "bronze" / "appmetrica" / name / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        file = f"{name}.part-00000-of-00001.csv.gz"
        text = io.StringIO()
        write_csv(rows, resource.fields, text)
        (folder / file).write_bytes(gzip.compress(text.getvalue().encode("utf-8"), compresslevel=1, mtime=0))
        manifest = {"resource": name, "date": day.isoformat(), "parts": [{"file": file, "rows": len(rows)}],
                    "rows": len(rows)}  # fmt: skip
        (folder / "_manifest.json").write_text(json.dumps(manifest))
        counts[name] = len(rows)
    return counts
