"""publish_bi's pure parts: contract types to PostgreSQL, the chunk settings and the byte bound of a chunk."""

from __future__ import annotations

import pyarrow as pa
import pytest
import yaml

from lakehouse.assets import GOLD_MART_NAMES
from lakehouse.publish_bi import ChunkLimits, _chunks, pg_type
from lakehouse.settings import REPO_ROOT, ConfigError


def test_contract_types_map_to_exact_postgres_types():
    assert pg_type("ubigint", where="m.c") == "numeric(20,0)"  # every UInt64 device id, exactly
    assert pg_type("decimal(38,9)", where="m.c") == "numeric(38,9)"
    assert pg_type("utinyint[]", where="m.c") == "smallint[]"
    assert pg_type("TIMESTAMP", where="m.c") == "timestamp without time zone"
    assert pg_type("double", where="m.c") == "double precision"
    with pytest.raises(ConfigError, match=r"m\.c: contract data_type 'map\(varchar, int\)'"):
        pg_type("map(varchar, int)", where="m.c")


def test_every_gold_mart_column_has_a_postgres_type():
    for mart in GOLD_MART_NAMES:
        spec = yaml.safe_load((REPO_ROOT / "dbt_project" / "models" / "marts" / f"{mart}.yml").read_text())
        (model,) = [m for m in spec["models"] if m["name"] == mart]
        for column in model["columns"]:
            assert pg_type(column["data_type"], where=f"{mart}.{column['name']}")


def test_chunk_limits_come_from_the_environment(monkeypatch):
    assert ChunkLimits.from_env() == ChunkLimits()
    monkeypatch.setenv("LAKEHOUSE_BI_CHUNK_ROWS", "10")
    monkeypatch.setenv("LAKEHOUSE_BI_CHUNK_BYTES", "4096")
    assert ChunkLimits.from_env() == ChunkLimits(rows=10, bytes=4096)
    monkeypatch.setenv("LAKEHOUSE_BI_CHUNK_BYTES", "0")
    with pytest.raises(ConfigError, match="LAKEHOUSE_BI_CHUNK_BYTES must be a positive whole number, got '0'"):
        ChunkLimits.from_env()


def test_a_chunk_holds_at_most_the_byte_limit():
    batch = pa.record_batch({"id": pa.array(range(1000), pa.int64()), "s": pa.array(["x" * 50] * 1000)})
    pieces = list(_chunks(batch, 4000))
    assert sum(p.num_rows for p in pieces) == 1000 and len(pieces) > 1
    assert all(p.nbytes <= 4000 for p in pieces)
    assert pa.Table.from_batches(pieces).equals(pa.Table.from_batches([batch]))
    assert [p.num_rows for p in _chunks(batch.slice(0, 1), 1)] == [1]  # one row over the limit goes alone
