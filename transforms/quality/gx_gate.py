"""A Great Expectations (Core 1.x) quality gate between silver and gold.

``run_gate(day)`` reads that day's partition of each silver table (its Delta table's
``export_date`` partition, lakehouse/delta.py; pyarrow -> pandas), validates it against the table's
expectation suite (``transforms/quality/expectations/<table>.json``, kept in the repo) and returns
a summary. If any expectation fails it raises :class:`QualityGateError`, whose message says in
plain words which expectation failed on which table and column, with example values.

GX is driven the ordinary 1.x way: an ephemeral context, a pandas data source, one dataframe asset
and whole-dataframe batch definition per table, a ``ValidationDefinition`` per table and a
``Checkpoint`` per table (each table is its own dataframe, passed as the batch parameter). Nothing
is written into the repo: the only files written are the Data Docs, a local site under
``$LAKEHOUSE_DATA_DIR/docs/gx/`` (``index.html``), built when ``build_docs`` is true.

Derived columns. A suite may check a column the gate computes on the frame before validation;
such expectations carry ``"derived_column": true`` in their ``meta`` and the column name starts
with ``_``. The gate adds those names to the suite's ``expect_table_columns_to_match_set`` so
the exact-column-set check still means "the Arrow schema, nothing more, nothing less". The one
derived column today:

- ``events_part._tz_offset_ok``: ``event_timestamp`` (Unix seconds) converted to the app time
  zone (``LAKEHOUSE_APP_TIMEZONE``, default Europe/Moscow) and made naive equals
  ``event_datetime`` exactly (to the second). Null where ``event_timestamp`` (or
  ``event_datetime``) is null, or when either column is absent (the column-set check reports
  that), so only rows that can be checked are checked. The suite expects it to be ``True``.

Files of one partition that disagree on their columns are read on the columns they all share,
so a column missing from any file is reported missing by the column-set check.

Great Expectations is imported only inside functions: it is slow to import and logs a lot.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Any

from lakehouse.settings import Layout, app_timezone
from transforms.silver.schemas import SILVER_TABLES

SUITES_DIR = Path(__file__).resolve().parent / "expectations"
MAX_EXAMPLES = 5
DOCS_SITE = "lakehouse_local"

log = logging.getLogger(__name__)


class QualityGateError(RuntimeError):
    """Silver failed the quality gate; the message names every failed expectation."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


def docs_dir(layout: Layout) -> Path:
    """Where the Data Docs site is built: ``<data dir>/docs/gx``."""
    return layout.root / "docs" / "gx"


ROW_COUNT = "expect_table_row_count_to_be_between"


def row_floor(table: str) -> int:
    """The fewest rows the suite of ``table`` expects in a day (0: none, an empty day is normal)."""
    suite = json.loads((SUITES_DIR / f"{table}.json").read_text(encoding="utf-8"))
    return max([e["kwargs"].get("min_value") or 0 for e in suite["expectations"] if e["type"] == ROW_COUNT] or [0])


def load_suite(table: str, *, with_row_floor: bool = True) -> dict[str, Any]:
    """The suite of ``table`` as a dict (GX 1.x suite JSON), with derived columns added to the column set.

    ``with_row_floor=False`` lowers a row-count floor to 0: the count is still checked and reported, and
    an empty day passes (a lookback day before the app's first exported day, say).
    """
    suite = json.loads((SUITES_DIR / f"{table}.json").read_text(encoding="utf-8"))
    derived = [e["kwargs"]["column"] for e in suite["expectations"] if (e.get("meta") or {}).get("derived_column")]
    for exp in suite["expectations"]:
        if exp["type"] == "expect_table_columns_to_match_set":
            exp["kwargs"]["column_set"] = list(exp["kwargs"]["column_set"]) + derived
        if exp["type"] == ROW_COUNT and not with_row_floor:
            exp["kwargs"]["min_value"] = 0
    return suite


def read_partition(table: str, day: dt.date, layout: Layout) -> tuple[Any, int]:
    """Read one day (the ``export_date`` partition) of a silver Delta table into pandas; return (frame, data files).

    No table or no rows that day: an empty frame with the table's schema.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    from lakehouse.delta import locate, partition_files, read_table

    loc = locate(f"silver/{table}", layout)
    schema = SILVER_TABLES[table].schema
    data = read_table(loc, filters=ds.field("export_date") == pa.scalar(day, pa.date32()), schema=schema)
    if data is None:
        return schema.empty_table().to_pandas(), 0
    return data.to_pandas(), len(partition_files(loc, "export_date").get(day, []))


def add_derived_columns(table: str, frame: Any) -> Any:
    """Add the gate's derived columns (see the module docstring) to ``frame``, in place."""
    import pandas as pd

    if table != "events_part":
        return frame
    ok = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    if {"event_timestamp", "event_datetime"} <= set(frame.columns) and len(frame):
        ts = pd.to_numeric(frame["event_timestamp"], errors="coerce")
        local = pd.to_datetime(ts, unit="s", utc=True).dt.tz_convert(app_timezone()).dt.tz_localize(None)
        expected = pd.to_datetime(frame["event_datetime"])
        checkable = local.notna() & expected.notna()
        ok[checkable] = (local[checkable].astype("datetime64[s]") == expected[checkable].astype("datetime64[s]"))[
            checkable
        ].astype(object)
    frame["_tz_offset_ok"] = ok
    return frame


