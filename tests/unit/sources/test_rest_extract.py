"""A REST resource-day into bronze: pages as received, the manifest, the window, atomic replacement."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from sources_fakes import SECRET, response

from ingest.sources.rest_api import RestApiSource, window_params
from ingest.sources.rest_api.helpers import RestSourceError
from lakehouse.settings import Layout

DAY = dt.date(2026, 11, 1)
INCREMENTAL = {"cursor_field": "updated_at", "start_param": "from", "end_param": "to"}


def paged_handler(bodies):
    def handler(url, params, headers, auth):
        body = bodies[int(params["page"]) - 1]
        return body if not isinstance(body, bytes) else response(200, body)

    return handler


def test_pages_land_in_bronze_exactly_as_received(make_client, tmp_path):
    bodies = [b'{"items": [{"id": 1, "x": "\\u00e9"}], "more": true}  ', b'{"items": []}']
    client, session, _ = make_client(paged_handler(bodies), pagination={"type": "page"}, incremental=INCREMENTAL,
                                     params={"lang": "en"}, auth={"type": "query", "name": "key"})  # fmt: skip
    layout = Layout(tmp_path)
    manifest = RestApiSource(client.source).extract("items", DAY, layout=layout, http=client)

    folder = tmp_path / "bronze/api/items/date=2026-11-01"
    assert sorted(p.name for p in folder.iterdir()) == ["_manifest.json", "page-00001.json", "page-00002.json"]
    for i, body in enumerate(bodies, start=1):
        assert (folder / f"page-{i:05d}.json").read_bytes() == body
        assert manifest["pages"][i - 1]["sha256"] == hashlib.sha256(body).hexdigest()
    assert manifest["records"] == 1 and manifest["pages_count"] == 2 and manifest["requests"] == 2
    assert manifest["request"]["params"] == {"lang": "en", "from": "2026-11-01T00:00:00+00:00",
                                             "to": "2026-11-02T00:00:00+00:00"}  # fmt: skip
    assert manifest["request"]["auth"] == "query"
    assert json.loads((folder / "_manifest.json").read_text()) == manifest
    assert session.calls[0]["params"]["key"] == SECRET  # sent...
    for path in tmp_path.rglob("*"):  # ...but never written down
        assert path.is_dir() or SECRET.encode() not in path.read_bytes()


def test_a_failed_pull_leaves_the_previous_partition(make_client, tmp_path):
    layout = Layout(tmp_path)
    good = [b'{"items": [{"id": 1}]}', b'{"items": []}']
    client, _, _ = make_client(paged_handler(good), pagination={"type": "page"})
    RestApiSource(client.source).extract("items", DAY, layout=layout, http=client)
    folder = tmp_path / "bronze/api/items/date=2026-11-01"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    bad = [b'{"items": [{"id": 9}]}', response(404, b"gone")]
    client, _, _ = make_client(paged_handler(bad), pagination={"type": "page"})
    with pytest.raises(RestSourceError, match="HTTP 404"):
        RestApiSource(client.source).extract("items", DAY, layout=layout, http=client)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert [p.name for p in folder.parent.iterdir()] == ["date=2026-11-01"]  # no staging folder left


@pytest.mark.parametrize(
    ("fmt", "start", "end"),
    [("iso", "2026-11-01T00:00:00+03:00", "2026-11-02T00:00:00+03:00"), ("date", "2026-11-01", "2026-11-02"),
     ("unix", "1793480400", "1793566800")],
)  # fmt: skip
def test_window_params_in_each_format(make_client, fmt, start, end):
    client, _, _ = make_client(lambda *a: None, timezone="Europe/Moscow",
                               incremental={**INCREMENTAL, "param_format": fmt})  # fmt: skip
    res = client.source.resources["items"]
    assert window_params(client.source, res, DAY) == {"from": start, "to": end}


def test_updated_after_style_sends_only_the_start(make_client):
    client, _, _ = make_client(lambda *a: None, incremental={"cursor_field": "updated_at", "start_param": "since"})
    assert window_params(client.source, client.source.resources["items"], DAY) == {"since": "2026-11-01T00:00:00+00:00"}
