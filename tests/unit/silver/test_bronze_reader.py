"""Record-level reading of bronze files: every record comes out good or bad, none is lost."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from transforms.silver.bronze_reader import BadRecord, Record, iter_records, read_header


def _records(path: Path, max_field_chars: int = 131_072) -> list[Record | BadRecord]:
    return list(iter_records(path, read_header(path), max_field_chars))


def _write(tmp_path: Path, text: bytes, name: str = "x.csv.gz") -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(text, mtime=0))
    return path


def test_unbalanced_quote_keeps_the_rows_it_would_swallow(tmp_path):
    path = _write(tmp_path, b'a,b,c\n1,"broken,3\n4,5,6\n7,"x ""y""",9\n10,11,12\n')
    recs = _records(path)
    assert [type(r).__name__ for r in recs] == ["BadRecord", "Record", "Record", "Record"]
    bad = recs[0]
    assert (bad.row, bad.reason, bad.raw) == (1, "broken_csv_record", '1,"broken,3')
    assert bad.detail.startswith("line 2:")
    assert [r.values for r in recs[1:]] == [["4", "5", "6"], ["7", 'x "y"', "9"], ["10", "11", "12"]]
    assert [r.row for r in recs] == [1, 2, 3, 4]


def test_unclosed_quote_at_the_end_of_the_file(tmp_path):
    path = _write(tmp_path, b'a,b,c\n1,2,3\n4,"never closed,6\n7,8,9\n')
    recs = _records(path)
    assert [(r.row, getattr(r, "reason", None)) for r in recs] == [(1, None), (2, "broken_csv_record"), (3, None)]
    assert recs[2].values == ["7", "8", "9"]


def test_a_quoted_multiline_field_is_one_good_record(tmp_path):
    path = _write(tmp_path, b'a,b,c\n1,"line one\nline two",3\n4,5,6\n')
    recs = _records(path)
    assert [r.values for r in recs] == [["1", "line one\nline two", "3"], ["4", "5", "6"]]


def test_two_stray_quotes_each_cost_one_line(tmp_path):
    path = _write(tmp_path, b'a,b,c\n"x,1,2\n3,4,5\n"y,6,7\n8,9,10\n"z""q"\n11,12,13\n')
    recs = _records(path)
    good = [r.values for r in recs if isinstance(r, Record)]
    assert good == [["3", "4", "5"], ["8", "9", "10"], ["11", "12", "13"]]
    reasons = [(r.row, r.reason) for r in recs if isinstance(r, BadRecord)]
    assert reasons == [(1, "broken_csv_record"), (3, "broken_csv_record"), (5, "wrong_field_count")]


def test_field_too_long_names_the_column_and_length(tmp_path):
    path = _write(tmp_path, b"a,b,c\n1," + b"x" * 50 + b",3\n4,5,6\n")
    recs = _records(path, max_field_chars=40)
    assert isinstance(recs[0], BadRecord)
    assert recs[0].reason == "field_too_long"
    assert "b has 50 characters, over the 40 limit" in recs[0].detail
    assert recs[1].values == ["4", "5", "6"]


def test_non_utf8_raw_text_shows_the_bytes(tmp_path):
    path = _write(tmp_path, b"a,b,c\n1,Mosc\xffw,3\n")
    (bad,) = _records(path)
    assert bad.reason == "invalid_utf8"
    assert bad.raw == "1,Mosc\\xffw,3"


def test_json_export_records_are_checked_too(tmp_path):
    doc = {"data": [{"a": "1", "b": "y" * 50, "c": "3"}, {"a": "4", "b": "5", "c": "6"}, 7]}
    path = tmp_path / "x.json"
    path.write_text(json.dumps(doc))
    recs = list(iter_records(path, ["a", "b", "c"], 40))
    assert [getattr(r, "reason", None) for r in recs] == ["field_too_long", None, "broken_json_record"]
