"""The vectorised pieces of silver agree with the record-by-record definitions they replace."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from lake_tables import quarantine_table, silver_table
from silver_helpers import DAY, csv_bytes, row

from ingest.appmetrica.resources import RESOURCES
from transforms.silver import build_silver, fast_reader, properties
from transforms.silver.bronze_reader import Record, iter_records, read_header
from transforms.silver.casting import _cast_temporal, blank_to_null
from transforms.silver.dedup import StagedRows


def _write(tmp_path: Path, body: bytes, name: str = "x.csv.gz") -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(body, mtime=0) if name.endswith(".gz") else body)
    return path


def _fast_rows(path: Path) -> list[list[str]]:
    header = read_header(path)
    return [list(r.values()) for b in fast_reader.iter_clean_batches(path, header) for r in b.to_pylist()]


def test_clean_csv_reads_exactly_like_the_record_reader(tmp_path: Path) -> None:
    body = (
        b'a,b,c\n"x,""q""",1,\n"multi\nline",2,""\n"",3,"ends with quote """\r\n'
        b'plain,4,"tail ""quoted"" , comma"\n\xd0\x9c\xd0\xbe\xd1\x81,5,last'
    )
    path = _write(tmp_path, body)
    expected = [r.values for r in iter_records(path, read_header(path)) if isinstance(r, Record)]
    assert _fast_rows(path) == expected
    assert len(expected) == 5


@pytest.mark.parametrize(
    "body",
    [
        b'a,b\n"x"y,1\n',  # text after a closing quote
        b'a,b\n"abc,"x,1\n',  # a separator inside, then text after the closing quote
        b'a,b\n"x" ,1\n',  # a space after the closing quote
        b'a,b\nx"y,1\n',  # a quote inside an unquoted field
        b'a,b\n1,"2\n',  # the file ends inside a quoted field
        b"a,b\n1,2\n\n3,4\n",  # a blank line
        b"a,b\n1,2\r\n\r\n3,4\n",  # a blank line after CRLF
    ],
)
def test_anything_python_csv_may_read_differently_is_refused(tmp_path: Path, body: bytes) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(fast_reader.NotClean):
        _fast_rows(path)


def test_blank_lines_inside_quoted_values_are_fine(tmp_path: Path) -> None:
    path = _write(tmp_path, b'a,b\n"one\n\ntwo",1\n"x\r\n\r\ny",2\n')
    assert _fast_rows(path) == [["one\n\ntwo", "1"], ["x\r\n\r\ny", "2"]]


def _stream_all(path: Path, size: int) -> bytes:
    stream = fast_reader._CleanCsvStream(path)
    try:
        chunks = []
        while chunk := stream.read(size):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        stream.close()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_quotes_across_read_boundaries(tmp_path: Path, size: int) -> None:
    rows = [[f'v{i} "q" ,x', str(i), 'a""b' if i % 2 else ""] for i in range(40)]
    body = csv_bytes(["a", "b", "c"], rows)
    path = _write(tmp_path, body)
    assert _stream_all(path, size) == body  # every quote pattern falls on some boundary, all accepted
    bad = _write(tmp_path, csv_bytes(["a", "b"], [["x", "1"]] * 30) + b'"x"y,1\n', "bad.csv")
    with pytest.raises(fast_reader.NotClean):
        _stream_all(bad, size)
    blank = _write(tmp_path, csv_bytes(["a", "b"], [["x", "1"]] * 30) + b"\n1,2\n", "blank.csv")
    with pytest.raises(fast_reader.NotClean):
        _stream_all(blank, size)


def test_a_record_longer_than_a_block_falls_back(layout, write_bronze, empty_bronze, monkeypatch) -> None:
    monkeypatch.setattr(fast_reader, "BLOCK_BYTES", 4096)
    empty_bronze()
    huge = row("events", event_name="e", event_datetime="2026-11-01 10:00:00", appmetrica_device_id="1",
               event_json=json.dumps({"log": "ж" * 10_000}, ensure_ascii=False))  # fmt: skip
    small = [row("events", event_name="e", event_datetime="2026-11-01 10:00:00", appmetrica_device_id=str(i))
             for i in range(2, 200)]  # fmt: skip
    write_bronze("events", [*small, huge])
    summary = build_silver(DAY, layout)
    assert summary["tables"]["events_part"] == 199 and summary["quarantined"]["events"] == 0
    props = silver_table(layout, "tmp_event_properties", DAY)
    assert props.column("value_text").to_pylist() == ["ж" * 10_000]


