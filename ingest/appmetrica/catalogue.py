"""The documented AppMetrica Logs API fields per resource (``fields.yml`` beside this module), typed and cached.

This is what the API *documents*, transcribed from the official docs with the page each list comes from. What this
project *requests* is :mod:`ingest.appmetrica.resources`; a unit test keeps every requested field inside this
catalogue, and the demo Logs API server validates a request's ``fields`` against it (never against the client's
lists).

Usage::

    doc = resource_doc("events")
    doc.field_names            # documented names, in the order of the docs' quick-copy list
    doc.quick_copy_fields      # exactly the docs' quick-copy list
    doc.is_documented("device_ipv6")
    doc.undocumented(["event_name", "appmetrica_sdk_version"])  # -> ("appmetrica_sdk_version",)

``profiles_v2`` also takes custom profile attributes by their own names (the docs' ``<any attribute name>``):
``doc.allows_custom_attributes`` is True there, and :func:`is_custom_attribute_name` tells a name that can be one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any, Literal

import yaml

CATALOGUE_FILE = "fields.yml"

JsonType = Literal["string", "integer", "boolean"]
_JSON_TYPES = ("string", "integer", "boolean")

# Where a field is listed (see the catalogue's legend). A field without ``listed_in`` is in all of the first six.
ALL_LISTINGS = ("RQ", "RJ", "RT", "RX", "EQ", "ET")
QUICK_COPY = "RQ"

# A custom profile attribute is requested by its own name inside ``fields`` (comma-separated, in a URL): the docs give
# no naming rules, so this project accepts plain identifiers only (letters, digits, underscore; not starting with a
# digit), which can neither break the comma list nor collide with a query parameter's syntax.
_CUSTOM_ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class CatalogueError(ValueError):
    """The field catalogue file is malformed (names the resource and entry)."""


@dataclass(frozen=True)
class DocumentedField:
    """One field as the docs describe it for one resource."""

    name: str
    type: JsonType | None
    description: str
    values: tuple[str, ...] | None = None
    listed_in: tuple[str, ...] = ALL_LISTINGS
    uncertain: bool = False
    loader_type: str | None = None
    note: str | None = None

    @property
    def in_quick_copy_list(self) -> bool:
        return QUICK_COPY in self.listed_in


@dataclass(frozen=True)
class ResourceDoc:
    """One Logs API resource as documented: its fields (docs order), the pages they come from, its rules."""

    name: str
    title: str
    source: str
    doc_urls: tuple[str, ...]
    endpoint: str
    takes_dates: bool
    fields: tuple[DocumentedField, ...]
    notes: str
    custom_attributes: str | None = None

    @functools.cached_property
    def _by_name(self) -> dict[str, DocumentedField]:
        return {f.name: f for f in self.fields}

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def quick_copy_fields(self) -> tuple[str, ...]:
        """The docs' 'all available fields (for quick copy)' list, in its order."""
        return tuple(f.name for f in self.fields if f.in_quick_copy_list)

    @property
    def allows_custom_attributes(self) -> bool:
        """True when the docs let any custom attribute name be requested as a field (profiles_v2)."""
        return self.custom_attributes is not None

    def field(self, name: str) -> DocumentedField:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{name!r} is not a documented field of the Logs API resource {self.name!r}") from None

    def is_documented(self, name: str) -> bool:
        return name in self._by_name

    def undocumented(self, names: Iterable[str]) -> tuple[str, ...]:
        """The names (in the given order) that the docs do not list for this resource."""
        return tuple(n for n in names if n not in self._by_name)


def is_custom_attribute_name(name: str) -> bool:
    """True when ``name`` is a plain identifier, the only custom profile attribute names this project requests."""
    return _CUSTOM_ATTRIBUTE_NAME.fullmatch(name) is not None


def _tuple_of_str(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogueError(f"{where}: must be a list of strings, got {value!r}")
    return tuple(value)


def _parse_field(entry: Any, where: str) -> DocumentedField:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
        raise CatalogueError(f"{where}: each field needs a string 'name', got {entry!r}")
    where = f"{where}.{entry['name']}"
    json_type = entry.get("type")
    if json_type is not None and json_type not in _JSON_TYPES:
        raise CatalogueError(f"{where}.type: must be one of {', '.join(_JSON_TYPES)} or null, got {json_type!r}")
    listed_in = _tuple_of_str(entry["listed_in"], f"{where}.listed_in") if "listed_in" in entry else ALL_LISTINGS
    values = _tuple_of_str(entry["values"], f"{where}.values") if "values" in entry else None
    return DocumentedField(
        name=entry["name"],
        type=json_type,
        description=str(entry.get("description", "")),
        values=values,
        listed_in=listed_in,
        uncertain=bool(entry.get("uncertain", False)),
        loader_type=entry.get("loader_type"),
        note=entry.get("note"),
    )


def _parse_resource(name: str, entry: Any) -> ResourceDoc:
    where = f"{CATALOGUE_FILE}: resources.{name}"
    if not isinstance(entry, Mapping):
        raise CatalogueError(f"{where}: must be a mapping")
    missing = [k for k in ("title", "source", "doc_urls", "endpoint", "takes_dates", "fields") if k not in entry]
    if missing:
        raise CatalogueError(f"{where}: missing {', '.join(missing)}")
    fields = tuple(_parse_field(f, f"{where}.fields") for f in entry["fields"])
    names = [f.name for f in fields]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CatalogueError(f"{where}.fields: listed twice: {', '.join(duplicates)}")
    if "field_count" in entry and entry["field_count"] != len(fields):
        raise CatalogueError(f"{where}: field_count is {entry['field_count']} but {len(fields)} fields are listed")
    return ResourceDoc(
        name=name,
        title=str(entry["title"]),
        source=str(entry["source"]),
        doc_urls=_tuple_of_str(entry["doc_urls"], f"{where}.doc_urls"),
        endpoint=str(entry["endpoint"]),
        takes_dates=bool(entry["takes_dates"]),
        fields=fields,
        notes=str(entry.get("notes", "")),
        custom_attributes=entry.get("custom_attributes"),
    )


def parse_catalogue(text: str) -> dict[str, ResourceDoc]:
    """Parse the catalogue's YAML text into ``{resource name: ResourceDoc}`` (errors name the entry)."""
    data = yaml.safe_load(text)
    if not isinstance(data, Mapping) or not isinstance(data.get("resources"), Mapping):
        raise CatalogueError(f"{CATALOGUE_FILE}: needs a top-level 'resources' mapping")
    return {name: _parse_resource(name, entry) for name, entry in data["resources"].items()}


@functools.cache
def load_catalogue(path: Path | None = None) -> Mapping[str, ResourceDoc]:
    """The catalogue shipped with the package (``fields.yml``), or the file at ``path``; read once per path."""
    if path is None:
        text = importlib_resources.files(__package__).joinpath(CATALOGUE_FILE).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return parse_catalogue(text)


def resource_doc(name: str) -> ResourceDoc:
    """The documented resource called ``name``; the error lists the documented ones."""
    catalogue = load_catalogue()
    try:
        return catalogue[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a documented Logs API resource; documented: {', '.join(catalogue)}") from None
