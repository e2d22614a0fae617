"""The declarative REST client: auth modes, pagination styles, retries with Retry-After, rate limits."""

from __future__ import annotations

import email.utils
import logging

# Imported at collection: importing Airflow reconfigures logging, which would drop caplog's handler mid-test.
import airflow  # noqa: F401
import pytest
from sources_fakes import BASE, SECRET, response

from ingest.sources.rest_api.helpers import RestSourceError, iter_pages, parse_retry_after


def ok_items(items, **extra):
    return response(200, {"items": items, **extra})


def pages_of(client, params=None):
    res = client.source.resources["items"]
    return list(iter_pages(client, res, params or {}, label="api/items"))


# -- auth --------------------------------------------------------------------------------------


def test_bearer_auth_goes_in_the_authorization_header(make_client):
    client, session, _ = make_client(lambda *a: ok_items([]))
    client.get(BASE + "/v1/items", {}, "t")
    call = session.calls[0]
    assert call["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert SECRET not in str(call["params"]) and call["auth"] is None


def test_header_auth_uses_the_declared_header(make_client):
    client, session, _ = make_client(lambda *a: ok_items([]), auth={"type": "header", "name": "X-Api-Key"})
    client.get(BASE + "/v1/items", {}, "t")
    headers = session.calls[0]["headers"]
    assert headers["X-Api-Key"] == SECRET and "Authorization" not in headers


def test_query_auth_sends_the_key_but_never_reports_it(make_client):
    client, session, _ = make_client(lambda *a: ok_items([]), auth={"type": "query", "name": "api_key"})
    resp = client.get(BASE + "/v1/items", {"page": "1"}, "t")
    assert session.calls[0]["params"] == {"page": "1", "api_key": SECRET}
    assert SECRET not in resp.url and "api_key" not in resp.url and "page=1" in resp.url
    assert resp.params == {"page": "1"}


def test_basic_auth_uses_login_and_password(make_client):
    client, session, _ = make_client(lambda *a: ok_items([]), login="robot", auth={"type": "basic"})
    client.get(BASE + "/v1/items", {}, "t")
    assert session.calls[0]["auth"] == ("robot", SECRET)


def test_a_rejected_secret_fails_at_once_without_showing_it(make_client, caplog):
    def handler(url, params, headers, auth):
        return response(401, f"bad token {SECRET}".encode())

    client, session, _ = make_client(handler, auth={"type": "query", "name": "api_key"})
    with caplog.at_level(logging.DEBUG), pytest.raises(RestSourceError) as info:
        client.get(BASE + "/v1/items", {}, "api/items page 1")
    assert info.value.retryable is False
    assert "HTTP 401 (check the connection's secret)" in str(info.value)
    assert len(session.calls) == 1
    assert SECRET not in str(info.value) and SECRET not in caplog.text


# -- retries -----------------------------------------------------------------------------------


def test_retry_after_seconds_is_honoured(make_client):
    answers = [response(429, b"slow down", {"Retry-After": "7"}), ok_items([{"id": 1}])]
    client, session, time = make_client(lambda *a: answers.pop(0))
    resp = client.get(BASE + "/v1/items", {}, "t")
    assert resp.status == 200 and time.sleeps == [7.0] and len(session.calls) == 2


def test_retry_after_http_date_is_honoured(make_client):
    def handler(*a):
        if len(session.calls) == 1:
            when = email.utils.formatdate(time.wall() + 30, usegmt=True)
            return response(503, b"maintenance", {"Retry-After": when})
        return ok_items([])

    client, session, time = make_client(handler)
    client.get(BASE + "/v1/items", {}, "t")
    assert len(time.sleeps) == 1 and 29 <= time.sleeps[0] <= 30


def test_a_retry_after_beyond_the_cap_fails_retryably(make_client):
    client, _, time = make_client(lambda *a: response(429, b"", {"Retry-After": "3600"}),
                                  retry={"max_retry_after_seconds": 60})  # fmt: skip
    with pytest.raises(RestSourceError, match=r"Retry-After 3600 s, more than retry\.max_retry_after_seconds") as info:
        client.get(BASE + "/v1/items", {}, "t")
    assert info.value.retryable is True and time.sleeps == []


def test_server_errors_back_off_then_give_up(make_client):
    client, session, time = make_client(lambda *a: response(502, b"bad gateway"))
    with pytest.raises(RestSourceError, match="failed after 4 attempt") as info:
        client.get(BASE + "/v1/items", {}, "t")
    assert info.value.retryable is True
    assert len(session.calls) == 4 and len(time.sleeps) == 3
    # capped exponential backoff (1, 2, 4 s) with jitter in [50 %, 100 %]
    for sleep, base in zip(time.sleeps, (1, 2, 4), strict=True):
        assert base / 2 <= sleep <= base


def test_connection_errors_are_retried(make_client):
    import requests

    answers = [requests.ConnectionError("refused"), requests.Timeout("slow"), ok_items([])]
    client, session, time = make_client(lambda *a: answers.pop(0))
    assert client.get(BASE + "/v1/items", {}, "t").status == 200
    assert len(session.calls) == 3 and len(time.sleeps) == 2


def test_a_body_that_is_not_json_is_retried(make_client):
    answers = [response(200, b"<html>oops"), ok_items([])]
    client, session, _ = make_client(lambda *a: answers.pop(0))
    assert client.get(BASE + "/v1/items", {}, "t").payload == {"items": []}
    assert len(session.calls) == 2


def test_parse_retry_after():
    assert parse_retry_after("12", now=0) == 12.0
    assert parse_retry_after("-3", now=0) == 0.0
    assert parse_retry_after("garbage", now=0) is None
    assert parse_retry_after(None, now=0) is None
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40) == 60.0


