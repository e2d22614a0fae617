"""Silver -> gold: run the dbt project, then publish its marts as Parquet under ``gold/``.

``build_gold`` runs ``dbt build`` (models, data tests and unit tests in one DAG, so a failing
test stops the step) in a subprocess, with ``target/`` and ``logs/`` under
``$LAKEHOUSE_DATA_DIR/warehouse/dbt/`` so nothing is written into the repository. The DuckDB file
dbt builds into is only a cache. Only when every node of the invocation succeeded are the marts
(models whose config has ``meta.gold``) copied out of it: each one is written, rows ordered by its
``meta.gold.order_by`` key, to a hidden temporary file beside its final path; once all are
written they are renamed onto ``gold/<mart>/<mart>.parquet``. A failed build or test therefore
leaves the previous gold files untouched, and a rerun over the same silver data gives
byte-identical files.

Importing this module is cheap: dbt runs in a child process, duckdb and pyarrow are imported
only when needed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakehouse.fsutil import TMP_PREFIX, fsync_path
from lakehouse.settings import REPO_ROOT, Layout, check_name

log = logging.getLogger(__name__)

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DEFAULT_SELECTOR = "gold"
WAREHOUSE_FILE = "lakehouse.duckdb"  # must match dbt_project/profiles.yml

_FAILED = frozenset({"error", "fail", "runtime error"})
_RESULT_KINDS = {"test": "data_tests", "unit_test": "unit_tests"}


class GoldBuildError(RuntimeError):
    """``dbt build`` (or the publication of its marts) failed; the message names the failing nodes."""

    def __init__(self, message: str, failures: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.failures = failures or []


@dataclass(frozen=True)
class _Mart:
    name: str
    relation: str
    order_by: tuple[str, ...]


def dbt_paths(layout: Layout, workspace: str | None = None) -> dict[str, Path]:
    """Where a dbt invocation for ``layout`` keeps its artifacts, logs and database.

    A ``workspace`` (a declared source's name) gets its own target, logs and DuckDB file, so its
    build never waits on, nor writes into, the AppMetrica build's database.
    """
    base = layout.warehouse / "dbt"
    database = layout.warehouse / WAREHOUSE_FILE
    if workspace is not None:
        base = base / check_name(workspace, what="dbt workspace")
        database = layout.warehouse / f"{workspace}.duckdb"
    return {
        "target": base / "target",
        "logs": base / "logs",
        "database": database,
        "docs": layout.root / "docs" / "dbt",
    }


def gold_path(layout: Layout, mart: str) -> Path:
    """The published Parquet file of ``mart``: ``gold/<mart>/<mart>.parquet``."""
    check_name(mart, what="gold mart")
    return layout.gold / mart / f"{mart}.parquet"


def _dbt_executable() -> list[str]:
    """The dbt of this interpreter's environment (its console script, or the same entry point via -c)."""
    script = Path(sys.executable).with_name("dbt")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "import sys; from dbt.cli.main import cli; sys.exit(cli())"]


def _dbt_command(args: list[str], *, target: Path, logs: Path) -> list[str]:
    return [
        *_dbt_executable(),
        "--no-use-colors",
        "--log-format",
        "text",
        *args,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(target),
        "--log-path",
        str(logs),
    ]


