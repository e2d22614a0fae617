"""Point-in-time training sets: ``get_historical_features(entity_df, features)``.

For every entity row (``appmetrica_device_id``, ``event_timestamp``) and every requested feature,
the value comes from the device's row of the feature's mart with the **latest date strictly
before the date of event_timestamp** (``feature_date`` for ``device_features_daily``, ``event_date``
for ``fct_device_daily``). A feature row for day D describes events up to the end of D, so a
label observed at any time on day D only ever sees features of D-1 or earlier: no leakage, even
for events late on D. A device with no earlier row gets nulls.

The date of event_timestamp is taken in the app's time zone (``LAKEHOUSE_APP_TIMEZONE``), the one
``event_date`` and ``feature_date`` are in: time-zone-aware timestamps (and ISO strings with an
offset or ``Z``) are converted to it first; naive timestamps are taken as already local; a plain
date D means "at the start of D". The join is a DuckDB ``ASOF LEFT JOIN`` per mart over the gold
Delta tables (or the published gold on S3, see :mod:`lakehouse.features.store`).

Training sets are reproducible: ``as_of`` reads gold as it was at a version of the mart's Delta
table, or at an aware timestamp (Delta time travel), so a training set built today can be built
again later from the same rows, whatever gold builds ran in between.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from lakehouse.features.store import FeatureError, FeatureSource, _quote
from lakehouse.settings import app_timezone

ENTITY_COLUMN = "appmetrica_device_id"
TIMESTAMP_COLUMN = "event_timestamp"
_MAX_UINT64 = 2**64 - 1
_INTERNAL = ("__row_id", "__device_id", "__cutoff_date")


@dataclass(frozen=True)
class _Requested:
    mart: str
    column: str
    output: str
    position: int  # in the request: output columns keep the requested order


@dataclass(frozen=True)
class _MartPlan:
    mart: str
    entity_key: str
    timestamp_column: str
    features: tuple[_Requested, ...]


def _parse_feature_list(features: str | list[str] | tuple[str, ...]) -> list[str]:
    if isinstance(features, str):
        names = [f.strip() for f in features.split(",")]
    elif isinstance(features, list | tuple):
        names = [f.strip() if isinstance(f, str) else f for f in features]
    else:
        raise FeatureError(f"features must be a list of names or a comma-separated string, got {type(features)}")
    if not names or any(not isinstance(n, str) or not n for n in names):
        raise FeatureError(f"features must be non-empty names, got {features!r}")
    if len(set(names)) != len(names):
        raise FeatureError(f"features lists a name twice: {names}")
    return names


def plan_features(registry: dict[str, Any], features: str | list[str] | tuple[str, ...]) -> list[_MartPlan]:
    """Resolve feature names (``column`` or ``mart.column``) against the registry, grouped by mart.

    Only marts with a timestamp column and the device key can be joined point-in-time; keys and
    timestamps themselves are not features. Raises FeatureError naming what is unknown or ambiguous.
    """
    names = _parse_feature_list(features)
    joinable = [
        f
        for f in registry["features"]
        if f.get("timestamp_column") and f.get("entity_key") == ENTITY_COLUMN and f["role"] in {"feature", "attribute"}
    ]
    by_name = {f["name"]: f for f in joinable}
    by_column: dict[str, list[dict[str, Any]]] = {}
    for f in joinable:
        by_column.setdefault(f["column"], []).append(f)
    chosen: list[dict[str, Any]] = []
    for name in names:
        if "." in name:
            entry = by_name.get(name)
            if entry is None:
                known = next((f for f in registry["features"] if f["name"] == name), None)
                if known is not None:
                    raise FeatureError(
                        f"feature {name!r} cannot be joined point-in-time: its model has no timestamp column "
                        f"or it is a {known['role']} column"
                    )
                raise FeatureError(f"unknown feature {name!r}; `lakehouse features list` shows the registry")
        else:
            matches = by_column.get(name, [])
            if not matches:
                raise FeatureError(
                    f"unknown feature {name!r}; point-in-time features are: " + ", ".join(sorted(by_name))[:2000]
                )
            if len(matches) > 1:
                raise FeatureError(
                    f"feature {name!r} is ambiguous; name one of: {', '.join(sorted(m['name'] for m in matches))}"
                )
            entry = matches[0]
        chosen.append(entry)
    outputs = [e["column"] for e in chosen]
    dupes = sorted({o for o in outputs if outputs.count(o) > 1})
    if dupes:
        raise FeatureError(f"features from different marts share the column name(s) {dupes}; request one at a time")
    plans: dict[str, list[_Requested]] = {}
    meta: dict[str, tuple[str, str]] = {}
    for position, entry in enumerate(chosen):
        plans.setdefault(entry["model"], []).append(
            _Requested(entry["model"], entry["column"], entry["column"], position)
        )
        meta[entry["model"]] = (entry["entity_key"], entry["timestamp_column"])
    return [_MartPlan(mart, *meta[mart], tuple(reqs)) for mart, reqs in plans.items()]


# ---------------------------------------------------------------------------------- entities


def _first_bad_row(mask: Any) -> int:
    """Index of the first True in a boolean pyarrow array (nulls count as True)."""
    import pyarrow.compute as pc

    filled = pc.fill_null(mask, True)
    return int(pc.index(filled, True).as_py())


def _device_ids(column: Any) -> Any:
    """The id column as uint64; FeatureError naming the first bad row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if column.null_count:
        row = _first_bad_row(pc.is_null(column))
        raise FeatureError(f"{ENTITY_COLUMN} is empty in entity row {row}")
    kind = column.type
    if pa.types.is_integer(kind):
        if pa.types.is_signed_integer(kind) and len(column) and pc.min(column).as_py() < 0:
            row = _first_bad_row(pc.less(column, 0))
            raise FeatureError(f"{ENTITY_COLUMN} must be a non-negative integer, entity row {row} has {column[row]}")
        return column.cast(pa.uint64())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        stripped = pc.utf8_trim_whitespace(column)
        ok = pc.match_substring_regex(stripped, r"^[0-9]{1,20}$")
        ok = pc.and_(ok, pc.or_(pc.less(pc.utf8_length(stripped), 20), pc.less_equal(stripped, str(_MAX_UINT64))))
        if not pc.all(ok).as_py():
            row = _first_bad_row(pc.invert(ok))
            raise FeatureError(
                f"{ENTITY_COLUMN} must be digits only (an unsigned 64-bit integer), "
                f"entity row {row} has {column[row].as_py()!r}"
            )
        return stripped.cast(pa.uint64())
    raise FeatureError(f"{ENTITY_COLUMN} must hold integers or digit strings, not {kind}")