def _plain(value: Any) -> Any:
    """A short, JSON-friendly version of a value from a GX result."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            return value.item()
        except (ValueError, TypeError):
            return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _describe(res: Any) -> dict[str, Any]:
    """One failed expectation result -> {expectation, column, observed, examples}."""
    cfg = res.expectation_config
    kwargs = dict(cfg.kwargs)
    column = kwargs.get("column")
    if column is None and kwargs.get("column_list"):
        column = ", ".join(kwargs["column_list"])
    result = res.result or {}
    info = res.exception_info or {}
    raised = [v for v in info.values() if isinstance(v, dict) and v.get("raised_exception")]
    if info.get("raised_exception"):
        raised.append(info)
    examples: list[Any] = []
    if raised:
        observed = f"could not be evaluated: {raised[0].get('exception_message')}"
    elif cfg.type == "expect_table_columns_to_match_set":
        mismatched = (result.get("details") or {}).get("mismatched") or {}
        parts = []
        if mismatched.get("missing"):
            parts.append(f"missing columns {sorted(mismatched['missing'])}")
        if mismatched.get("unexpected"):
            parts.append(f"unexpected columns {sorted(mismatched['unexpected'])}")
        observed = "; ".join(parts) or f"observed columns {result.get('observed_value')}"
        column = ", ".join(sorted((mismatched.get("missing") or []) + (mismatched.get("unexpected") or []))) or None
        examples = sorted((mismatched.get("missing") or []) + (mismatched.get("unexpected") or []))[:MAX_EXAMPLES]
    elif "unexpected_count" in result:
        observed = f"{result['unexpected_count']} of {result.get('element_count')} rows unexpected"
        seen: list[Any] = []
        for v in _plain(result.get("partial_unexpected_list") or []):
            if v not in seen:
                seen.append(v)
        examples = seen[:MAX_EXAMPLES]
    else:
        observed = f"observed {_plain(result.get('observed_value'))}"
        bounds = {k: kwargs.get(k) for k in ("min_value", "max_value") if kwargs.get(k) is not None}
        if bounds:
            observed += f", expected {bounds}"
    failure = {"expectation": cfg.type, "column": column, "observed": observed, "examples": examples}
    meta = cfg.meta or {}
    if meta.get("derived_column"):
        failure["note"] = f"{column} is derived by the gate: {meta.get('why')}"
    return failure


def _message(result: dict[str, Any]) -> str:
    lines = []
    for table, info in result["tables"].items():
        for f in info["failed"]:
            where = f" on {f['column']}" if f["column"] else ""
            eg = f", e.g. {f['examples']!r}" if f["examples"] else ""
            note = f" ({f['note']})" if f.get("note") else ""
            lines.append(f"{table}: {f['expectation']}{where} failed: {f['observed']}{eg}{note}")
    return "silver quality gate failed:\n" + "\n".join(f"- {line}" for line in lines)


def _quiet_gx() -> None:
    for name in ("great_expectations", "great_expectations.core", "great_expectations.data_context"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def _context(site_dir: Path | None) -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites: dict[str, Any] = {}
    if site_dir is not None:
        sites[DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites=sites,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def run_gate(
    day: dt.date, layout: Layout | None = None, *, build_docs: bool = True, with_row_floor: bool = True
) -> dict[str, Any]:
    """Validate every silver table of ``day``; return the summary or raise :class:`QualityGateError`.

    Returns ``{"success", "day", "row_floor", "empty", "tables": {table: {"success", "evaluated", "rows",
    "files", "failed": [{"expectation", "column", "observed", "examples"[, "note"]}]}}}`` plus ``"data_docs"``
    (path of the site's ``index.html``) when ``build_docs``. ``empty`` lists the tables with a row-count floor
    that have no row that day; ``with_row_floor=False`` reports them instead of failing (see :func:`load_suite`).
    """
    _quiet_gx()
    import great_expectations as gx

    layout = layout or Layout.from_env()
    site_dir = docs_dir(layout) if build_docs else None
    if site_dir is not None:
        site_dir.mkdir(parents=True, exist_ok=True)
    context = _context(site_dir)
    source = context.data_sources.add_pandas("silver")
    summary: dict[str, Any] = {"success": True, "day": day.isoformat(), "row_floor": with_row_floor, "empty": [],
                               "tables": {}}  # fmt: skip
    rendered: list[Any] = []  # the results (and their suites) the Data Docs show, built once after the loop
    for table in SILVER_TABLES:
        frame, n_files = read_partition(table, day, layout)
        rows = len(frame)
        frame = add_derived_columns(table, frame)
        batch = source.add_dataframe_asset(name=table).add_batch_definition_whole_dataframe(f"{table}_whole")
        suite = context.suites.add(gx.ExpectationSuite(**load_suite(table, with_row_floor=with_row_floor)))
        if rows == 0 and row_floor(table) > 0:
            summary["empty"].append(table)
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"silver_{table}_{day.isoformat()}", data=batch, suite=suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"silver_gate_{table}",
                validation_definitions=[validation],
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": 20},
            )
        )
        outcome = checkpoint.run(batch_parameters={"dataframe": frame})
        for identifier in outcome.run_results:
            rendered += [identifier, identifier.expectation_suite_identifier]
        results = [r for vr in outcome.run_results.values() for r in vr.results]
        failed = [_describe(r) for r in results if not r.success]
        summary["tables"][table] = {
            "success": not failed,
            "evaluated": len(results),
            "rows": rows,
            "files": n_files,
            "failed": failed,
        }
        summary["success"] = summary["success"] and not failed
    if site_dir is not None:
        from transforms.quality.local_assets import localize

        # one site build for the day's tables (a build per checkpoint re-renders the index each time)
        context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=rendered, build_index=True)

        localize(site_dir)  # styled without internet: the CDN assets served from the site itself
        index = site_dir / "index.html"
        summary["data_docs"] = str(index) if index.exists() else None
    log.info("silver quality gate for %s: success=%s", day, summary["success"])
    if not summary["success"]:
        raise QualityGateError(_message(summary), summary)
    return summary
