"""Helpers the silver unit tests share: the test day, a blank row of a resource, CSV bytes."""

from __future__ import annotations

import datetime as dt

from ingest.appmetrica.resources import RESOURCES, requested_fields

DAY = dt.date(2026, 11, 1)


def row(resource: str, attributes: tuple[str, ...] = (), **values: str) -> dict[str, str]:
    """A row of ``resource`` with every field blank except ``values`` (profiles_v2: also the custom ``attributes``)."""
    fields = requested_fields(RESOURCES[resource], attributes)
    unknown = set(values) - set(fields)
    assert not unknown, unknown
    return {f: values.get(f, "") for f in fields}


def csv_bytes(fields: list[str], rows: list[list[str]], bom: bool = False) -> bytes:
    def cell(v: str) -> str:
        if any(c in v for c in ',"\n\r'):
            return '"' + v.replace('"', '""') + '"'
        return v

    text = "\n".join(",".join(cell(v) for v in r) for r in [fields, *rows]) + "\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
