"""Gold into a real PostgreSQL (a throw-away cluster): every mart complete, reruns idempotent, chunks, contracts.

The gold is the feature-store tests' lake (built once per session), copied and cut down to two dates.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from feature_lake import LATE_DEVICE, FeatureLake
from gold_tables import gold_location, order_key, read_gold
from pg_cluster import Cluster
from psycopg import sql

from lakehouse.assets import GOLD_MART_NAMES
from lakehouse.delta import register_duckdb, replace_table
from lakehouse.publish_bi import BiPublishError, ChunkLimits, publish_bi
from lakehouse.settings import Layout

DATED = {"fct_device_daily": "event_date", "device_features_daily": "feature_date",
         "device_attributes_daily": "feature_date", "device_features_daily_transformed": "feature_date",
         "feature_stats_daily": "feature_date"}  # fmt: skip
WHOLE_MARTS = set(GOLD_MART_NAMES) - set(DATED)


def _rewrite(root: Path, mart: str, select: str) -> None:
    """Replace a gold Delta table's rows by ``select`` over ``t`` (its current rows), in one commit."""
    loc = gold_location(root, mart)
    with duckdb.connect() as con:
        register_duckdb(con, loc, "t")
        rows = con.execute(select).to_arrow_table()
    replace_table(loc, rows, new_schema=True, metadata={"lakehouse.order_by": ",".join(order_key(loc))})


@pytest.fixture(scope="module")
def two_dates(feature_lake: FeatureLake, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dt.date]]:
    """The feature lake's gold with every dated mart cut down to its last two event dates."""
    root = tmp_path_factory.mktemp("bi_gold")
    shutil.copytree(feature_lake.gold, root / "gold")
    dates = sorted(set(read_gold(root, "fct_device_daily").column("event_date").to_pylist()))[-2:][::-1]
    listed = ", ".join(f"date '{d}'" for d in dates)
    for mart, column in DATED.items():
        _rewrite(root, mart, f"select * from t where {column} in ({listed})")  # noqa: S608
    return root, sorted(dates)


@pytest.fixture
def lake(two_dates: tuple[Path, list[dt.date]], tmp_path: Path) -> Layout:
    """A copy of the two-date gold this test may change."""
    shutil.copytree(two_dates[0] / "gold", tmp_path / "gold")
    return Layout(tmp_path)