def test_a_dirty_file_keeps_its_clean_prefix_and_the_record_reader_decides_the_rest(
    layout, write_bronze, empty_bronze, monkeypatch
) -> None:
    monkeypatch.setattr(fast_reader, "BLOCK_BYTES", 1024)  # several batches before the bad record
    monkeypatch.setenv("LAKEHOUSE_QUARANTINE_MAX_RATE", "1")
    empty_bronze()
    fields = list(RESOURCES["events"].fields)
    good = [row("events", event_name="e", event_datetime="2026-11-01 10:00:00", appmetrica_device_id=str(i),
                event_json=json.dumps({"i": i})) for i in range(1, 80)]  # fmt: skip
    body = csv_bytes(fields, [[r[f] for f in fields] for r in good])
    body += b'"broken"quote' + b",x" * (len(fields) - 1) + b"\n"
    body += csv_bytes(fields, [[r[f] for f in fields] for r in good[:5]]).split(b"\n", 1)[1]  # 5 duplicates
    body += b"too,few\n"
    write_bronze("events", body)
    summary = build_silver(DAY, layout)
    events = summary["resources"]["events"]
    assert events["rows_read"] == 79 + 1 + 5 + 1
    assert events["rows_good"] == 79 and events["duplicates"] == 5
    quarantine = quarantine_table(layout, "events", DAY).to_pylist()
    assert {(q["bronze_row"], q["reason"]) for q in quarantine} == {
        (80, "broken_csv_record"),
        (86, "wrong_field_count"),
    }
    part = silver_table(layout, "events_part", DAY)
    assert sorted(part.column("bronze_row").to_pylist()) == list(range(1, 80))
    assert part.column("appmetrica_device_id").to_pylist() == list(range(1, 80))


def test_a_clean_file_with_a_long_field_and_an_unknown_enum_quarantines_as_the_record_reader_does(
    layout, write_bronze, empty_bronze, monkeypatch
) -> None:
    """Clean CSV goes through the fast reader; the field-length limit and the enum sets still decide."""
    monkeypatch.setattr(fast_reader, "BLOCK_BYTES", 2048)  # the long field's batch is not the first
    monkeypatch.setenv("LAKEHOUSE_SILVER_MAX_FIELD_CHARS", "500")
    monkeypatch.setenv("LAKEHOUSE_QUARANTINE_MAX_RATE", "1")
    empty_bronze()
    rows = [row("events", event_name="e", event_datetime="2026-11-01 10:00:00", appmetrica_device_id=str(i),
                os_name="android") for i in range(1, 60)]  # fmt: skip
    rows[29]["event_json"] = json.dumps({"log": "ж" * 501}, ensure_ascii=False)  # 501 characters > 500, row 30
    rows[39]["event_json"] = json.dumps({"log": "ж" * 480}, ensure_ascii=False)  # over 500 bytes, not characters
    rows[49]["os_name"] = "symbian"  # row 50
    write_bronze("events", rows)
    summary = build_silver(DAY, layout)
    events = summary["resources"]["events"]
    assert events["rows_read"] == 59 and events["rows_good"] == 57
    quarantine = quarantine_table(layout, "events", DAY).to_pylist()
    assert sorted((q["bronze_row"], q["reason"]) for q in quarantine) == [
        (30, "field_too_long"),
        (50, "unknown_enum_value"),
    ]
    part = silver_table(layout, "events_part", DAY)
    assert sorted(part.column("bronze_row").to_pylist()) == [i for i in range(1, 60) if i not in (30, 50)]


TEXTS = [
    json.dumps({"screen": {"name": 'Главная, "home"\nline', "params": {"tab": 2}}, "price": 9.5}, ensure_ascii=False),
    '{"ok": true, "no": false, "none": null, "empty": {}, "tags": ["a", {"z": 1, "b": 2.50}], "f": 1e-5}',
    '{"big": 123456789012345678901234567890, "neg": -0, "inf": 1e400, "nan": NaN, "x": Infinity}',
    '{"a": 1, "a": 2, "d.k": {"": 3}, "\\u0000": "\\ud83d\\ude00"}',
    '{"a": 1,}',  # trailing comma: json refuses
    "[1, 2]",
    '"text"',
    "{not json",
    "",
    '{"u": "\\u00e9\\n", "e": 1E2, "m": -1.5e-7, "l": [1.0, 2, "3"]}',
    "  {}  ",
]


def test_flatten_texts_is_parse_object_plus_flatten() -> None:
    arr = pa.array(TEXTS * 3)
    eligible = np.ones(len(arr), dtype=bool)
    eligible[len(TEXTS) + 1] = False
    bad, leaves = properties.flatten_texts(arr, eligible)
    expected_rows, expected_bad = [], {}
    for i, text in enumerate(arr.to_pylist()):
        if not eligible[i] or not text:
            continue
        try:
            obj = properties.parse_object(text)
        except ValueError as exc:
            expected_bad[i] = str(exc)
            continue
        expected_rows += [(i, *leaf) for leaf in properties.flatten(obj)]
    got = list(zip(*(leaves.column(c).to_pylist() for c in ("row", "path", "value_text", "value_type")), strict=True))
    assert got == expected_rows
    assert bad == expected_bad
    assert set(bad) == {4, 5, 6, 7, 4 + len(TEXTS), 5 + len(TEXTS), 6 + len(TEXTS), 7 + len(TEXTS),
                        4 + 2 * len(TEXTS), 5 + 2 * len(TEXTS), 6 + 2 * len(TEXTS), 7 + 2 * len(TEXTS)}  # fmt: skip