def _parse_timestamp_text(value: str, tz: ZoneInfo) -> dt.date:
    parsed = dt.datetime.fromisoformat(value.strip())
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(tz)
    return parsed.date()


def _cutoff_dates(column: Any, tz: ZoneInfo) -> Any:
    """The local date of every event_timestamp (date32); FeatureError naming the first bad row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if column.null_count:
        row = _first_bad_row(pc.is_null(column))
        raise FeatureError(f"{TIMESTAMP_COLUMN} is empty in entity row {row}")
    kind = column.type
    if pa.types.is_date(kind):
        return column.cast(pa.date32())
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:
            column = pc.local_timestamp(column.cast(pa.timestamp(kind.unit, tz=tz.key)))
        return column.cast(pa.date32())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        cache: dict[str, dt.date] = {}
        out = []
        for row, value in enumerate(column.to_pylist()):
            if value not in cache:
                try:
                    cache[value] = _parse_timestamp_text(value, tz)
                except (ValueError, OverflowError):  # OverflowError: a time zone shift past year 1 or 9999
                    raise FeatureError(
                        f"{TIMESTAMP_COLUMN} in entity row {row} is not an ISO 8601 date or timestamp: {value!r}"
                    ) from None
            out.append(cache[value])
        return pa.array(out, type=pa.date32())
    raise FeatureError(f"{TIMESTAMP_COLUMN} must hold timestamps, dates or ISO 8601 strings, not {kind}")


def entity_table(entity_df: Any) -> Any:
    """``entity_df`` (pandas DataFrame or pyarrow Table) as a pyarrow Table, checked for the two key columns."""
    import pyarrow as pa

    if isinstance(entity_df, pa.Table):
        table = entity_df
    else:
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is a dependency
            pd = None
        if pd is None or not isinstance(entity_df, pd.DataFrame):
            raise FeatureError(f"entity_df must be a pandas DataFrame or a pyarrow Table, got {type(entity_df)}")
        frame = entity_df.reset_index(drop=True)
        if ENTITY_COLUMN in frame.columns and frame[ENTITY_COLUMN].dtype == object:
            # Python ints above 2**63 do not fit pandas/Arrow int64: go through text
            frame = frame.assign(**{ENTITY_COLUMN: frame[ENTITY_COLUMN].map(lambda v: None if v is None else str(v))})
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise FeatureError(f"entity_df cannot be converted to Arrow: {exc}") from None
    missing = [c for c in (ENTITY_COLUMN, TIMESTAMP_COLUMN) if c not in table.column_names]
    if missing:
        raise FeatureError(
            f"entity rows need the columns {ENTITY_COLUMN}, {TIMESTAMP_COLUMN}; missing {missing} "
            f"(got {table.column_names})"
        )
    clash = [c for c in table.column_names if c in _INTERNAL]
    if clash:
        raise FeatureError(f"entity column name(s) {clash} are reserved")
    return table


def read_entities(path: str | Path) -> Any:
    """Read entity rows from a ``.csv`` (header row) or ``.parquet`` file as a pyarrow Table.

    In CSV, ``appmetrica_device_id`` and ``event_timestamp`` are read as text and parsed like
    strings given to :func:`get_historical_features` (ids above 2**63 stay exact).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise FeatureError(f"entity file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pacsv.read_csv(
                path,
                convert_options=pacsv.ConvertOptions(
                    column_types={ENTITY_COLUMN: pa.string(), TIMESTAMP_COLUMN: pa.string()}
                ),
            )
        if suffix == ".parquet":
            return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise FeatureError(f"entity file {path} cannot be read: {exc}") from None
    raise FeatureError(f"entity file {path} must end in .csv or .parquet")


