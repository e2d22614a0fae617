"""Typed values of declared fields, from JSON records or CSV text, with a reason when one does not fit.

Shared by the CSV inbox check and by silver, so a file accepted at the inbox types the same way
in silver. Reasons are those of the AppMetrica silver job where they mean the same thing
(``missing_required_field``, ``invalid_integer``, ``invalid_datetime``, ...).

Timestamps are returned as naive UTC ``datetime`` values: an ISO 8601 text with an offset is
converted to UTC, one without an offset is read in the source's time zone, a JSON number is Unix
seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any
from zoneinfo import ZoneInfo

from ingest.sources.config import FieldSpec

MISSING: Any = object()  # a path that leads nowhere (differs from an explicit JSON null)

_INT_RE = re.compile(r"^[+-]?[0-9]{1,19}$")
_NUM_RE = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_INT64 = (-(2**63), 2**63 - 1)
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
_UTC = dt.UTC


class BadValue(ValueError):
    """A value that does not fit its field: ``reason`` (a quarantine reason) and ``detail`` (field=value)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def get_path(record: Any, path: str) -> Any:
    """The value at dotted ``path`` of ``record``; MISSING when a key is absent.

    A segment ending in ``[]`` maps the rest of the path over a list: ``key_skills[].name`` of
    ``{"key_skills": [{"name": "SQL"}, {}]}`` is ``["SQL", MISSING]``. A null on the way gives null.
    """
    if path == "":
        return record
    head, _, rest = path.partition(".")
    many = head.endswith("[]")
    key = head[:-2] if many else head
    if record is None:
        return None
    if not isinstance(record, dict) or key not in record:
        return MISSING
    value = record[key]
    if many:
        if value is None:
            return None
        if not isinstance(value, list):
            return _NotAList(value)
        return [get_path(item, rest) if rest else item for item in value]
    return get_path(value, rest) if rest else value


class _NotAList:
    """Marks a ``[]`` segment that met something other than a list."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bad(reason: str, name: str, value: Any) -> BadValue:
    return BadValue(reason, f"{name}={_short(value)}")


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise _bad("invalid_integer", name, value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and _INT_RE.match(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int) or not _INT64[0] <= value <= _INT64[1]:
        raise _bad("invalid_integer", name, value)
    return value


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise _bad("invalid_number", name, value)
    if isinstance(value, str) and _NUM_RE.match(value.strip()):
        value = float(value.strip())
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad("invalid_number", name, value)
    return float(value)


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise _bad("invalid_boolean", name, value)


def _date(name: str, value: Any) -> dt.date:
    if isinstance(value, str) and _DATE_RE.match(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _bad("invalid_date", name, value)


def _timestamp(name: str, value: Any, tz: ZoneInfo) -> dt.datetime:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return dt.datetime.fromtimestamp(value, _UTC).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError):
            raise _bad("invalid_datetime", name, value) from None
    if isinstance(value, str) and _TS_RE.match(value.strip()):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise _bad("invalid_datetime", name, value) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz)
        return parsed.astimezone(_UTC).replace(tzinfo=None)
    raise _bad("invalid_datetime", name, value)


def _string(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return json.dumps(value)
    raise _bad("invalid_string", name, value)


def _scalar(name: str, ftype: str, value: Any, tz: ZoneInfo, *, from_text: bool) -> Any:
    if ftype == "string":
        return _string(name, value)
    if ftype == "integer":
        return _integer(name, value)
    if ftype == "number":
        return _number(name, value)
    if ftype == "boolean":
        return _boolean(name, value)
    if ftype == "date":
        return _date(name, value)
    if ftype == "timestamp":
        return _timestamp(name, value, tz)
    if ftype == "json":
        if from_text:
            try:
                value = json.loads(value)
            except ValueError:
                raise _bad("invalid_json", name, value) from None
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    raise AssertionError(f"unknown type {ftype}")  # pragma: no cover - config validation prevents it


def convert(spec: FieldSpec, value: Any, tz: ZoneInfo, *, from_text: bool = False) -> Any:
    """``value`` typed as ``spec`` says; None for a missing or null value; BadValue when it does not fit.

    ``from_text``: the value is CSV text (an empty string is a missing value).
    """
    if from_text and value == "":
        value = None
    if isinstance(value, _NotAList):
        raise _bad("invalid_array", spec.name, value.value)
    if value is None or value is MISSING:
        if spec.required:
            raise BadValue("missing_required_field", f"{spec.name}=<missing>")
        return None
    if spec.is_array:
        if not isinstance(value, list):
            raise _bad("invalid_array", spec.name, value)
        elem = spec.element_type
        return [None if v is None or v is MISSING else _scalar(spec.name, elem, v, tz, from_text=False) for v in value]
    return _scalar(spec.name, spec.type, value, tz, from_text=from_text)


def convert_record(
    fields: tuple[FieldSpec, ...], record: Any, tz: ZoneInfo, *, from_text: bool = False
) -> dict[str, Any]:
    """Every field of a JSON ``record`` (or a CSV row as a dict header -> text) typed; BadValue at the first misfit.

    Required fields are checked first, so a record missing its key says so rather than naming
    some other bad value.
    """
    if not isinstance(record, dict):
        raise BadValue("not_an_object", f"record={_short(record)}")
    raw = {f.name: get_path(record, f.path) if not from_text else record.get(f.path, MISSING) for f in fields}
    for f in fields:
        if f.required and (raw[f.name] is None or raw[f.name] is MISSING or (from_text and raw[f.name] == "")):
            raise BadValue("missing_required_field", f"{f.name}=<missing>")
    return {f.name: convert(f, raw[f.name], tz, from_text=from_text) for f in fields}