@pytest.fixture
def database(postgres: Cluster, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """A fresh database of the session's cluster, named after the test, behind ``lakehouse_bi``."""
    name = request.node.name[:60].lower()
    postgres.createdb(name)
    monkeypatch.setenv("AIRFLOW_CONN_LAKEHOUSE_BI", json.dumps(postgres.connection(name)))
    return name


def _norm(value: object) -> object:
    if isinstance(value, Decimal) and value == value.to_integral_value() and value.as_tuple().exponent == 0:
        return int(value)  # numeric(20,0) device ids come back as Decimal
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def _sorted(rows: list[tuple]) -> list[tuple]:
    return sorted((tuple(_norm(v) for v in row) for row in rows), key=repr)


def gold_rows(layout: Layout, mart: str) -> list[tuple]:
    return _sorted([tuple(r.values()) for r in read_gold(layout.root, mart).to_pylist()])


def pg_rows(postgres: Cluster, database: str, mart: str) -> list[tuple]:
    with postgres.connect(database) as conn:
        return _sorted(conn.execute(sql.SQL("select * from public.{}").format(sql.Identifier(mart))).fetchall())


def assert_complete(postgres: Cluster, database: str, layout: Layout) -> None:
    for mart in GOLD_MART_NAMES:
        assert pg_rows(postgres, database, mart) == gold_rows(layout, mart), mart


def test_first_publish_gives_every_mart_complete_and_a_rerun_writes_nothing(lake, database, postgres, two_dates):
    result = publish_bi("2026-11-02", layout=lake, run_id="first")
    assert result["dates"] == [d.isoformat() for d in two_dates[1]]
    assert sorted(result["created"]) == sorted(GOLD_MART_NAMES)
    assert_complete(postgres, database, lake)
    assert all(result["marts"][m]["rows"] > 0 for m in GOLD_MART_NAMES)
    with postgres.connect(database) as conn:
        query = "select attname, format_type(atttypid, atttypmod) from pg_attribute where attrelid = %s::regclass"
        kinds = dict(conn.execute(query, ("public.dim_devices",)).fetchall())
        late = conn.execute("select appmetrica_device_id from dim_devices where appmetrica_device_id = %s",
                            (LATE_DEVICE,)).fetchone()  # fmt: skip
    assert kinds["appmetrica_device_id"] == "numeric(20,0)" and late == (Decimal(LATE_DEVICE),)

    again = publish_bi("2026-11-02", layout=lake, run_id="again")
    assert again["dates"] == [] and all(m["rows"] == 0 for m in again["marts"].values())
    assert_complete(postgres, database, lake)


def test_a_changed_date_replaces_its_rows_and_a_rerun_never_doubles(lake, database, postgres, two_dates):
    first, second = two_dates[1]
    publish_bi(second, layout=lake)
    fct = "fct_device_daily"
    bump = f"events_count + 1000 * (event_date = date '{first}')::int"
    _rewrite(lake.root, fct, f"select * replace ({bump} as events_count) from t")  # noqa: S608
    result = publish_bi(second, layout=lake)
    assert result["dates"] == [first.isoformat()]
    assert result["marts"]["fct_device_daily"]["partitions"] == 1
    assert result["marts"]["device_features_daily"]["partitions"] == 0
    assert_complete(postgres, database, lake)

    # a date rewritten whatever its fingerprint says: replaced, not added
    with postgres.connect(database) as conn:
        conn.execute("update lakehouse_bi.published_partitions set fingerprint = 'stale' where partition_key = %s",
                     (second.isoformat(),))  # fmt: skip
    again = publish_bi(second, layout=lake)
    assert again["dates"] == [second.isoformat()]
    assert again["marts"]["fct_device_daily"]["deleted"] == again["marts"]["fct_device_daily"]["rows"] > 0
    assert_complete(postgres, database, lake)

    # a date gold no longer holds leaves the tables
    for mart, column in DATED.items():
        _rewrite(lake.root, mart, f"select * from t where {column} <> date '{first}'")  # noqa: S608
    gone = publish_bi(second, layout=lake)
    assert gone["dates"] == [first.isoformat()]
    assert_complete(postgres, database, lake)


def test_tiny_chunks_give_the_same_tables(lake, database, postgres):
    result = publish_bi("2026-11-02", layout=lake, limits=ChunkLimits(rows=7, bytes=1500))
    rows = sum(m["rows"] for m in result["marts"].values())
    chunks = sum(m["chunks"] for m in result["marts"].values())
    assert chunks >= rows / 7 and chunks > len(GOLD_MART_NAMES) * 2
    assert_complete(postgres, database, lake)


def test_without_the_connection_the_step_is_skipped_with_a_log_line(lake, monkeypatch, caplog):
    monkeypatch.delenv("AIRFLOW_CONN_LAKEHOUSE_BI", raising=False)
    with caplog.at_level(logging.WARNING, logger="lakehouse.publish_bi"):
        result = publish_bi("2026-11-02", layout=lake)
    assert result == {"date": "2026-11-02", "skipped": "no Airflow connection 'lakehouse_bi'"}
    assert "No Airflow connection 'lakehouse_bi' found" in caplog.text


def _edit_contract(layout: Layout, mart: str, column: str, data_type: str) -> None:
    """Give ``mart`` the contract column ``column`` (added after the others when new) in the built registry."""
    path = layout.gold / "_registry" / "feature_registry.json"
    registry = json.loads(path.read_text())
    entries = [f for f in registry["features"] if f["model"] == mart and f["column"] == column]
    if entries:
        entries[0]["data_type"] = data_type
    else:
        template = next(f for f in registry["features"] if f["model"] == mart)
        registry["features"].append({**template, "name": f"{mart}.{column}", "column": column, "data_type": data_type})
        registry["models"][mart]["columns"].append(column)
    path.write_text(json.dumps(registry))


def test_a_new_contract_column_is_added_and_a_type_change_is_refused(lake, database, postgres, two_dates):
    publish_bi("2026-11-02", layout=lake)
    fct = "fct_device_daily"
    _rewrite(lake.root, fct, "select *, events_count * 2 as events_doubled from t")
    _edit_contract(lake, "fct_device_daily", "events_doubled", "bigint")
    result = publish_bi("2026-11-02", layout=lake)
    assert result["migrated"] == {"fct_device_daily": ["events_doubled"]}
    assert result["marts"]["fct_device_daily"]["partitions"] == 2  # every date again, with the new column
    assert result["marts"]["dim_devices"]["partitions"] == 0
    assert_complete(postgres, database, lake)

    _rewrite(lake.root, fct, "select * replace (cast(events_count as varchar) as events_count) from t")
    _edit_contract(lake, "fct_device_daily", "events_count", "varchar")
    with pytest.raises(BiPublishError, match=r"public\.fct_device_daily\.events_count is bigint, the contract text"):
        publish_bi("2026-11-02", layout=lake)
