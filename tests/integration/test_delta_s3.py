"""Lake tables on S3 (moto's server over HTTP): commits are conditional PUTs, so writers need no lock.

Two writers replacing different days of one table both land; two replacing the same day race, one
loses with LakeCommitConflict and the day holds exactly the winner's rows. DuckDB's delta_scan reads
what deltalake wrote, through the same connection's credentials.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from moto_s3 import ensure_bucket, use_lakehouse_s3

from lakehouse.delta import LakeCommitConflict, duckdb_connect_lake, locate, read_table, replace_partition, scan_sql
from lakehouse.settings import Layout

pytestmark = pytest.mark.integration

BUCKET = "delta-it"
SCHEMA = pa.schema([("appmetrica_device_id", pa.uint64()), ("writer", pa.string()), ("date", pa.date32())])
D0 = dt.date(2026, 11, 1)


def _rows(day: dt.date, writer: str, n: int) -> pa.Table:
    return pa.table({"appmetrica_device_id": [2**63 + i for i in range(n)], "writer": [writer] * n,
                     "date": [day] * n}, SCHEMA)  # fmt: skip


@pytest.fixture
def loc(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    ensure_bucket(s3_endpoint, BUCKET)
    use_lakehouse_s3(monkeypatch, s3_endpoint, bucket=BUCKET, prefix="published", tmp_path=tmp_path)
    monkeypatch.setenv("LAKEHOUSE_STORAGE_URL", f"s3://{BUCKET}/lake-{uuid.uuid4().hex[:8]}")
    found = locate("silver/devices", Layout(tmp_path / "scratch"))
    assert found.uri.startswith(f"s3://{BUCKET}/lake-") and "lake-test-secret" not in repr(found)
    replace_partition(found, _rows(D0, "init", 3), column="date", value=D0)
    return found


def _race(loc, jobs: list[tuple[str, dt.date]]) -> dict[str, str]:
    barrier = threading.Barrier(len(jobs))
    outcome: dict[str, str] = {}

    def write(writer: str, day: dt.date) -> None:
        barrier.wait()
        try:
            replace_partition(loc, _rows(day, writer, 5), column="date", value=day)
            outcome[writer] = "ok"
        except LakeCommitConflict as exc:
            outcome[writer] = str(exc)

    threads = [threading.Thread(target=write, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcome


def _by_day(loc) -> dict[dt.date, set[str]]:
    got: dict[dt.date, set[str]] = {}
    for row in read_table(loc, schema=SCHEMA).to_pylist():
        got.setdefault(row["date"], set()).add(row["writer"])
    return got


def test_writers_of_different_days_both_land(loc) -> None:
    for r in range(4):
        days = {f"a{r}": D0 + dt.timedelta(days=1 + 2 * r), f"b{r}": D0 + dt.timedelta(days=2 + 2 * r)}
        assert _race(loc, list(days.items())) == {w: "ok" for w in days}
        got = _by_day(loc)
        assert all(got[day] == {w} for w, day in days.items())
    assert read_table(loc).num_rows == 3 + 8 * 5


def test_writers_of_the_same_day_one_wins_whole_and_the_loser_is_told(loc) -> None:
    day = D0 + dt.timedelta(days=1)
    conflicts = 0
    for r in range(6):
        outcome = _race(loc, [(f"a{r}", day), (f"b{r}", day)])
        winners = _by_day(loc)[day]
        assert len(winners) == 1, f"round {r}: the day mixes writers {winners}"
        (winner,) = winners
        assert outcome[winner] == "ok"
        for writer, said in outcome.items():
            if said != "ok":
                conflicts += 1
                assert writer != winner
                assert "silver/devices" in said and "lost a commit race" in said and "retry redoes it" in said
        assert _by_day(loc)[D0] == {"init"}
    assert conflicts >= 1, "six simultaneous rounds never raced: the conflict path went untested"


def test_duckdb_reads_the_s3_table_with_the_connections_credentials(loc) -> None:
    con = duckdb.connect()
    duckdb_connect_lake(con, loc)
    rows = con.sql(f"select appmetrica_device_id, writer from ({scan_sql(loc, SCHEMA)}) order by 1").fetchall()  # noqa: S608
    assert rows == [(2**63 + i, "init") for i in range(3)]
