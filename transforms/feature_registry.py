"""The feature registry: every column of every gold mart, described from dbt's ``manifest.json``.

Each gold model (``meta.gold``) declares its grain at model level and every column's feature
metadata in its YAML::

    config:
      meta:
        features: {grain: [appmetrica_device_id, feature_date], entity: device,
                   entity_key: appmetrica_device_id, timestamp: feature_date}
    columns:
      - name: events_7d
        description: ...
        config:
          meta:
            feature: {role: feature, entity: device, value_type: int64, owner: product-analytics,
                      tags: [activity, events], window: 7d}

The registry has one entry per (model, column) with that metadata, the column's description
(the dbt ``description``, so dbt docs and the registry say the same) and ``data_type``, and a
``version``: a content hash of the model's compiled SQL, the raw-SQL checksums of every model
upstream of it, and the column's name, type, description and meta. The ``feature_set_version``
hashes all entries' versions, so it changes exactly when some feature's SQL (including a dbt var
such as the transformers' training window, which is compiled into the SQL) or metadata changes.
An incremental model's compiled SQL depends on whether its table already existed, so for those
the raw SQL stands in.

``build_registry`` raises :class:`RegistryError` naming every column whose metadata is missing
or invalid; ``transforms.gold.build_gold`` calls it before anything is published, so a gold
column without a registry entry stops the build. The registry is written next to the marts as
``gold/_registry/feature_registry.json`` and ``feature_registry.parquet`` (same entries, one row
each), with no timestamp inside, so a rebuild of unchanged models gives identical files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from lakehouse.fsutil import atomic_file, json_bytes

REGISTRY_DIR = "_registry"
REGISTRY_JSON = "feature_registry.json"
REGISTRY_PARQUET = "feature_registry.parquet"
REGISTRY_FORMAT = 1

FEATURE_META_KEYS = ("role", "entity", "value_type", "owner", "tags", "window")
MODEL_META_KEYS = ("grain", "entity", "entity_key", "timestamp")
ROLES = frozenset({"entity_key", "timestamp", "feature", "attribute", "parameter", "version"})

ENTRY_FIELDS = (
    "name",
    "model",
    "column",
    "role",
    "entity",
    "value_type",
    "data_type",
    "description",
    "owner",
    "tags",
    "window",
    "grain",
    "entity_key",
    "timestamp_column",
    "version",
)


class RegistryError(ValueError):
    """The manifest cannot give a complete registry; the message names each model/column at fault."""


def _sha(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def gold_models(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The manifest's AppMetrica gold marts (models with ``meta.gold``, not a declared source's), by name."""
    out = {}
    for node in manifest.get("nodes", {}).values():
        if "declared_source" in (node.get("tags") or []):
            continue  # built by its source's own selector; the feature registry covers the AppMetrica marts
        if node.get("resource_type") == "model" and "gold" in ((node.get("config") or {}).get("meta") or {}):
            out[node["name"]] = node
    return dict(sorted(out.items()))


def _column_meta(column: dict[str, Any]) -> dict[str, Any]:
    merged = dict(column.get("meta") or {})
    merged.update((column.get("config") or {}).get("meta") or {})
    return merged


def _upstream_checksums(manifest: dict[str, Any], node: dict[str, Any]) -> dict[str, str]:
    """Raw-SQL checksum of every model upstream of ``node`` (transitively), by unique id."""
    nodes = manifest.get("nodes", {})
    seen: dict[str, str] = {}
    stack = list((node.get("depends_on") or {}).get("nodes") or [])
    while stack:
        uid = stack.pop()
        if uid in seen or uid not in nodes:
            continue
        parent = nodes[uid]
        if parent.get("resource_type") != "model":
            continue
        seen[uid] = (parent.get("checksum") or {}).get("checksum", "")
        stack.extend((parent.get("depends_on") or {}).get("nodes") or [])
    return dict(sorted(seen.items()))


def _model_sql(node: dict[str, Any]) -> str | None:
    config = node.get("config") or {}
    if config.get("materialized") == "incremental":
        return node.get("raw_code")
    return node.get("compiled_code")


