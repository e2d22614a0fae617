"""Flatten JSON objects (``event_json``) into property rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

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


# --------------------------------------------------------------------------- whole columns

_DECODER = msgspec.json.Decoder()
_ARRAY_TEXT = json.JSONEncoder(**_COMPACT).encode
_FLOAT_TEXT = float.__repr__
_INFINITIES = (float("inf"), float("-inf"))


def _walk(row: int, obj: dict[str, Any], prefix: str, out: tuple[list[Any], ...]) -> None:
    """Append one leaf per value of ``obj`` to the four ``out`` lists (row, path, text, type), like ``flatten``."""
    rows, paths, values, kinds = out
    for key, value in obj.items():
        kind = type(value)
        if kind is dict:
            if value:
                _walk(row, value, f"{prefix}{key}.", out)
                continue
            values.append("{}")
            kinds.append("object")
        elif kind is str:
            values.append(value)
            kinds.append("string")
        elif kind is int:
            values.append(str(value))
            kinds.append("integer")
        elif kind is bool:
            values.append("true" if value else "false")
            kinds.append("boolean")
        elif kind is float:
            values.append(_FLOAT_TEXT(value) if value == value and value not in _INFINITIES else json.dumps(value))
            kinds.append("number")
        elif value is None:
            values.append(None)
            kinds.append("null")
        else:
            values.append(_ARRAY_TEXT(value))
            kinds.append("array")
        rows.append(row)
        paths.append(f"{prefix}{key}")


def flatten_texts(column: pa.Array | pa.ChunkedArray, eligible: np.ndarray) -> tuple[dict[int, str], pa.Table]:
    """Validate and flatten a whole column of JSON object texts, as ``parse_object`` + ``flatten`` would.

    Rows where ``eligible`` (a numpy bool array) is false or the text is empty/null are skipped.
    Returns ``(bad, leaves)``: ``bad`` maps a row to the ``ValueError`` message of a text that is not
    a JSON object, and ``leaves`` is a table (``row``, ``path``, ``value_text``, ``value_type``) with
    exactly the rows ``flatten`` gives, in row order then document order.

    Texts are decoded with msgspec (a C decoder, strict RFC 8259, a few times faster than ``json``);
    whatever it refuses is decoded again by ``json`` (which also takes NaN, Infinity, numbers out of
    the float range and lone surrogates), so the accepted texts and the values are ``json``'s.
    """
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    texts = arr.to_pylist()
    rows_out: list[int] = []
    paths: list[str] = []
    values: list[str | None] = []
    kinds: list[str] = []
    out = (rows_out, paths, values, kinds)
    bad: dict[int, str] = {}
    decode = _DECODER.decode

    for row in np.flatnonzero(eligible).tolist():
        text = texts[row]
        if not text:
            continue
        try:
            obj = decode(text)
        except (msgspec.DecodeError, UnicodeError):
            try:
                obj = json.loads(text)
            except ValueError as exc:
                bad[row] = str(exc)
                continue
        if not isinstance(obj, dict):
            bad[row] = f"expected a JSON object, got {type(obj).__name__}"
            continue
        _walk(row, obj, "", out)
    try:
        leaves = _leaves_table(rows_out, paths, values, kinds)
    except UnicodeEncodeError:
        # \ud800-style escapes decode to lone surrogates, which are not text: such objects are bad
        broken = {r for r, p, v in zip(rows_out, paths, values, strict=True) if not _encodable(p, v)}
        for r in broken:
            bad[r] = "a JSON string holds a lone surrogate (an unpaired \\ud800-\\udfff escape), not valid Unicode"
        keep = [i for i, r in enumerate(rows_out) if r not in broken]
        leaves = _leaves_table(*([col[i] for i in keep] for col in (rows_out, paths, values, kinds)))
    return bad, leaves


def _encodable(*texts: str | None) -> bool:
    try:
        for text in texts:
            if text is not None:
                text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _leaves_table(rows: list[int], paths: list[str], values: list[str | None], kinds: list[str]) -> pa.Table:
    return pa.Table.from_pydict(
        {
            "row": pa.array(rows, pa.int64()),
            "path": pa.array(paths, pa.string()),
            "value_text": pa.array(values, pa.string()),
            "value_type": pa.array(kinds, pa.string()),
        }
    )