# -- rate limits -------------------------------------------------------------------------------


def test_requests_per_second_spaces_requests_out(make_client):
    client, _, time = make_client(lambda *a: ok_items([]), rate_limit={"requests_per_second": 4})
    for _ in range(3):
        client.get(BASE + "/v1/items", {}, "t")
    assert time.sleeps == [0.25, 0.25]


def test_an_exhausted_rate_limit_holds_the_next_request_until_reset(make_client):
    answers = [
        ok_items(
            [],
        ),
        ok_items([]),
    ]
    answers[0].headers.update({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "5"})
    client, _, time = make_client(lambda *a: answers.pop(0))
    client.get(BASE + "/v1/items", {}, "t")
    client.get(BASE + "/v1/items", {}, "t")
    assert time.sleeps == [5.0]


# -- pagination --------------------------------------------------------------------------------


def test_page_pagination_follows_total_pages(make_client):
    def handler(url, params, headers, auth):
        page = int(params["page"])
        return ok_items([{"id": page * 10 + i} for i in range(2)], pages=3)

    pagination = {"type": "page", "page_param": "page", "first_page": 0, "size_param": "per_page", "page_size": 2,
                  "total_pages_path": "pages"}  # fmt: skip
    client, session, _ = make_client(handler, pagination=pagination)
    pages = pages_of(client, {"since": "x"})
    assert [p.records[0]["id"] for p in pages] == [0, 10, 20]
    assert [c["params"]["page"] for c in session.calls] == ["0", "1", "2"]
    assert all(c["params"]["per_page"] == "2" and c["params"]["since"] == "x" for c in session.calls)


def test_page_pagination_stops_on_a_short_or_empty_page(make_client):
    data = {1: [{"id": 1}, {"id": 2}], 2: [{"id": 3}], 3: [{"id": 4}]}
    pagination = {"type": "page", "size_param": "n", "page_size": 2}
    client, session, _ = make_client(lambda u, p, h, a: ok_items(data[int(p["page"])]), pagination=pagination)
    assert sum(len(p.records) for p in pages_of(client)) == 3 and len(session.calls) == 2
    client, session, _ = make_client(lambda u, p, h, a: ok_items(data.get(int(p["page"]) + 2, [])),
                                     pagination={"type": "page"})  # fmt: skip
    assert [len(p.records) for p in pages_of(client)] == [1, 0]


