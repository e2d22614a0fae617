"""Lake tables on local disk (lakehouse/delta.py): partition replace, exact unsigned ids, history, time travel."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from lakehouse.delta import (
    ConfigError,
    delta_schema,
    duckdb_connect_lake,
    latest_commit,
    locate,
    open_table,
    partition_files,
    read_table,
    replace_partition,
    replace_table,
    scan_sql,
)
from lakehouse.settings import Layout

D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
IDS = [1, 2**63 - 1, 2**63, 2**63 + 12345, 2**64 - 1]
SCHEMA = pa.schema([("appmetrica_device_id", pa.uint64()), ("n", pa.uint32()), ("date", pa.date32())])


def _rows(day: dt.date, ids: list[int]) -> pa.Table:
    return pa.table({"appmetrica_device_id": ids, "n": list(range(len(ids))), "date": [day] * len(ids)}, SCHEMA)


@pytest.fixture
def loc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("LAKEHOUSE_STORAGE_URL", raising=False)
    return locate("silver/devices", Layout(tmp_path))


def test_unsigned_ids_round_trip_exactly_as_decimal_20_0(loc) -> None:
    replace_partition(loc, _rows(D1, IDS), column="date", value=D1)
    stored = pa.schema(open_table(loc).schema().to_arrow())
    assert stored.field("appmetrica_device_id").type == pa.decimal128(20, 0)  # what Spark and Trino read
    back = read_table(loc, schema=SCHEMA)
    assert back.schema.field("appmetrica_device_id").type == pa.uint64()
    assert sorted(back["appmetrica_device_id"].to_pylist()) == IDS
    con = duckdb.connect()
    duckdb_connect_lake(con, loc)
    got = con.sql(
        f"select appmetrica_device_id, typeof(appmetrica_device_id) from ({scan_sql(loc, SCHEMA)})"  # noqa: S608
    ).fetchall()
    assert sorted(v for v, _ in got) == IDS and {t for _, t in got} == {"UBIGINT"}


def test_a_partition_replace_leaves_other_days_and_records_history(loc) -> None:
    replace_partition(loc, _rows(D1, IDS), column="date", value=D1, metadata={"lakehouse.run": "a"})
    replace_partition(loc, _rows(D2, IDS[:2]), column="date", value=D2)
    v = replace_partition(loc, _rows(D1, IDS[:1]), column="date", value=D1, metadata={"lakehouse.run": "b"})
    assert v == 2
    rows = read_table(loc, schema=SCHEMA).to_pylist()
    assert sorted((r["date"], r["appmetrica_device_id"]) for r in rows) == [(D1, 1), (D2, 1), (D2, 2**63 - 1)]
    history = open_table(loc).history()
    assert [h.get("lakehouse.run") for h in history] == ["b", None, "a"]
    # time travel: version 0 held all of D1
    assert read_table(loc, as_of=0, schema=SCHEMA).num_rows == len(IDS)
    with pytest.raises(ConfigError, match="no version as of 7"):
        read_table(loc, as_of=7)


def test_replacing_a_day_with_rows_of_another_day_is_refused_and_writes_nothing(loc) -> None:
    replace_partition(loc, _rows(D1, IDS), column="date", value=D1)
    mixed = pa.concat_tables([_rows(D1, [5]), _rows(D2, [6])])
    with pytest.raises(ConfigError, match="1 row\\(s\\) for silver/devices partition date=2026-11-01 carry another"):
        replace_partition(loc, mixed, column="date", value=D1)
    assert open_table(loc).version() == 0


def test_a_stream_replaces_the_whole_table_and_empty_days_are_legal(loc) -> None:
    reader = pa.RecordBatchReader.from_batches(SCHEMA, _rows(D1, IDS).to_batches())
    replace_table(loc, reader, partition_by=["date"])
    replace_partition(loc, _rows(D1, [])[:0], column="date", value=D1)
    assert read_table(loc).num_rows == 0


def test_names_outside_the_lake_tables_are_refused(tmp_path: Path) -> None:
    for bad in ("bronze/x", "silver/../gold", "silver/", "gold/Mart", "silver/a/b"):
        with pytest.raises(ConfigError, match="is not a lake table"):
            locate(bad, Layout(tmp_path))
    assert open_table(locate("gold/nothing_here", Layout(tmp_path))) is None
    assert read_table(locate("gold/nothing_here", Layout(tmp_path))) is None


def test_delta_schema_widens_every_unsigned_type() -> None:
    s = pa.schema([("a", pa.uint8()), ("b", pa.uint16()), ("c", pa.uint32()), ("d", pa.uint64()), ("e", pa.string())])
    assert [f.type for f in delta_schema(s)] == [pa.int16(), pa.int32(), pa.int64(), pa.decimal128(20, 0), pa.string()]


def test_partition_files_name_what_each_day_holds_and_change_when_it_is_rewritten(loc) -> None:
    assert partition_files(loc, "date") == {}
    replace_partition(loc, _rows(D1, IDS), column="date", value=D1)
    replace_partition(loc, _rows(D2, IDS[:2]), column="date", value=D2)
    first = partition_files(loc, "date")
    assert sorted(first) == [D1, D2]
    assert [sum(f["num_records"] for f in first[d]) for d in (D1, D2)] == [len(IDS), 2]
    assert all((Path(loc.uri) / f["path"]).is_file() and f["size_bytes"] > 0 for f in first[D1] + first[D2])
    replace_partition(loc, _rows(D1, IDS), column="date", value=D1)  # the same rows again: new files
    second = partition_files(loc, "date")
    assert second[D2] == first[D2] and {f["path"] for f in second[D1]}.isdisjoint(f["path"] for f in first[D1])


def test_latest_commit_finds_the_newest_commit_with_the_given_metadata(loc) -> None:
    assert latest_commit(loc, {"lakehouse.export_date": "2026-11-01"}) is None
    replace_partition(loc, _rows(D1, IDS), column="date", value=D1, metadata={"lakehouse.export_date": "2026-11-01",
                                                                              "lakehouse.run": "a"})  # fmt: skip
    replace_partition(loc, _rows(D2, IDS), column="date", value=D2, metadata={"lakehouse.export_date": "2026-11-02"})
    replace_partition(loc, _rows(D1, IDS), column="date", value=D1, metadata={"lakehouse.export_date": "2026-11-01",
                                                                              "lakehouse.run": "b"})  # fmt: skip
    found = latest_commit(loc, {"lakehouse.export_date": "2026-11-01"})
    assert found["lakehouse.run"] == "b" and found["version"] == 2
    assert latest_commit(loc, {"lakehouse.export_date": "2026-11-01", "lakehouse.run": "a"})["version"] == 0
    assert latest_commit(loc, {"lakehouse.export_date": "2026-11-01", "lakehouse.run": "a"}, limit=1) is None
