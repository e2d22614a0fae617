"""Typed values of declared fields: JSON paths, conversions and the reason when a value does not fit."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ingest.sources.config import FieldSpec
from ingest.sources.values import MISSING, BadValue, convert, convert_record, get_path

UTC = ZoneInfo("UTC")
MSK = ZoneInfo("Europe/Moscow")


def test_get_path_walks_objects_and_maps_lists():
    record = {"a": {"b": 1}, "skills": [{"name": "SQL"}, {}, {"name": None}], "n": None}
    assert get_path(record, "a.b") == 1
    assert get_path(record, "a.c") is MISSING
    assert get_path(record, "n.x") is None  # a null on the way gives null
    assert get_path(record, "skills[].name") == ["SQL", MISSING, None]
    assert get_path({"skills": None}, "skills[].name") is None
    assert get_path({"x": 5}, "") == {"x": 5}


@pytest.mark.parametrize(
    ("ftype", "value", "expected"),
    [
        ("string", "abc", "abc"),
        ("string", 17, "17"),
        ("integer", 5, 5),
        ("integer", "-12", -12),
        ("integer", 3.0, 3),
        ("number", "2.5e3", 2500.0),
        ("number", 7, 7.0),
        ("boolean", "TRUE", True),
        ("boolean", 0, False),
        ("date", "2026-02-28", dt.date(2026, 2, 28)),
        ("timestamp", "2026-11-01T10:00:00+0300", dt.datetime(2026, 11, 1, 7, 0)),
        ("timestamp", "2026-11-01T10:00:00Z", dt.datetime(2026, 11, 1, 10, 0)),
        ("timestamp", 1_700_000_000, dt.datetime(2023, 11, 14, 22, 13, 20)),
        ("json", {"b": 1, "a": [1, 2]}, '{"a":[1,2],"b":1}'),
        ("array[string]", ["x", None], ["x", None]),
        ("array[integer]", [1, "2"], [1, 2]),
    ],
)
def test_values_convert(ftype, value, expected):
    assert convert(FieldSpec("f", ftype, "f"), value, UTC) == expected


def test_naive_timestamps_are_read_in_the_sources_zone():
    spec = FieldSpec("t", "timestamp", "t")
    assert convert(spec, "2026-11-01 10:00:00", MSK) == dt.datetime(2026, 11, 1, 7, 0)
    assert convert(spec, "2026-11-01 10:00:00", MSK, from_text=True) == dt.datetime(2026, 11, 1, 7, 0)


@pytest.mark.parametrize(
    ("ftype", "value", "reason"),
    [
        ("string", {"a": 1}, "invalid_string"),
        ("integer", True, "invalid_integer"),
        ("integer", "1.5", "invalid_integer"),
        ("integer", 2**63, "invalid_integer"),
        ("number", "NaN", "invalid_number"),
        ("number", float("inf"), "invalid_number"),
        ("boolean", "maybe", "invalid_boolean"),
        ("date", "2026-02-30", "invalid_date"),
        ("date", "01.02.2026", "invalid_date"),
        ("timestamp", "2026-11-01", "invalid_datetime"),
        ("timestamp", "yesterday", "invalid_datetime"),
        ("timestamp", "2026-13-01T00:00:00", "invalid_datetime"),
        ("array[string]", "SQL", "invalid_array"),
        ("array[integer]", [1, "x"], "invalid_integer"),
    ],
)
def test_values_that_do_not_fit_give_their_reason(ftype, value, reason):
    with pytest.raises(BadValue) as info:
        convert(FieldSpec("f", ftype, "f"), value, UTC)
    assert info.value.reason == reason
    assert info.value.detail.startswith("f=")


def test_csv_text_blank_is_missing_and_json_text_is_parsed():
    assert convert(FieldSpec("n", "integer", "n"), "", UTC, from_text=True) is None
    assert convert(FieldSpec("j", "json", "j"), '{"b": 2}', UTC, from_text=True) == '{"b":2}'
    with pytest.raises(BadValue, match="invalid_json"):
        convert(FieldSpec("j", "json", "j"), "{nope", UTC, from_text=True)


def test_records_check_required_fields_first():
    fields = (
        FieldSpec("amount", "integer", "amount"),
        FieldSpec("id", "string", "meta.id", required=True),
        FieldSpec("skills", "array[string]", "skills[].name"),
    )
    assert convert_record(fields, {"amount": "3", "meta": {"id": "a"}, "skills": [{"name": "Go"}]}, UTC) == {
        "amount": 3,
        "id": "a",
        "skills": ["Go"],
    }
    with pytest.raises(BadValue) as info:
        convert_record(fields, {"amount": "x", "meta": {}}, UTC)
    assert (info.value.reason, info.value.detail) == ("missing_required_field", "id=<missing>")
    with pytest.raises(BadValue, match="not_an_object"):
        convert_record(fields, ["not", "a", "record"], UTC)
    with pytest.raises(BadValue, match="invalid_array"):
        convert_record(fields, {"meta": {"id": "a"}, "skills": "Go"}, UTC)
