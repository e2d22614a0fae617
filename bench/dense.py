"""``python -m bench.dense SRC_DAY DST_DAY``: a benchmark day with denser ``event_json``.

Copies the bronze of a benchmark day (``bench.run.ensure_day``'s folder) and rewrites its events export so that
every ``event_json`` is a nested object of 24 leaves (nested objects, an array, numbers, booleans, a null, text
with commas, quotes and Cyrillic), about 440 characters, against 3.5 leaves in the generator's rows. Every other
field, the row count and the exact duplicates stay as they were. Silver's JSON work grows with the leaves; this
measures it on a heavier shape than the demo generator's (``bench.paths silver DST_DAY 2026-11-01``).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

EVENTS = "bronze/appmetrica/events/date=2026-11-01/events.part-00000-of-00001.csv.gz"
DENSE_JSON = """json_object(
    'screen', json_object('name', event_name, 'params', json_object('tab', length(event_name) % 5,
        'sort', 'price_asc', 'filters', json_object('in_stock', true, 'brand', 'Демо, "бренд"'))),
    'item', json_object('id', 'sku_' || (hash(appmetrica_device_id) % 5000)::varchar,
        'price', round((hash(event_datetime) % 100000) / 100.0, 2), 'qty', (hash(session_id) % 4)::int,
        'tags', ['promo', 'осень']),
    'ab', json_object('group', 'b', 'exp_1', true, 'exp_2', false, 'exp_3', null),
    'ctx', json_object('battery', (hash(event_name) % 100)::int, 'net', 'wifi', 'lat', 55.75, 'lon', 37.62,
        'locale', 'ru_RU', 'build', 1234, 'dark', true, 'note', 'line, with "quotes"'),
    'source', 'push', 'duration_ms', (hash(event_datetime) % 60000)::int, 'score', 99.5)::varchar"""


def make(src: Path, dst: Path) -> dict[str, float]:
    """Write the dense day under ``dst`` from the day under ``src``; return its rows and mean JSON length."""
    import duckdb

    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src / "bronze", dst / "bronze")
    events = dst / EVENTS
    partial = events.with_name(events.name + ".partial.csv.gz")
    con = duckdb.connect()
    source = f"read_csv('{events}', all_varchar = true, header = true)"
    columns = [r[0] for r in con.execute(f"describe select * from {source}").fetchall()]  # noqa: S608 - our paths
    select = ", ".join(f"{DENSE_JSON} as event_json" if c == "event_json" else f'"{c}"' for c in columns)
    con.execute(f"copy (select {select} from {source}) to '{partial}' (header, compression gzip)")  # noqa: S608
    partial.replace(events)
    rows, mean = con.execute(f"select count(*), avg(length(event_json)) from {source}").fetchone()  # noqa: S608
    return {"rows": rows, "mean_event_json_chars": round(mean, 1)}


if __name__ == "__main__":
    print(make(Path(sys.argv[1]), Path(sys.argv[2])))