def write_result(table: Any, path: str | Path) -> Path:
    """Write a result table to ``.parquet`` or ``.csv`` (list columns as JSON text), atomically."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from lakehouse.fsutil import atomic_file

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet"}:
        raise FeatureError(f"output file {path} must end in .csv or .parquet")
    if isinstance(table, pa.Table) is False:
        table = pa.Table.from_pandas(table, preserve_index=False)
    with atomic_file(path) as fh:
        if suffix == ".parquet":
            pq.write_table(table, fh)
        else:
            for i, fld in enumerate(table.schema):
                if pa.types.is_list(fld.type) or pa.types.is_large_list(fld.type):
                    text = [None if v is None else json.dumps(v) for v in table.column(i).to_pylist()]
                    table = table.set_column(i, fld.name, pa.array(text, type=pa.string()))
            pacsv.write_csv(table, fh)
    return path


# ---------------------------------------------------------------------------------- the join


def historical_table(
    entity_df: Any,
    features: str | list[str] | tuple[str, ...],
    *,
    source: str | Path | FeatureSource | None = None,
    include_feature_dates: bool = True,
    as_of: int | str | dt.datetime | None = None,
) -> Any:
    """:func:`get_historical_features` returning a pyarrow Table (exact uint64 ids, list columns kept).

    The Delta table versions read are in the table's schema metadata: ``lakehouse.gold_versions``
    (JSON ``{mart: version}``).
    """
    import duckdb
    import pyarrow as pa

    feature_source = FeatureSource.resolve(source)
    plans = plan_features(feature_source.registry(), features)
    if as_of is not None:
        as_of = parse_as_of(as_of)
        if isinstance(as_of, int) and len(plans) > 1:
            raise FeatureError(f"as_of={as_of} is a version of one gold table, but the features come from "
                               f"{', '.join(p.mart for p in plans)}: pass a timestamp instead")  # fmt: skip
        feature_source = replace(feature_source, as_of=as_of)
    table = entity_table(entity_df)
    tz = app_timezone()
    outputs = [r.output for p in plans for r in p.features]
    if include_feature_dates:
        outputs += [f"{p.mart}__{p.timestamp_column}" for p in plans]
    clash = sorted(set(outputs) & set(table.column_names))
    if clash:
        raise FeatureError(f"entity columns {clash} have the names of requested features; rename them")

    prepared = table.append_column("__row_id", pa.array(range(table.num_rows), type=pa.int64()))
    prepared = prepared.append_column("__device_id", _device_ids(table.column(ENTITY_COLUMN)))
    prepared = prepared.append_column("__cutoff_date", _cutoff_dates(table.column(TIMESTAMP_COLUMN), tz))

    with duckdb.connect() as con:
        con.register("entities", prepared)
        select = [f"entities.{_quote(c)}" for c in table.column_names]
        feature_columns: list[tuple[int, str]] = []
        date_columns: list[str] = []
        versions: dict[str, int] = {}
        joins = []
        for i, plan in enumerate(plans):
            view = f"mart_{i}"
            columns = [plan.entity_key, plan.timestamp_column, *(r.column for r in plan.features)]
            delta = feature_source.register_mart(con, plan.mart, columns, f"{view}_raw")
            if delta is not None:
                versions[plan.mart] = delta.version()
            con.execute(
                f"create or replace temporary view {view} as select *, "  # noqa: S608 - names from the registry
                f"cast({_quote(plan.timestamp_column)} as date) as __as_of from {view}_raw"
            )
            joins.append(
                f"asof left join {view} on entities.__device_id = {view}.{_quote(plan.entity_key)} "
                f"and entities.__cutoff_date > {view}.__as_of"
            )
            feature_columns += [(r.position, f"{view}.{_quote(r.column)} as {_quote(r.output)}") for r in plan.features]
            if include_feature_dates:
                date_columns.append(f"{view}.__as_of as {_quote(f'{plan.mart}__{plan.timestamp_column}')}")
        select += [expr for _, expr in sorted(feature_columns)] + date_columns
        sql = f"select {', '.join(select)} from entities {' '.join(joins)} order by entities.__row_id"  # noqa: S608
        result = con.sql(sql).to_arrow_table()
    if versions:
        metadata = {**(result.schema.metadata or {}), b"lakehouse.gold_versions": json.dumps(versions).encode()}
        result = result.replace_schema_metadata(metadata)
    return result


def parse_as_of(value: int | str | dt.datetime) -> int | dt.datetime:
    """A gold table version (an int, or digits) or an aware time (a datetime, or ISO 8601 with an offset or Z)."""
    if isinstance(value, bool):
        raise FeatureError(f"as_of must be a table version or an aware timestamp, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise FeatureError(f"as_of must be a table version >= 0, got {value}")
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise FeatureError(f"as_of must be a table version or an ISO 8601 timestamp, got {text!r}") from None
    if not isinstance(value, dt.datetime):
        raise FeatureError(f"as_of must be a table version or an aware timestamp, got {type(value).__name__}")
    if value.tzinfo is None:
        raise FeatureError(f"as_of={value.isoformat()} needs a time zone (e.g. 2026-11-05T12:00:00+00:00)")
    return value


def get_historical_features(
    entity_df: Any,
    features: str | list[str] | tuple[str, ...],
    *,
    source: str | Path | FeatureSource | None = None,
    include_feature_dates: bool = True,
    as_of: int | str | dt.datetime | None = None,
) -> Any:
    """A leakage-free training set: ``entity_df`` with the requested features joined point-in-time.

    ``entity_df``: pandas DataFrame or pyarrow Table with ``appmetrica_device_id`` (integers or
    digit strings) and ``event_timestamp`` (timestamps, dates or ISO 8601 strings); other columns
    (labels) pass through. ``features``: names from the registry, ``events_7d`` or
    ``device_features_daily.events_7d`` (a list or a comma-separated string). ``source``: None /
    ``"local"`` (the lake's gold), a gold folder, ``"s3"`` or ``"s3://bucket/prefix"`` (published).
    ``as_of``: read gold as it was then (Delta time travel; the gold tables only, not a published
    source): a version of the mart's Delta table (an int; features of one mart only, since each mart
    numbers its own versions) or an aware timestamp (a datetime or ISO 8601 text with an offset),
    which picks each table's version current at that time. The versions read are in
    ``df.attrs["gold_versions"]``.

    Returns a pandas DataFrame with the entity rows in their order, each feature as a column (the
    value of the latest row dated strictly before the local date of event_timestamp; null without
    one) and, with ``include_feature_dates``, ``<mart>__<timestamp column>``: the date each row's
    values come from. Integer features are nullable pandas integers. Raises FeatureError (a
    ValueError) naming the bad input: missing columns, a bad id or timestamp and its row, an unknown
    or ambiguous feature.
    """
    import pandas as pd
    import pyarrow as pa

    table = historical_table(entity_df, features, source=source, include_feature_dates=include_feature_dates,
                             as_of=as_of)  # fmt: skip
    nullable = {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.uint8(): pd.UInt8Dtype(),
        pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(),
        pa.uint64(): pd.UInt64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    frame = table.to_pandas(types_mapper=nullable.get)
    versions = (table.schema.metadata or {}).get(b"lakehouse.gold_versions")
    if versions:
        frame.attrs["gold_versions"] = json.loads(versions)
    return frame