def test_offset_pagination_advances_by_records_received(make_client):
    rows = [{"id": i} for i in range(7)]

    def handler(url, params, headers, auth):
        offset, limit = int(params["offset"]), int(params["limit"])
        return ok_items(rows[offset : offset + limit], total=len(rows))

    client, session, _ = make_client(handler, pagination={"type": "offset", "limit": 3, "total_path": "total"})
    assert [r["id"] for p in pages_of(client) for r in p.records] == list(range(7))
    assert [c["params"]["offset"] for c in session.calls] == ["0", "3", "6"]


def test_cursor_pagination_sends_the_cursor_until_there_is_none(make_client):
    chain = {None: ("c1", [1, 2]), "c1": ("c2", [3]), "c2": (None, [4])}

    def handler(url, params, headers, auth):
        nxt, ids = chain[params.get("after")]
        return response(200, {"data": {"rows": [{"id": i} for i in ids], "next": nxt}})

    pagination = {"type": "cursor", "cursor_param": "after", "cursor_path": "data.next"}
    client, session, _ = make_client(handler, pagination=pagination, records_path="data.rows")
    assert [r["id"] for p in pages_of(client) for r in p.records] == [1, 2, 3, 4]
    assert [c["params"].get("after") for c in session.calls] == [None, "c1", "c2"]


def test_a_repeated_cursor_is_an_error_not_an_endless_loop(make_client):
    client, _, _ = make_client(lambda *a: response(200, {"items": [{"id": 1}], "next": "same"}),
                               pagination={"type": "cursor", "cursor_path": "next"})  # fmt: skip
    with pytest.raises(RestSourceError, match="returned a cursor it had returned before"):
        pages_of(client)


def test_next_link_in_the_body_is_followed_relative_or_absolute(make_client):
    def handler(url, params, headers, auth):
        if url.endswith("/v1/items"):
            assert params == {"since": "x"}
            return ok_items([{"id": 1}], links={"next": "/v1/items?page_token=2"})
        if url.endswith("page_token=2"):
            assert params == {}  # the link carries its own query
            return ok_items([{"id": 2}], links={"next": f"{BASE}/v1/items?page_token=3"})
        return ok_items([{"id": 3}], links={"next": None})

    client, session, _ = make_client(handler, pagination={"type": "next_link", "next_path": "links.next"})
    assert [r["id"] for p in pages_of(client, {"since": "x"}) for r in p.records] == [1, 2, 3]
    assert session.calls[1]["url"] == f"{BASE}/v1/items?page_token=2"


def test_next_link_from_the_link_header(make_client):
    def handler(url, params, headers, auth):
        if "page_token" not in url:
            return response(200, {"items": [{"id": 1}]}, {"Link": '</v1/items?page_token=2>; rel="next"'})
        return response(200, {"items": [{"id": 2}]})

    client, _, _ = make_client(handler, pagination={"type": "next_link"})
    assert [r["id"] for p in pages_of(client) for r in p.records] == [1, 2]


def test_a_next_link_to_another_host_is_refused(make_client):
    client, session, _ = make_client(lambda *a: ok_items([{"id": 1}], next="https://evil.example/steal"),
                                     pagination={"type": "next_link", "next_path": "next"})  # fmt: skip
    with pytest.raises(RestSourceError, match="outside the source's base URL; refusing") as info:
        pages_of(client)
    assert info.value.retryable is False and len(session.calls) == 1


def test_max_pages_stops_a_runaway_api(make_client):
    client, _, _ = make_client(lambda *a: ok_items([{"id": 1}]), pagination={"type": "page"}, max_pages=3)
    with pytest.raises(RestSourceError, match="more than max_pages=3 pages"):
        pages_of(client)


def test_a_missing_records_path_names_what_the_response_has(make_client):
    client, _, _ = make_client(lambda *a: response(200, {"results": []}))
    with pytest.raises(
        RestSourceError, match=r"records_path 'items' is not in the response \(top-level keys: \['results'\]\)"
    ):
        pages_of(client)
    client, _, _ = make_client(lambda *a: response(200, {"items": {"a": 1}}))
    with pytest.raises(RestSourceError, match="holds a dict, not a list"):
        pages_of(client)
