"""A declared REST resource's path stays under the source's base URL: paths that could leave it are refused when the
declarations are loaded (naming the source and resource), and at run time no request, next link or redirect carries
the credentials outside the base path (checked against a real local HTTP server)."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ingest.sources.config import SourceConfigError, parse_declarations
from ingest.sources.connection import Credentials
from ingest.sources.rest_api.helpers import HttpClient, RestSourceError, iter_pages

TOKEN = "tok-abc-123"


def declaration(path: str, **pagination: Any) -> dict[str, Any]:
    resource = {"path": path, "records_path": "items", "pagination": pagination or {"type": "none"},
                "write_disposition": "append", "fields": {"id": "integer"}}  # fmt: skip
    return {"sources": {"jobs": {"kind": "rest_api", "connection": "jobs_api", "auth": "bearer",
                                 "retry": {"max_attempts": 1}, "resources": {"openings": resource}}}}  # fmt: skip


ESCAPES = [
    "/../../admin/secret",
    "/v1/../../admin",
    "/..",
    "/./x",
    "/v1/%2e%2e/%2E%2E/admin",
    "/v1/.%2e/admin",
    "/v1/%2fadmin",
    "/v1\\..\\admin",
    "/v1/%5c..%5cadmin",
    "http://127.0.0.1:9/admin",
    "//evil.example/x",
    "/v1//admin",
    "/v1/items?admin=1",
    "/v1/items#frag",
    "/v1/it ems",
    "/v1/items\n",
    "/v1/%0aitems",
    "v1/items",
]


@pytest.mark.parametrize("path", ESCAPES)
def test_a_path_that_could_leave_the_base_is_refused_naming_source_and_resource(path):
    with pytest.raises(SourceConfigError) as err:
        parse_declarations(declaration(path), "sources.yml")
    assert "sources.yml: sources.jobs.resources.openings.path:" in str(err.value)
    assert repr(path) in str(err.value)


@pytest.mark.parametrize("path", ["/v1/items", "/", "/v1/items/", "/v1/items.json", "/v1/a%20b", "/v1/@me/x:y"])
def test_ordinary_paths_are_kept(path):
    assert parse_declarations(declaration(path))["jobs"].resources["openings"].path == path


class Recorder:
    """A loopback HTTP API under /api/v1: records every GET with its Authorization header; ``routes`` maps a path to
    (status, headers, body)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.routes: dict[str, tuple[int, dict[str, str], Any]] = {}
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.seen.append((self.path, self.headers.get("Authorization")))
                status, headers, body = recorder.routes.get(self.path.split("?")[0], (404, {}, {"error": "no"}))
                payload = json.dumps(body).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.base = self.origin + "/api/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def outside(self) -> list[str]:
        return [path for path, _ in self.seen if not path.startswith("/api/v1/")]


@pytest.fixture
def api() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.close()


def client_for(api: Recorder, path: str = "/items", **pagination: Any) -> tuple[HttpClient, Any]:
    spec = parse_declarations(declaration(path, **pagination))["jobs"]
    return HttpClient(spec, Credentials(api.base, TOKEN)), spec.resources["openings"]


def test_a_path_slipped_past_validation_still_sends_nothing_outside_the_base(api):
    """Defence in depth: even a ResourceSpec built without the loader's check cannot reach /admin."""
    client, resource = client_for(api)
    escaping = dataclasses.replace(resource, path="/../../admin/secret")
    api.routes["/admin/secret"] = (200, {}, {"items": [{"id": 1}]})
    with pytest.raises(RestSourceError, match=r"outside the source's base URL .*refusing to send the credentials"):
        list(iter_pages(client, escaping, {}, label="jobs/openings"))
    assert api.seen == []


@pytest.mark.parametrize("link", ["/api/v1/../../admin/secret", "/admin/secret", "/api/v1/%2e%2e/%2e%2e/admin"])
def test_a_next_link_outside_the_base_path_is_not_followed(api, link):
    api.routes["/api/v1/items"] = (200, {}, {"items": [{"id": 1}], "next": link})
    client, resource = client_for(api, type="next_link", next_path="next")
    with pytest.raises(RestSourceError, match="outside the source's base URL"):
        list(iter_pages(client, resource, {}, label="jobs/openings"))
    assert api.seen == [("/api/v1/items", f"Bearer {TOKEN}")]


@pytest.mark.parametrize("location", ["/admin/secret", "/api/v1/../admin", "http://localhost:9/api/v1/items"])
def test_a_redirect_outside_the_base_is_not_followed_with_the_token(api, location):
    api.routes["/api/v1/items"] = (302, {"Location": location}, {})
    client, resource = client_for(api)
    with pytest.raises(RestSourceError, match=r"a redirect \(HTTP 302\) goes to .*outside the source's base URL"):
        list(iter_pages(client, resource, {}, label="jobs/openings"))
    assert api.outside() == [] and len(api.seen) == 1


def test_a_redirect_inside_the_base_is_followed(api):
    api.routes["/api/v1/items"] = (301, {"Location": "/api/v1/items2"}, {})
    api.routes["/api/v1/items2"] = (200, {}, {"items": [{"id": 7}]})
    client, resource = client_for(api)
    pages = list(iter_pages(client, resource, {}, label="jobs/openings"))
    assert [r["id"] for p in pages for r in p.records] == [7]
    assert api.seen == [("/api/v1/items", f"Bearer {TOKEN}"), ("/api/v1/items2", f"Bearer {TOKEN}")]
