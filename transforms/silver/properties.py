"""Flatten JSON objects (``event_json``, profile ``custom_attributes``) into property rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

_COMPACT = {"ensure_ascii": False, "separators": (",", ":"), "sort_keys": True}


def parse_object(text: str) -> dict[str, Any]:
    """Parse ``text`` as a JSON object; raise ``ValueError`` saying what it was instead."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _leaf(value: Any) -> tuple[str | None, str]:
    if value is None:
        return None, "null"
    if isinstance(value, bool):
        return ("true" if value else "false"), "boolean"
    if isinstance(value, int):
        return str(value), "integer"
    if isinstance(value, float):
        return json.dumps(value), "number"
    if isinstance(value, str):
        return value, "string"
    if isinstance(value, list):
        return json.dumps(value, **_COMPACT), "array"
    return json.dumps(value, **_COMPACT), "object"  # only reached for an empty object


def flatten(obj: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str | None, str]]:
    """Yield ``(dotted_path, value_as_text, value_type)`` for every leaf of ``obj``.

    Nested objects become dotted paths (``screen.params.tab``); arrays are leaves kept as
    compact JSON text; an empty nested object is a leaf of type ``object``.
    """
    for key, value in obj.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from flatten(value, f"{path}.")
        else:
            text, kind = _leaf(value)
            yield path, text, kind
