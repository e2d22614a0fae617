"""``lakehouse features ...``: list the registry, build a training set, look up one device."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lakehouse.console import result, result_json
from lakehouse.features.online import json_value

_DRIFT_COLUMNS = ("feature", "rows", "null_rate", "mean", "p50", "p95", "psi", "fit_start_date", "fit_end_date")
_LIST_COLUMNS = ("name", "role", "value_type", "window", "entity", "owner", "tags", "version")


def add_parser(sub: Any) -> None:
    """Add the ``features`` subcommand (with its own subcommands) to the ``lakehouse`` parser."""
    parser = sub.add_parser("features", help="the feature registry, point-in-time training sets, latest lookups")
    parser.add_argument(
        "--source", default=None, help="'local' (default: $LAKEHOUSE_DATA_DIR/gold), a gold folder, 's3' or s3://b/p"
    )
    commands = parser.add_subparsers(dest="features_command", required=True)
    listing = commands.add_parser("list", help="print the feature registry as a table")
    listing.add_argument("--model", help="only this gold model")
    listing.add_argument("--json", action="store_true", help="print the registry JSON instead")
    historical = commands.add_parser("historical", help="join features point-in-time onto entity rows")
    historical.add_argument("--entities", required=True, help="CSV/Parquet: appmetrica_device_id, event_timestamp")
    historical.add_argument("--features", required=True, help="comma-separated names, e.g. events_7d,sessions_7d")
    historical.add_argument("--out", required=True, help="output file, .csv or .parquet")
    historical.add_argument("--no-feature-dates", action="store_true", help="leave out the <mart>__<date> columns")
    historical.add_argument(
        "--as-of", help="read gold as it was: a gold table version, or an ISO 8601 time with an offset (time travel)"
    )
    drift = commands.add_parser("drift", help="one date of feature_stats_daily, with the features past a threshold")
    drift.add_argument("--date", required=True, help="the feature_date, YYYY-MM-DD")
    drift.add_argument("--json", action="store_true", help="print the report as JSON instead")
    latest = commands.add_parser("latest", help="the latest feature vector of one device")
    latest.add_argument("device_id")
    latency = commands.add_parser("latency", help="time latest-feature lookups (p50/p99)")
    latency.add_argument("-n", type=int, default=1000)
    latency.add_argument("--through", choices=["http", "store"], default="http")


def format_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """Rows as a plain fixed-width text table."""
    cells = [[", ".join(v) if isinstance(v := row.get(c), list) else ("" if v is None else str(v)) for c in columns]
             for row in rows]  # fmt: skip
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``lakehouse features ...`` command; FeatureError/ConfigError propagate to the CLI."""
    from lakehouse import features
    from lakehouse.features.historical import read_entities, write_result

    command = args.features_command
    if command == "list":
        registry = features.list_features(args.source)
        entries = [f for f in registry["features"] if args.model in (None, f["model"])]
        if args.model and not entries:
            raise features.FeatureError(f"no gold model {args.model!r} in the registry")
        if args.json:
            result_json(registry if not args.model else {**registry, "features": entries})
            return 0
        result(f"feature set version {registry['feature_set_version']}: {len(entries)} columns")
        result(format_table(entries, _LIST_COLUMNS))
    elif command == "historical":
        table = features.historical_table(
            read_entities(args.entities),
            args.features,
            source=args.source,
            include_feature_dates=not args.no_feature_dates,
            as_of=args.as_of,
        )
        path = write_result(table, args.out)
        versions = json.loads((table.schema.metadata or {}).get(b"lakehouse.gold_versions", b"{}"))
        result_json({"out": str(path), "rows": table.num_rows, "columns": table.column_names,
                     "gold_versions": versions}, indent=None)  # fmt: skip
    elif command == "drift":
        from lakehouse.features.drift import breach_lines, drift_report

        report = drift_report(args.date, args.source)
        if args.json:
            result_json(report)
            return 0
        if not report["features"]:
            raise features.FeatureError(f"feature_stats_daily has no rows for {report['date']}")
        limits = report["thresholds"]
        result(f"feature drift on {report['date']} (reported: psi > {limits['psi']:g} after the training window, "
               f"null_rate > {limits['null_rate']:g})")  # fmt: skip
        rows = [{k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()} for row in report["features"]]
        result(format_table(rows, _DRIFT_COLUMNS))
        lines = breach_lines(report)
        result(
            "\n".join(["past a threshold:", *(f"  {line}" for line in lines)])
            if lines
            else "no feature past a threshold"
        )
    elif command == "latest":
        found = features.LatestFeatureStore(args.source).lookup(args.device_id)
        if found is None:
            raise features.FeatureError(f"no features for device {args.device_id}")
        result_json(found | {"features": {k: json_value(v) for k, v in found["features"].items()}})
    elif command == "latency":
        result_json(features.lookup_latency(args.n, source=args.source, through=args.through))
    return 0
