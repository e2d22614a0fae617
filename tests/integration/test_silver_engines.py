"""Another engine reads the lake: for every silver table and quarantine table of a built day, pyarrow (through
deltalake) and DuckDB (``delta_scan``) return the same rows, device ids exact above 2^63."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from ingest.appmetrica import AppMetricaSettings, extract_resource
from ingest.appmetrica.demo.server import DemoLogsApiServer
from ingest.appmetrica.resources import RESOURCES
from lakehouse.delta import duckdb_connect_lake, locate, read_table, scan_sql
from lakehouse.settings import Layout
from transforms.silver import build_silver
from transforms.silver.schemas import QUARANTINE_SCHEMA, SILVER_TABLES

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 1)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    layout = Layout(tmp_path_factory.mktemp("engines") / "data")
    with DemoLogsApiServer(token="engines-token", application_id="77", devices=100, anomaly_rate=0.05) as server:
        extra = {"application_id": "77", "poll_interval_seconds": 0.01}
        settings = AppMetricaSettings.from_connection(server.url, "engines-token", extra)
        for resource in RESOURCES:
            extract_resource(resource, DAY, settings=settings, layout=layout)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEHOUSE_QUARANTINE_MAX_RATE", "1")
        patch.delenv("LAKEHOUSE_STORAGE_URL", raising=False)
        build_silver(DAY, layout)
    return layout


def _tables() -> list[tuple[str, object]]:
    return [(f"silver/{t}", spec.schema) for t, spec in SILVER_TABLES.items()] + [
        (f"quarantine/{r}", QUARANTINE_SCHEMA) for r in RESOURCES
    ]


@pytest.mark.parametrize(("rel", "schema"), _tables(), ids=[rel for rel, _ in _tables()])
def test_pyarrow_through_deltalake_and_duckdb_delta_scan_read_the_same_rows(built: Layout, rel, schema) -> None:
    loc = locate(rel, built)
    arrow = read_table(loc, schema=schema)
    assert arrow is not None and arrow.schema.names == schema.names
    con = duckdb.connect()
    duckdb_connect_lake(con, loc)
    cursor = con.execute(scan_sql(loc, schema))
    assert [c[0] for c in cursor.description] == schema.names
    from_duckdb = cursor.fetchall()
    from_arrow = [tuple(row.values()) for row in arrow.to_pylist()]
    assert sorted(from_duckdb, key=repr) == sorted(from_arrow, key=repr)
    if rel in ("silver/events_part", "quarantine/events"):
        assert from_arrow, f"{rel} holds rows on the built day"
    if rel in ("silver/events_part", "silver/mobile_devices"):
        ids = [v for v in arrow.column("appmetrica_device_id").to_pylist() if v is not None]
        assert any(v >= 2**63 for v in ids), "the demo exports ids above 2^63: they must stay exact"


def test_a_day_is_read_by_partition(built: Layout, tmp_path: Path) -> None:
    con = duckdb.connect()
    loc = locate("silver/events_part", built)
    duckdb_connect_lake(con, loc)
    sql = f"select count(*) from ({scan_sql(loc, SILVER_TABLES['events_part'].schema)}) where export_date = ?"  # noqa: S608
    assert con.execute(sql, [DAY]).fetchone()[0] == read_table(loc).num_rows > 0
    assert con.execute(sql, [DAY - dt.timedelta(days=1)]).fetchone()[0] == 0
