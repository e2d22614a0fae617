"""The ``make_client`` fixture: an HttpClient for a one-resource declaration over a FakeSession and FakeTime."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from sources_fakes import BASE, SECRET, FakeSession, FakeTime, source_doc

from ingest.sources.config import parse_declarations
from ingest.sources.connection import Credentials
from ingest.sources.rest_api.helpers import HttpClient


@pytest.fixture
def make_client() -> Callable[..., tuple[HttpClient, FakeSession, FakeTime]]:
    def build(handler: Callable[..., Any], login: str | None = None, **overrides: Any):
        spec = parse_declarations(source_doc(**overrides))["api"]
        session = FakeSession(handler)
        time = FakeTime()
        client = HttpClient(spec, Credentials(BASE, SECRET, login), session,  # type: ignore[arg-type]
                            sleep=time.sleep, clock=time.clock, wall=time.wall, rng=random.Random(1))  # fmt: skip
        return client, session, time

    return build
