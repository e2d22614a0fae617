"""Maintenance of the lake's Delta tables on S3 (moto's server over HTTP): found by listing, compacted, vacuumed
(orphans included) and checkpointed through the lakehouse_s3 connection.

Time passing is made as the store would show it: a commit's ``remove`` actions get an older deletion time (the
commit object is rewritten), and an orphan's ``LastModified`` is set back in moto's own backend, which runs in this
process.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto_s3 import ensure_bucket, s3_client, use_lakehouse_s3

from lakehouse.delta import delta_schema, duckdb_connect_lake, locate, read_table, replace_partition, scan_sql
from lakehouse.maintenance import lake_tables, maintain
from lakehouse.settings import Layout

pytestmark = pytest.mark.integration

BUCKET = "maintenance-it"
SCHEMA = pa.schema([("appmetrica_device_id", pa.uint64()), ("n", pa.int64()), ("date", pa.date32())])
D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


def _rows(day: dt.date, start: int, count: int) -> pa.Table:
    return pa.table({"appmetrica_device_id": [2**63 + start + i for i in range(count)],
                     "n": [start + i for i in range(count)], "date": [day] * count}, SCHEMA)  # fmt: skip


def _put_parquet(client, key: str, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    client.put_object(Bucket=BUCKET, Key=key, Body=sink.getvalue().to_pybytes())


def _age_object(key: str, days: int) -> None:
    """Set back the LastModified moto reports for ``key`` (its backend runs in this process)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    obj = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(BUCKET, key)
    obj.last_modified -= dt.timedelta(days=days)


def _age_removes(client, key: str, days: int) -> list[str]:
    body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    actions = [json.loads(line) for line in body.splitlines() if line.strip()]
    removed = []
    for action in actions:
        if "remove" in action:
            action["remove"]["deletionTimestamp"] -= days * 86_400_000
            removed.append(action["remove"]["path"])
    client.put_object(Bucket=BUCKET, Key=key, Body="\n".join(json.dumps(a) for a in actions).encode() + b"\n")
    return removed


def _objects(client, prefix: str) -> dict[str, str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"][len(prefix) :]: o["ETag"] for page in pages for o in page.get("Contents", [])}


def _sorted_rows(loc) -> list[tuple]:
    return sorted((r["date"], r["appmetrica_device_id"], r["n"]) for r in read_table(loc, schema=SCHEMA).to_pylist())


@pytest.fixture
def lake(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from deltalake import write_deltalake

    ensure_bucket(s3_endpoint, BUCKET)
    use_lakehouse_s3(monkeypatch, s3_endpoint, bucket=BUCKET, prefix="published", tmp_path=tmp_path)
    prefix = f"lake-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("LAKEHOUSE_STORAGE_URL", f"s3://{BUCKET}/{prefix}")
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path / "scratch"))
    monkeypatch.delenv("LAKEHOUSE_DELTA_RETENTION_HOURS", raising=False)
    client = s3_client(s3_endpoint)
    layout = Layout(tmp_path / "scratch")
    events = locate("silver/events_part", layout)
    replace_partition(events, _rows(D1, 0, 3), column="date", value=D1)  # v0
    replace_partition(events, _rows(D1, 10, 2), column="date", value=D1)  # v1: v0's file left ten days ago
    for i in range(3):  # v2-v4: small files pile up in D2
        write_deltalake(events.uri, _rows(D2, 20 + i, 1).cast(delta_schema(SCHEMA)), mode="append",
                        storage_options=events.storage_options)  # fmt: skip
    table_key = f"{prefix}/silver/events_part/"
    expired = _age_removes(client, f"{table_key}_delta_log/{1:020d}.json", days=10)
    _put_parquet(client, f"{table_key}date=2026-11-01/part-old-orphan.parquet", _rows(D1, 90, 1))
    _age_object(f"{table_key}date=2026-11-01/part-old-orphan.parquet", days=10)
    _put_parquet(client, f"{table_key}date=2026-11-02/part-fresh-orphan.parquet", _rows(D2, 91, 1))
    replace_partition(locate("gold/dim_devices", layout), _rows(D1, 0, 1), column="date", value=D1)
    _put_parquet(client, f"{prefix}/silver/crashes/date=2026-11-01/part-0.parquet", _rows(D1, 0, 1))  # no Delta log
    return {"client": client, "events": events, "table_key": table_key, "prefix": prefix,
            "expired": [*expired, "date=2026-11-01/part-old-orphan.parquet"]}  # fmt: skip


def test_s3_tables_are_found_compacted_vacuumed_and_checkpointed(lake) -> None:
    client, events, key = lake["client"], lake["events"], lake["table_key"]
    assert lake_tables() == ["silver/events_part", "gold/dim_devices"]
    rows = _sorted_rows(events)
    before = _objects(client, key)
    dry = {s["table"]: s for s in maintain(dry_run=True)}
    assert dry["silver/events_part"]["vacuumed"]["files"] == sorted(lake["expired"])
    assert dry["silver/events_part"]["compacted"]["would_compact"] == {"date=2026-11-02": 3}
    assert _objects(client, key) == before, "a dry run changed the bucket"

    summary = {s["table"]: s for s in maintain()}
    events_summary = summary["silver/events_part"]
    after = _objects(client, key)
    assert events_summary["vacuumed"]["files"] == sorted(lake["expired"]) and events_summary["vacuumed"]["bytes"] > 0
    assert not set(lake["expired"]) & set(after)
    assert "date=2026-11-02/part-fresh-orphan.parquet" in after, "a writer's file not committed yet was deleted"
    assert events_summary["compacted"]["files_removed"] == 3 and events_summary["files_after"] == 2
    version = events_summary["checkpoint_version"]
    assert f"_delta_log/{version:020d}.checkpoint.parquet" in after and "_delta_log/_last_checkpoint" in after
    assert _sorted_rows(events) == rows
    # Another reader (DuckDB's delta_scan) reads the checkpointed table alike.
    con = duckdb.connect()
    duckdb_connect_lake(con, events)
    got = con.sql(f"select date, appmetrica_device_id, n from ({scan_sql(events, SCHEMA)}) order by all").fetchall()  # noqa: S608
    assert got == rows
    assert summary["gold/dim_devices"]["checkpoint_version"] == 0
