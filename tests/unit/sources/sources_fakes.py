"""Fakes for the declared-source unit tests: an HTTP session answering from a function, a fake clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import requests
from requests.structures import CaseInsensitiveDict

BASE = "https://api.example.test"
SECRET = "s3cr3t-token-value"


def response(
    status: int, body: Any = None, headers: dict[str, str] | None = None, url: str = BASE
) -> requests.Response:
    """A requests.Response as the library would build it."""
    resp = requests.Response()
    resp.status_code = status
    resp._content = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode()
    resp.headers = CaseInsensitiveDict({"Content-Type": "application/json", **(headers or {})})
    resp.url = url
    resp.encoding = "utf-8"
    return resp


class FakeSession:
    """Records every request; ``handler(url, params, headers, auth)`` returns the response."""

    def __init__(self, handler: Callable[..., requests.Response]) -> None:
        self.handler = handler
        self.calls: list[dict[str, Any]] = []

    def get(
        self,
        url: str,
        *,
        params: dict[str, str],
        headers: dict[str, str],
        auth: Any,
        timeout: float,
        allow_redirects: bool = True,
    ) -> Any:
        self.calls.append({"url": url, "params": dict(params), "headers": dict(headers), "auth": auth})
        resp = self.handler(url, dict(params), dict(headers), auth)
        if isinstance(resp, Exception):
            raise resp
        if resp.url == BASE:
            resp.url = f"{url}?{urlencode(params)}" if params else url
        return resp

    def close(self) -> None:
        pass


class FakeTime:
    """A clock that only moves when slept on; records the sleeps."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_800_000_000.0 + self.now


def source_doc(**overrides: Any) -> dict[str, Any]:
    """A one-resource REST declaration ``api/items``; ``overrides`` replace source or resource keys."""
    resource = {
        "path": "/v1/items",
        "records_path": "items",
        "pagination": {"type": "none"},
        "write_disposition": "merge",
        "primary_key": "id",
        "fields": {"id": {"type": "integer", "required": True}, "name": "string",
                   "updated_at": {"type": "timestamp", "required": True}},
    }  # fmt: skip
    source: dict[str, Any] = {"kind": "rest_api", "connection": "api_conn", "auth": {"type": "bearer"},
                              "retry": {"max_attempts": 4, "backoff_seconds": 1, "backoff_cap_seconds": 8},
                              "resources": {"items": resource}}  # fmt: skip
    for key, value in overrides.items():
        (resource if key in resource or key in ("incremental", "params") else source)[key] = value
    return {"sources": {"api": source}}