def test_lone_surrogates_make_the_object_bad_not_the_job() -> None:
    arr = pa.array(['{"a": "\\ud800"}', '{"b": 1}'])
    bad, leaves = properties.flatten_texts(arr, np.ones(2, dtype=bool))
    assert list(bad) == [0] and "lone surrogate" in bad[0]
    assert leaves.column("path").to_pylist() == ["b"]


def test_temporal_check_gives_the_round_trip_verdicts() -> None:
    values = [
        "0999-01-02 03:04:05", "2026-02-30 10:00:00", "2026-01-01 10:00:60", "2026-1-01 10:00:00",
        "2026-01-01 24:00:00", "2026-01-01T10:00:00", " 2026-01-01 10:00:00", "2026-01-01 10:00:00 ",
        None, "2026-11-01 23:59:59", "2024-02-29 00:00:00", "2023-02-29 00:00:00", "9999-12-31 23:59:59",
    ]  # fmt: skip
    dates = [v[:10] if v else v for v in values] + ["2024-2-01"]
    for typ, fmt, texts in ((pa.timestamp("s"), "%Y-%m-%d %H:%M:%S", values), (pa.date32(), "%Y-%m-%d", dates)):
        arr = pa.array(texts, pa.string())
        _, ok = _cast_temporal(arr, typ)
        parsed = pc.strptime(arr, format=fmt, unit="s", error_is_null=True)
        round_trip = pc.or_(pc.fill_null(pc.equal(pc.strftime(parsed, format=fmt), arr), False), pc.is_null(arr))
        assert ok.to_pylist() == round_trip.to_pylist(), typ


def test_blank_to_null_on_slices() -> None:
    base = pa.array(["a", "", "bc", "", "d", "", "e", "f", "", "g"])
    for offset in range(6):
        arr = base.slice(offset, 4)
        out = blank_to_null(arr)
        out.validate(full=True)
        assert out.to_pylist() == [None if v == "" else v for v in arr.to_pylist()]


def test_staged_rows_keep_each_digests_first_row_in_file_order(tmp_path: Path, monkeypatch) -> None:
    from transforms.silver import dedup

    monkeypatch.setattr(dedup, "READ_ROWS", 50)  # read back in many batches, leaves across their bounds
    rng = np.random.default_rng(7)
    digests = rng.integers(0, 2**63, size=(400, 2), dtype=np.uint64)
    stream = digests[rng.integers(0, len(digests), size=3000)]  # plenty of repeats, near and far
    staged = StagedRows(tmp_path, "x")
    for start in range(0, len(stream), 97):
        batch = stream[start : start + 97]
        seq = np.arange(start, start + len(batch))
        rows = np.repeat(np.arange(len(batch)), 2)  # two leaves per row
        leaves = pa.table({"row": rows, "path": [f"p{seq[r]}" for r in rows], "value_text": pa.nulls(len(rows),
                           pa.string()), "value_type": ["null"] * len(rows)})  # fmt: skip
        staged.add(pa.table({"seq": seq}), batch[:, 0], batch[:, 1], leaves)
    got_seq, got_paths = [], []
    for table, leaves in staged.batches():
        seq = table.column("seq").to_pylist()
        got_seq += seq
        rows, paths = leaves["row"].to_pylist(), leaves["path"].to_pylist()
        got_paths += [f"p{seq[r]}" == p for r, p in zip(rows, paths, strict=True)]
        assert leaves.num_rows == 2 * table.num_rows
    seen: set[tuple[int, int]] = set()
    expected = []
    for i, (hi, lo) in enumerate(stream.tolist()):
        if (hi, lo) not in seen:
            expected.append(i)
        seen.add((hi, lo))
    assert got_seq == expected and all(got_paths)
    assert staged.duplicates == len(stream) - len(expected)


def test_event_ids_are_md5_of_the_exported_values(layout, write_bronze, empty_bronze) -> None:
    import hashlib

    empty_bronze()
    r = row("events", event_name="e", event_datetime="2026-11-01 10:00:00", appmetrica_device_id="7")
    write_bronze("events", [r])
    build_silver(DAY, layout)
    part = silver_table(layout, "events_part", DAY)
    joined = "\x1f".join(r[f] for f in RESOURCES["events"].fields)
    assert part.column("event_id").to_pylist() == [hashlib.md5(joined.encode()).hexdigest()]  # noqa: S324
    assert part.column("event_date").to_pylist() == [dt.date(2026, 11, 1)]