def _dbt_env(layout: Layout, database: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["LAKEHOUSE_DATA_DIR"] = str(layout.root)
    env["LAKEHOUSE_DBT_DATABASE"] = str(database or dbt_paths(layout)["database"])  # read by profiles.yml
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    if database is None or database == dbt_paths(layout)["database"]:  # the AppMetrica build reads the lake
        from lakehouse.storage import dbt_lake_env

        env |= dbt_lake_env(layout, Path(env["LAKEHOUSE_DBT_DATABASE"]))  # {} on local disk
    return env


def _run_dbt(
    args: list[str], layout: Layout, *, target: Path, logs: Path, database: Path | None = None
) -> tuple[int, list[str]]:
    """Run dbt with ``args``, logging its output line by line; return its exit code and output."""
    for folder in (target, logs, layout.warehouse):
        folder.mkdir(parents=True, exist_ok=True)
    cmd = _dbt_command(args, target=target, logs=logs)
    log.info("running: dbt %s", " ".join(args))
    lines: list[str] = []
    with subprocess.Popen(
        cmd,
        cwd=DBT_PROJECT_DIR,
        env=_dbt_env(layout, database),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip()
            lines.append(line)
            log.info("dbt | %s", line)
        returncode = proc.wait()
    return returncode, lines


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _node_label(unique_id: str) -> str:
    """``test.appmetrica_lakehouse.unique_x.abc123`` -> ``test unique_x``."""
    parts = unique_id.split(".")
    kind = parts[0]
    name = parts[2] if len(parts) > 2 else unique_id
    if kind == "unit_test" and len(parts) > 3:
        name = f"{parts[2]}.{parts[3]}"
    return f"{kind} {name}"


def _failures(run_results: dict[str, Any]) -> list[dict[str, Any]]:
    failed = []
    for result in run_results.get("results", []):
        if str(result.get("status")) in _FAILED:
            failed.append(
                {
                    "unique_id": result.get("unique_id", "?"),
                    "status": result.get("status"),
                    "message": (result.get("message") or "").strip(),
                    "failures": result.get("failures"),
                }
            )
    return failed


def _raise_failed(returncode: int, run_results: dict[str, Any] | None, output: list[str]) -> None:
    failures = _failures(run_results) if run_results else []
    if failures:
        listed = "; ".join(f"{_node_label(f['unique_id'])} [{f['status']}]: {f['message']}" for f in failures)
        skipped = sum(1 for r in (run_results or {}).get("results", []) if r.get("status") == "skipped")
        raise GoldBuildError(
            f"dbt build failed ({len(failures)} failing node(s), {skipped} skipped; gold left unchanged): {listed}",
            failures,
        )
    tail = "\n".join(output[-20:])
    raise GoldBuildError(f"dbt build exited with status {returncode} and no failing node recorded:\n{tail}")


def _marts(manifest: dict[str, Any], run_results: dict[str, Any]) -> list[_Mart]:
    """The gold marts (models with ``meta.gold``) that this invocation built successfully."""
    built = {r["unique_id"] for r in run_results.get("results", []) if r.get("status") == "success"}
    marts = []
    for unique_id, node in manifest.get("nodes", {}).items():
        if node.get("resource_type") != "model" or unique_id not in built:
            continue
        meta = node.get("config", {}).get("meta") or {}
        if "gold" not in meta:
            continue
        order_by = tuple((meta["gold"] or {}).get("order_by") or ())
        if not order_by:
            raise GoldBuildError(f"model {node['name']} has meta.gold but no meta.gold.order_by key")
        marts.append(_Mart(check_name(node["name"], what="gold mart"), node["relation_name"], order_by))
    return sorted(marts, key=lambda m: m.name)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _publish(layout: Layout, marts: list[_Mart], database: Path | None = None) -> dict[str, dict[str, Any]]:
    """Copy each mart to a temporary file beside its gold path, then rename them all into place."""
    import duckdb
    import pyarrow.parquet as pq

    token = uuid.uuid4().hex
    staged: list[tuple[_Mart, Path, Path]] = []
    try:
        with duckdb.connect(str(database or dbt_paths(layout)["database"]), read_only=True) as con:
            for mart in marts:
                final = gold_path(layout, mart.name)
                final.parent.mkdir(parents=True, exist_ok=True)
                for stale in final.parent.glob(f"{TMP_PREFIX}{final.name}.*"):
                    stale.unlink(missing_ok=True)
                tmp = final.with_name(f"{TMP_PREFIX}{final.name}.{token}")
                staged.append((mart, tmp, final))
                order_by = ", ".join(_quote(c) for c in mart.order_by)
                target = str(tmp).replace("'", "''")
                con.execute(
                    f"copy (select * from {mart.relation} order by {order_by}) "  # noqa: S608 - names from the manifest
                    f"to '{target}' (format parquet, compression zstd)"
                )
                fsync_path(tmp)
        summary: dict[str, dict[str, Any]] = {}
        for mart, tmp, final in staged:
            os.replace(tmp, final)
            fsync_path(final.parent)
            # readers glob gold/<mart>/**/*.parquet: any other Parquet file there would add rows
            for other in final.parent.rglob("*.parquet"):
                if other != final:
                    log.warning("removing %s: not part of the published %s mart", other, mart.name)
                    other.unlink()
            summary[mart.name] = {"path": str(final), "rows": pq.read_metadata(final).num_rows}
            log.info("published %s: %d rows -> %s", mart.name, summary[mart.name]["rows"], final)
        return summary
    except Exception as exc:
        if isinstance(exc, GoldBuildError):
            raise
        raise GoldBuildError(f"publishing the gold marts failed: {exc}") from exc
    finally:
        for _, tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def _feature_registry(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The feature registry of this build (see transforms/feature_registry.py), or None for a partial build.

    A gold column without complete registry metadata raises GoldBuildError. When some gold model
    was not compiled by this invocation (a ``--select`` build), the registry is left as it was.
    """
    from transforms.feature_registry import RegistryError, build_registry, gold_models

    uncompiled = [name for name, node in gold_models(manifest).items() if not node.get("compiled_code")]
    if uncompiled:
        log.warning("feature registry not updated: this build did not compile %s", ", ".join(uncompiled))
        return None
    try:
        return build_registry(manifest)
    except RegistryError as exc:
        raise GoldBuildError(f"{exc} (gold left unchanged)") from exc


def build_gold(
    layout: Layout | None = None,
    *,
    select: str | None = None,
    selector: str | None = None,
    workspace: str | None = None,
) -> dict[str, Any]:
    """Run ``dbt build`` over the silver data of ``layout`` and publish the gold marts it built.

    ``select`` is a dbt ``--select`` expression; by default the ``gold`` selector runs (the marts,
    everything upstream of them and all their tests); ``selector`` names another selector of
    ``selectors.yml`` instead (a declared source's, e.g. ``source_vacancies``), and ``workspace``
    gives that build its own target folder and DuckDB file (see :func:`dbt_paths`). Only the marts
    built by this invocation are published. Raises ``GoldBuildError`` naming the
    failing models/tests; nothing under ``gold/`` changes then. Returns
    ``{"marts": {mart: {"path": str, "rows": int}}, "feature_set_version": str | None,
    "models": {status: n}, "data_tests": {status: n}, "unit_tests": {status: n}, "elapsed_seconds": s}``
    (statuses as dbt reports them: success, pass, warn). The feature registry of the build is
    checked before the marts are published and written to ``gold/_registry/`` after them.
    """
    layout = layout or Layout.from_env()
    paths = dbt_paths(layout, workspace)
    if select is None and selector is None:
        from lakehouse.storage import silver_present

        silver_events = layout.silver_table("events_part")
        if not silver_present(layout):
            raise GoldBuildError(f"no silver events_part Parquet under {silver_events}: nothing to build gold from")
    run_results_path = paths["target"] / "run_results.json"
    run_results_path.unlink(missing_ok=True)

    started = time.monotonic()
    if select:
        args = ["build", "--select", select, "--indirect-selection", "buildable"]
    else:
        args = ["build", "--selector", selector or DEFAULT_SELECTOR]
    returncode, output = _run_dbt(args, layout, target=paths["target"], logs=paths["logs"], database=paths["database"])
    run_results = _read_json(run_results_path)
    if returncode != 0 or run_results is None or _failures(run_results):
        _raise_failed(returncode, run_results, output)
    assert run_results is not None

    manifest = _read_json(paths["target"] / "manifest.json") or {}
    # The registry describes the AppMetrica feature marts; a declared source's build leaves it alone.
    registry = _feature_registry(manifest) if selector is None else None  # checked before publishing
    marts = _publish(layout, _marts(manifest, run_results), paths["database"])
    if registry is not None:
        from transforms.feature_registry import write_registry

        log.info("feature registry: %s", write_registry(layout.gold, registry))

    counts: dict[str, Counter[str]] = {"models": Counter(), "data_tests": Counter(), "unit_tests": Counter()}
    for result in run_results.get("results", []):
        kind = _RESULT_KINDS.get(result.get("unique_id", "").split(".", 1)[0], "models")
        counts[kind][str(result.get("status"))] += 1
    summary = {
        "marts": marts,
        "feature_set_version": registry["feature_set_version"] if registry else None,
        **{kind: dict(sorted(c.items())) for kind, c in counts.items()},
        "elapsed_seconds": round(time.monotonic() - started, 1),
    }
    log.info("gold build done: %s", json.dumps(summary, sort_keys=True))
    return summary


def generate_docs(layout: Layout | None = None, target: Path | None = None) -> Path:
    """Run ``dbt docs generate`` into ``target`` (default ``$LAKEHOUSE_DATA_DIR/docs/dbt``) and return it.

    The catalog describes the tables of the last build (the DuckDB cache); the descriptions come
    from the project's YAML either way. ``static_index.html`` there is a single-file version.
    """
    layout = layout or Layout.from_env()
    paths = dbt_paths(layout)
    target = target or paths["docs"]
    returncode, output = _run_dbt(["docs", "generate", "--static"], layout, target=target, logs=paths["logs"])
    if returncode != 0 or not (target / "index.html").exists():
        tail = "\n".join(output[-20:])
        raise GoldBuildError(f"dbt docs generate exited with status {returncode}:\n{tail}")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the gold marts with dbt and publish them as Parquet.")
    parser.add_argument("--select", help="dbt --select expression (default: the 'gold' selector)")
    parser.add_argument("--docs", action="store_true", help="generate the dbt docs instead of building")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.docs:
            print(generate_docs())
        else:
            print(json.dumps(build_gold(select=args.select), indent=2, sort_keys=True))
    except GoldBuildError as exc:
        print(f"gold build failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
