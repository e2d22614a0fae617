"""Logs API client pieces that need no server: file names, request params, row counting, backoff."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import random

import pytest

from ingest.appmetrica import client as client_mod
from ingest.appmetrica.client import LogsApiClient, count_rows, part_file_name
from ingest.appmetrica.resources import EVENTS, RESOURCES, Resource
from ingest.appmetrica.settings import AppMetricaSettings
from lakehouse.settings import ConfigError

TOKEN = "unit-secret-token"


@pytest.fixture
def client():
    settings = AppMetricaSettings(base_url="http://127.0.0.1:1", token=TOKEN, application_id="1234567")
    with LogsApiClient(settings, sleep=lambda _s: None, rng=random.Random(1)) as c:
        yield c


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (("events", 0, 1, "csv", "gzip"), "events.part-00000-of-00001.csv.gz"),
        (("events", 3, 16, "csv", "identity"), "events.part-00003-of-00016.csv"),
        (("profiles_v2", 12, 64, "json", "gzip"), "profiles_v2.part-00012-of-00064.json.gz"),
        (("installations", 0, 1, "json", "identity"), "installations.part-00000-of-00001.json"),
    ],
)
def test_part_file_name(args, name):
    assert part_file_name(*args) == name


def test_request_params_for_a_day(client):
    assert client.export_path("events") == "/logs/v1/export/events.csv"
    assert client.export_url("events") == "http://127.0.0.1:1/logs/v1/export/events.csv"
    params = client.request_params("events", dt.date(2026, 11, 1))
    assert params == {
        "application_id": "1234567",
        "date_since": "2026-11-01 00:00:00",
        "date_until": "2026-11-01 23:59:59",
        "fields": ",".join(EVENTS.fields),
        "date_dimension": "default",
        "use_utf8_bom": "false",
    }
    assert TOKEN not in json.dumps(params)


def test_request_params_omit_dates_for_dateless_resources(client, monkeypatch):
    push = Resource(name="push_tokens", fields=("token_datetime", "appmetrica_device_id"), date_field=None,
                    takes_dates=False)  # fmt: skip
    monkeypatch.setitem(RESOURCES, "push_tokens", push)
    params = client.request_params("push_tokens", "2026-11-01")
    assert "date_since" not in params
    assert "date_until" not in params
    assert params["fields"] == "token_datetime,appmetrica_device_id"


@pytest.mark.parametrize("bad", ["push_tokens", "../events", "", "EVENTS"])
def test_unknown_resource_is_refused_before_any_request(client, bad, tmp_path):
    with pytest.raises(ConfigError, match="unknown AppMetrica resource"):
        client.export(bad, dt.date(2026, 11, 1), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_bad_day_is_refused(client, tmp_path):
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        client.export("events", "01.11.2026", tmp_path)


def _csv_bytes(rows, bom=False):
    buf = io.StringIO(newline="")
    if bom:
        buf.write("\ufeff")
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


def test_count_rows_csv_with_bom_multiline_and_huge_fields(tmp_path):
    rows = [
        ["event_name", "event_json"],
        ["a", '{"t": "line1\nline2, with \\"quotes\\""}'],
        ["b", "x" * 200_000],
        ["c", ""],
    ]
    plain = tmp_path / "e.csv"
    plain.write_bytes(_csv_bytes(rows, bom=True))
    assert count_rows(plain, "csv", gzipped=False) == 3
    gz = tmp_path / "e.csv.gz"
    gz.write_bytes(gzip.compress(_csv_bytes(rows)))
    assert count_rows(gz, "csv", gzipped=True) == 3


def test_count_rows_header_only_and_empty(tmp_path):
    (tmp_path / "h.csv").write_bytes(b"event_name,event_json\n")
    (tmp_path / "e.csv").write_bytes(b"")
    assert count_rows(tmp_path / "h.csv", "csv", gzipped=False) == 0
    assert count_rows(tmp_path / "e.csv", "csv", gzipped=False) == 0


def test_count_rows_truncated_gzip_raises(tmp_path):
    data = gzip.compress(_csv_bytes([["a"], *[[str(i)] for i in range(5000)]]))
    path = tmp_path / "t.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(EOFError):
        count_rows(path, "csv", gzipped=True)


def test_count_rows_json(tmp_path):
    path = tmp_path / "e.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"data": [{"a": "1"}, {"a": "2"}]}).encode()))
    assert count_rows(path, "json", gzipped=True) == 2
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"rows": []}')
    with pytest.raises(ValueError, match="data"):
        count_rows(bad, "json", gzipped=False)


def test_backoff_is_capped_exponential_with_jitter():
    settings = AppMetricaSettings(
        base_url="http://h", token=TOKEN, application_id="1", backoff_base_seconds=1, backoff_cap_seconds=60
    )
    c = LogsApiClient(settings, rng=random.Random(7))
    for attempt in range(1, 12):
        ceiling = min(60, 2 ** (attempt - 1))
        for _ in range(20):
            assert ceiling / 2 <= c._backoff(attempt) <= ceiling


def test_client_headers_carry_the_token_only_in_authorization(client):
    assert client._headers["Authorization"] == f"OAuth {TOKEN}"
    assert client._headers["Accept-Encoding"] == "gzip"
    assert client_mod.LogsApiError.__mro__[1] is RuntimeError