def _check_model_meta(name: str, node: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    meta = ((node.get("config") or {}).get("meta") or {}).get("features")
    if not isinstance(meta, dict):
        problems.append(f"model {name}: config.meta.features (grain, entity, entity_key, timestamp) is missing")
        return {}
    missing = [k for k in MODEL_META_KEYS if k not in meta]
    if missing:
        problems.append(f"model {name}: config.meta.features lacks {', '.join(missing)}")
    columns = set(node.get("columns") or {})
    grain = meta.get("grain")
    if not isinstance(grain, list) or not grain or not all(isinstance(c, str) for c in grain):
        problems.append(f"model {name}: config.meta.features.grain must be a non-empty list of column names")
    elif set(grain) - columns:
        problems.append(f"model {name}: grain column(s) {sorted(set(grain) - columns)} are not declared columns")
    for key in ("entity_key", "timestamp"):
        value = meta.get(key)
        if value is not None and value not in columns:
            problems.append(f"model {name}: features.{key} {value!r} is not a declared column")
    return meta


def _check_feature_meta(label: str, meta: Any, problems: list[str]) -> bool:
    if not isinstance(meta, dict):
        problems.append(f"column {label}: config.meta.feature ({', '.join(FEATURE_META_KEYS)}) is missing")
        return False
    ok = True
    missing = [k for k in FEATURE_META_KEYS if meta.get(k) in (None, "")]
    if missing:
        problems.append(f"column {label}: config.meta.feature lacks {', '.join(missing)}")
        ok = False
    if meta.get("role") not in ROLES and "role" not in missing:
        problems.append(f"column {label}: role {meta.get('role')!r} is not one of {sorted(ROLES)}")
        ok = False
    tags = meta.get("tags")
    if "tags" not in missing and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        problems.append(f"column {label}: tags must be a list of strings, got {tags!r}")
        ok = False
    return ok


def build_registry(manifest: dict[str, Any]) -> dict[str, Any]:
    """The registry of every gold mart column in ``manifest`` (a parsed dbt ``manifest.json``).

    Returns ``{"format", "feature_set_version", "models": {name: {...}}, "features": [entry, ...]}``
    with entries in model order, then column order. Raises RegistryError listing every problem
    (a gold model without ``meta.features``, a column without complete ``meta.feature``, a column
    without a description or data_type, a model that this dbt invocation did not compile).
    """
    marts = gold_models(manifest)
    if not marts:
        raise RegistryError("the dbt manifest has no gold models (meta.gold): nothing to register")
    problems: list[str] = []
    models: dict[str, dict[str, Any]] = {}
    features: list[dict[str, Any]] = []
    for name, node in marts.items():
        model_meta = _check_model_meta(name, node, problems)
        sql = _model_sql(node)
        if not sql:
            problems.append(f"model {name}: no compiled SQL in the manifest (was it built in this invocation?)")
            sql = ""
        sql_hash = _sha({"sql": sql, "upstream": _upstream_checksums(manifest, node)})
        columns = node.get("columns") or {}
        if not columns:
            problems.append(f"model {name}: declares no columns")
        models[name] = {
            "description": " ".join((node.get("description") or "").split()),
            "grain": model_meta.get("grain"),
            "entity": model_meta.get("entity"),
            "entity_key": model_meta.get("entity_key"),
            "timestamp_column": model_meta.get("timestamp"),
            "columns": list(columns),
            "sql_hash": sql_hash,
        }
        for column_name, column in columns.items():
            label = f"{name}.{column_name}"
            meta = _column_meta(column).get("feature")
            if not _check_feature_meta(label, meta, problems):
                continue
            description = " ".join((column.get("description") or "").split())
            if not description:
                problems.append(f"column {label}: has no description")
            if not column.get("data_type"):
                problems.append(f"column {label}: has no data_type")
            entry = {
                "name": label,
                "model": name,
                "column": column_name,
                "role": meta["role"],
                "entity": meta["entity"],
                "value_type": str(meta["value_type"]),
                "data_type": column.get("data_type"),
                "description": description,
                "owner": str(meta["owner"]),
                "tags": list(meta["tags"]),
                "window": str(meta["window"]),
                "grain": model_meta.get("grain"),
                "entity_key": model_meta.get("entity_key"),
                "timestamp_column": model_meta.get("timestamp"),
            }
            entry["version"] = _sha({"model_sql": sql_hash, "column": {k: entry[k] for k in ENTRY_FIELDS[:-1]}})[:16]
            features.append(entry)
    if problems:
        raise RegistryError(f"the feature registry is incomplete ({len(problems)} problem(s)): " + "; ".join(problems))
    version = _sha([[f["name"], f["version"]] for f in features])[:16]
    return {"format": REGISTRY_FORMAT, "feature_set_version": version, "models": models, "features": features}


def registry_paths(gold: Path) -> dict[str, Path]:
    """Where the registry files live under a gold folder."""
    folder = gold / REGISTRY_DIR
    return {"dir": folder, "json": folder / REGISTRY_JSON, "parquet": folder / REGISTRY_PARQUET}


def registry_table(registry: dict[str, Any]) -> Any:
    """The registry's entries as a pyarrow Table (one row per column), with the feature-set version."""
    import pyarrow as pa

    features = registry["features"]
    string_fields = [f for f in ENTRY_FIELDS if f not in {"tags", "grain"}]
    columns: dict[str, Any] = {"feature_set_version": pa.array([registry["feature_set_version"]] * len(features))}
    for field in ENTRY_FIELDS:
        values = [f[field] for f in features]
        if field in string_fields:
            columns[field] = pa.array(values, type=pa.string())
        else:
            columns[field] = pa.array(values, type=pa.list_(pa.string()))
    return pa.table(columns)


def write_registry(gold: Path, registry: dict[str, Any]) -> dict[str, Any]:
    """Write the registry as JSON and Parquet under ``gold/_registry/`` (each file atomically).

    The Parquet copy is written first, the JSON (what readers open first) last. Returns
    ``{"json": path, "parquet": path, "feature_set_version": str, "features": n}``.
    """
    import pyarrow.parquet as pq

    paths = registry_paths(gold)
    with atomic_file(paths["parquet"]) as fh:
        pq.write_table(registry_table(registry), fh, compression="zstd")
    with atomic_file(paths["json"]) as fh:
        fh.write(json_bytes(registry))
    return {
        "json": str(paths["json"]),
        "parquet": str(paths["parquet"]),
        "feature_set_version": registry["feature_set_version"],
        "features": len(registry["features"]),
    }


def read_registry(path: Path) -> dict[str, Any]:
    """Load a registry JSON file; raises RegistryError when it is missing or not a registry."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(f"no feature registry at {path}: build gold first (lakehouse gold)") from None
    except (OSError, ValueError) as exc:
        raise RegistryError(f"feature registry {path} is not readable JSON: {exc}") from exc
    return check_registry(data, where=str(path))


def check_registry(data: Any, *, where: str) -> dict[str, Any]:
    """Validate the shape of a loaded registry (from a file or an S3 object)."""
    if not isinstance(data, dict) or not isinstance(data.get("features"), list) or "feature_set_version" not in data:
        raise RegistryError(f"{where} is not a feature registry (no feature_set_version / features)")
    return data
