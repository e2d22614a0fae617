"""Vectorised typing of bronze text columns, with a reason for every value that does not fit.

A column is converted with pyarrow compute in one pass; rows whose value cannot be converted
get a quarantine reason naming the column instead of failing the batch.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_INT_RE = r"^-?[0-9]{1,19}$"
_UINT_RE = r"^[0-9]{1,20}$"
# A plain decimal number, optionally with an exponent: "4.99", "-0.99", "12", ".5", "1.5E-4" (no
# thousands separators, no comma as the decimal mark, no NaN or Infinity).
_DECIMAL_RE = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,4})?$"
_DECIMAL_CONTEXT = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_EVEN)
_TRUE = ("true", "1")
_FALSE = ("false", "0")
_FORMATS = {pa.timestamp("s"): "%Y-%m-%d %H:%M:%S", pa.date32(): "%Y-%m-%d"}
# The exact text each format gives, and where each field sits in it.
_SHAPES = {
    pa.timestamp("s"): r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$",
    pa.date32(): r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
}
_FIELDS = (
    (0, 4, pc.year),
    (5, 7, pc.month),
    (8, 10, pc.day),
    (11, 13, pc.hour),
    (14, 16, pc.minute),
    (17, 19, pc.second),
)


@dataclass
class CastResult:
    """Typed columns for every input row, and per row the first problem found (null = good)."""

    columns: dict[str, pa.Array]
    reason: pa.Array  # string, null where the row is good
    detail: pa.Array  # string, null where the row is good


def blank_to_null(arr: pa.Array) -> pa.Array:
    """Empty strings are missing values in exports.

    For a string array without nulls this only adds a validity bitmap to the same buffers (no copy).
    """
    if arr.type == pa.string() and arr.null_count == 0 and len(arr):
        _, offsets, data = arr.buffers()
        bounds = np.frombuffer(offsets, dtype=np.int32, count=len(arr) + 1, offset=arr.offset * 4)
        present = np.diff(bounds) != 0
        if present.all():
            return arr
        if arr.offset:  # the bitmap counts from the start of the buffers, like the offsets
            present = np.concatenate([np.ones(arr.offset, dtype=bool), present])
        validity = pa.py_buffer(np.packbits(present, bitorder="little"))
        return pa.StringArray.from_buffers(len(arr), offsets, data, validity, offset=arr.offset)
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def _cast_ints(arr: pa.Array, typ: pa.DataType) -> tuple[pa.Array, pa.Array]:
    pattern = _UINT_RE if pa.types.is_unsigned_integer(typ) else _INT_RE
    ok = pc.fill_null(pc.match_substring_regex(arr, pattern), True)
    candidates = pc.if_else(ok, arr, pa.scalar(None, pa.string()))
    try:
        return pc.cast(candidates, typ), ok
    except (pa.ArrowInvalid, OverflowError):
        # Out of range for the type: find the offending values one by one (rare path).
        values, oks = [], []
        for v in candidates.to_pylist():
            try:
                values.append(None if v is None else pa.scalar(int(v), typ).as_py())
                oks.append(True)
            except (pa.ArrowInvalid, OverflowError, ValueError):
                values.append(None)
                oks.append(False)
        mask = pc.and_(ok, pa.array(oks))
        return pa.array(values, typ), mask


def _cast_temporal(arr: pa.Array, typ: pa.DataType) -> tuple[pa.Array, pa.Array]:
    fmt = _FORMATS[typ]
    parsed = pc.strptime(arr, format=fmt, unit="s", error_is_null=True)
    # strptime normalises impossible dates (Feb 30 -> Mar 2, second 60 -> the next minute): a value
    # is valid only if it round-trips, i.e. it has the exact shape of the format and every field
    # read back from the parsed value equals the digits at its place in the text (the same answer
    # as formatting the parsed value again and comparing, at a fraction of the cost).
    ok = pc.and_(pc.match_substring_regex(arr, _SHAPES[typ]), pc.is_valid(parsed))
    fields = _FIELDS if typ == pa.timestamp("s") else _FIELDS[:3]
    safe = pc.if_else(ok, arr, pa.scalar("0000-00-00 00:00:00"[: 19 if typ == pa.timestamp("s") else 10]))
    filled = pc.fill_null(parsed, pa.scalar(0, parsed.type))
    for start, stop, part in fields:
        digits = pc.cast(pc.utf8_slice_codeunits(safe, start, stop), pa.int64())
        ok = pc.and_(ok, pc.equal(digits, pc.cast(part(filled), pa.int64())))
    ok = pc.fill_null(ok, False)
    ok = pc.or_(ok, pc.is_null(arr))
    parsed = pc.if_else(ok, parsed, pa.scalar(None, parsed.type))
    return (parsed if typ == pa.timestamp("s") else pc.cast(parsed, typ)), ok


def _cast_decimal(arr: pa.Array, typ: pa.Decimal128Type) -> tuple[pa.Array, pa.Array]:
    """Decimal text -> ``typ``, rounded half to even to its scale; out of its range or not a number: not ok."""
    shaped = pc.fill_null(pc.match_substring_regex(arr, _DECIMAL_RE), True)
    quantum = decimal.Decimal(1).scaleb(-typ.scale)
    limit = decimal.Decimal(10) ** (typ.precision - typ.scale)
    values: list[decimal.Decimal | None] = []
    oks: list[bool] = []
    for text, ok in zip(arr.to_pylist(), shaped.to_pylist(), strict=True):
        value = None
        if text is not None and ok:
            value = _DECIMAL_CONTEXT.quantize(decimal.Decimal(text), quantum)
            ok = abs(value) < limit
            value = value if ok else None
        values.append(value)
        oks.append(bool(ok))
    return pa.array(values, typ), pa.array(oks, pa.bool_())


def _cast_bool(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    lowered = pc.utf8_lower(arr)
    is_true = pc.is_in(lowered, pa.array(_TRUE))
    is_false = pc.is_in(lowered, pa.array(_FALSE))
    ok = pc.or_(pc.or_(is_true, is_false), pc.is_null(arr))
    values = pc.if_else(ok, is_true, pa.scalar(None, pa.bool_()))
    values = pc.if_else(pc.is_null(arr), pa.scalar(None, pa.bool_()), values)
    return values, ok


def cast_table(
    raw: dict[str, pa.Array],
    types: dict[str, pa.DataType],
    required: tuple[str, ...],
    enums: dict[str, tuple[str, ...]] | None = None,
) -> CastResult:
    """Type ``raw`` text columns (blank already null) by ``types``; text stays text.

    The reason for a bad row is the first of: a required value missing, then a value that does
    not parse as its column's type or is outside its column's ``enums`` set (in column order).
    """
    n = len(next(iter(raw.values()))) if raw else 0
    reason = pa.nulls(n, pa.string())
    detail = pa.nulls(n, pa.string())

    def flag(bad: pa.Array, why: str, column: str) -> None:
        nonlocal reason, detail
        bad = pc.and_(pc.fill_null(bad, False), pc.is_null(reason))
        if not pc.any(bad).as_py():
            return
        values = raw[column]
        text = pc.binary_join_element_wise(pa.scalar(f"{column}="), pc.fill_null(values, "<empty>"), "")
        reason = pc.if_else(bad, pa.scalar(why), reason)
        detail = pc.if_else(bad, text, detail)

    for column in required:
        flag(pc.is_null(raw[column]), "missing_required_field", column)

    columns: dict[str, pa.Array] = {}
    for column, arr in raw.items():
        typ = types.get(column, pa.string())
        if typ == pa.string():
            allowed = (enums or {}).get(column)
            if allowed is not None:
                unknown = pc.and_(pc.is_valid(arr), pc.invert(pc.is_in(arr, pa.array(allowed, pa.string()))))
                flag(unknown, "unknown_enum_value", column)
            columns[column] = arr
            continue
        if pa.types.is_integer(typ):
            values, ok = _cast_ints(arr, typ)
            why = "invalid_integer"
        elif typ in _FORMATS:
            values, ok = _cast_temporal(arr, typ)
            why = "invalid_datetime" if typ == pa.timestamp("s") else "invalid_date"
        elif pa.types.is_boolean(typ):
            values, ok = _cast_bool(arr)
            why = "invalid_boolean"
        elif pa.types.is_decimal(typ):
            values, ok = _cast_decimal(arr, typ)
            why = "invalid_decimal"
        else:  # pragma: no cover - schemas only use the types above
            raise TypeError(f"no conversion for column {column} of type {typ}")
        flag(pc.invert(ok), why, column)
        columns[column] = values
    return CastResult(columns, reason, detail)
