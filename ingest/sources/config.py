"""Source declarations: ``ingest/sources/sources.yml`` parsed and validated into frozen dataclasses.

One entry under ``sources:`` declares a source; its ``kind`` says how data arrives:

- ``rest_api``: pages of JSON pulled from an HTTP API (auth from an Airflow connection, pagination,
  an incremental window, the records path, the schema);
- ``csv_drop``: CSV files dropped into ``$LAKEHOUSE_DATA_DIR/inbox/<source>/``, or into an S3 prefix
  (``inbox: s3://<bucket>/<prefix>/``, read through the Airflow connection ``connection``, default
  ``lakehouse_s3``).

Every resource of a source declares its schema (fields with types and JSON paths), its
``primary_key``, its ``write_disposition`` and, for APIs, its incremental cursor. Everything is
checked when the file is loaded; an error names the file, the entry and the field, e.g.
``sources.yml: sources.vacancies.resources.vacancies.pagination.type: must be one of ...``.

The file is read from ``LAKEHOUSE_SOURCES_FILE`` when that is set (tests, other deployments).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lakehouse.settings import ConfigError, parse_day

DEFAULT_SOURCES_FILE = Path(__file__).resolve().parent / "sources.yml"
SOURCES_FILE_ENV = "LAKEHOUSE_SOURCES_FILE"

KINDS = ("rest_api", "csv_drop")
SCALAR_TYPES = ("string", "integer", "number", "boolean", "date", "timestamp", "json")
ARRAY_TYPES = tuple(f"array[{t}]" for t in ("string", "integer", "number"))
FIELD_TYPES = SCALAR_TYPES + ARRAY_TYPES
WRITE_DISPOSITIONS = ("merge", "append", "replace")
AUTH_TYPES = ("bearer", "header", "query", "basic", "none")
PAGINATION_TYPES = ("page", "offset", "cursor", "next_link", "none")
PARAM_FORMATS = ("iso", "date", "unix")
# Silver adds these lineage columns to every declared table; a field may not use their names.
LINEAGE_COLUMNS = ("export_date", "bronze_file", "bronze_row")
# Names that the AppMetrica pipeline owns under bronze/, silver/ and dags/.
RESERVED_SOURCE_NAMES = frozenset({"appmetrica", "lakehouse", "sources"})

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_FIELD_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_PATH_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_$@-]+(\[\])?$")
_HEADER_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_CRON_RE = re.compile(r"^(@(hourly|daily|weekly|monthly|yearly)|(\S+\s+){4}\S+)$")


class SourceConfigError(ConfigError):
    """A declaration is invalid; the message names the file, the entry and the field."""

    retryable = False


# --------------------------------------------------------------------------------------------
# Declarations


@dataclass(frozen=True)
class FieldSpec:
    """One column of a resource: its name, type, where it comes from and whether it must be present.

    ``path`` is a dotted path into a JSON record (``salary.from``); a segment ending in ``[]``
    maps the rest of the path over a list (``key_skills[].name`` -> the list of names). For CSV
    sources ``path`` is the header name.
    """

    name: str
    type: str
    path: str
    required: bool = False
    description: str = ""

    @property
    def is_array(self) -> bool:
        """True for ``array[...]`` types."""
        return self.type.startswith("array[")

    @property
    def element_type(self) -> str:
        """``integer`` for ``array[integer]``; the type itself for scalars."""
        return self.type[6:-1] if self.is_array else self.type


@dataclass(frozen=True)
class AuthSpec:
    """How the secret of the connection is sent: ``bearer`` (Authorization header), ``header``
    (header ``name``), ``query`` (query parameter ``name``), ``basic`` (login/password) or ``none``."""

    type: str = "none"
    name: str | None = None


@dataclass(frozen=True)
class PaginationSpec:
    """How the next page is requested, and when the pages end.

    - ``page``: ``page_param`` counts from ``first_page``; ``size_param``/``page_size`` set the page
      size; stop on an empty or short page, or after ``total_pages_path`` pages.
    - ``offset``: ``offset_param`` advances by the records received; ``limit_param``/``limit``; stop on
      an empty or short page, or at ``total_path`` records.
    - ``cursor``: the next request sends ``cursor_param`` = the value at ``cursor_path`` of the last
      response; stop when it is missing, null or empty.
    - ``next_link``: follow the URL at ``next_path`` of the body, or the ``Link: <...>; rel="next"``
      header when ``next_path`` is not set; stop when there is none. The URL must stay on the base
      URL's scheme, host and port (credentials are never sent elsewhere).
    - ``none``: a single request.
    """

    type: str = "none"
    page_param: str = "page"
    first_page: int = 1
    size_param: str | None = None
    page_size: int | None = None
    total_pages_path: str | None = None
    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: int | None = None
    total_path: str | None = None
    cursor_param: str = "cursor"
    cursor_path: str | None = None
    next_path: str | None = None


@dataclass(frozen=True)
class IncrementalSpec:
    """The incremental window: a run for day D asks for records whose ``cursor_field`` falls in
    [D 00:00, D+1 00:00) of the source's time zone, sending ``start_param`` (and ``end_param`` when
    the API takes one: "since/until"; without it the API is "updated after" and silver drops
    records past the window's end). ``param_format``: ``iso`` (``2026-11-01T00:00:00+00:00``),
    ``date`` (``2026-11-01``), ``unix`` (seconds)."""

    cursor_field: str
    start_param: str
    end_param: str | None = None
    param_format: str = "iso"


@dataclass(frozen=True)
class ResourceSpec:
    """One resource (endpoint or file family) of a source, with its schema and write mode."""

    name: str
    fields: tuple[FieldSpec, ...]
    primary_key: tuple[str, ...]
    write_disposition: str
    description: str = ""
    # rest_api
    path: str = ""
    params: Mapping[str, str] = field(default_factory=dict)
    records_path: str = ""
    pagination: PaginationSpec = field(default_factory=PaginationSpec)
    incremental: IncrementalSpec | None = None
    # csv_drop
    file_pattern: str = "*.csv"
    delimiter: str = ","
    encoding: str = "utf-8"

    def field(self, name: str) -> FieldSpec:
        """The field called ``name`` (KeyError if there is none)."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def field_names(self) -> tuple[str, ...]:
        """The declared field names, in order."""
        return tuple(f.name for f in self.fields)


@dataclass(frozen=True)
class RetrySpec:
    """Bounds on retries: ``max_attempts`` per request (5xx, 429, connection errors), capped
    exponential backoff, and the longest ``Retry-After`` the client will honour by waiting."""

    max_attempts: int = 5
    backoff_seconds: float = 1.0
    backoff_cap_seconds: float = 60.0
    max_retry_after_seconds: float = 600.0


@dataclass(frozen=True)
class SourceSpec:
    """One declared source."""

    name: str
    kind: str
    resources: Mapping[str, ResourceSpec]
    description: str = ""
    schedule: str | None = "0 1 * * *"
    timezone: str = "UTC"
    start_date: dt.date = dt.date(2026, 1, 1)
    dbt_selector: str | None = None
    tags: tuple[str, ...] = ()
    # rest_api
    connection: str | None = None
    base_url: str | None = None
    auth: AuthSpec = field(default_factory=AuthSpec)
    requests_per_second: float | None = None
    retry: RetrySpec = field(default_factory=RetrySpec)
    timeout_seconds: float = 30.0
    max_pages: int = 10_000
    # csv_drop: ``s3://<bucket>/<prefix>/`` (normalised, ending in ``/``); None = the local inbox
    inbox: str | None = None

    @property
    def s3_inbox(self) -> tuple[str, str] | None:
        """``(bucket, prefix)`` of an S3 inbox (the prefix ends in ``/``), or None for the local inbox."""
        if self.inbox is None:
            return None
        bucket, _, prefix = self.inbox.removeprefix("s3://").partition("/")
        return bucket, prefix

    @property
    def dag_id(self) -> str:
        """The generated DAG's id: ``source_<name>``."""
        return f"source_{self.name}"

    @property
    def tz(self) -> ZoneInfo:
        """The source's time zone (validated when the file was loaded)."""
        return ZoneInfo(self.timezone)

    def window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """The day's incremental window [D 00:00, D+1 00:00) in the source's time zone (aware datetimes)."""
        start = dt.datetime.combine(day, dt.time(0), tzinfo=self.tz)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=self.tz)
        return start, end

    def table(self, resource: str) -> str:
        """The silver (and quarantine) table name of ``resource``: ``<source>__<resource>``."""
        return f"{self.name}__{resource}"

    def resource(self, name: str) -> ResourceSpec:
        """The resource ``name``; a SourceConfigError naming the declared ones otherwise."""
        try:
            return self.resources[name]
        except KeyError:
            raise SourceConfigError(
                f"source {self.name!r} has no resource {name!r}; declared: {', '.join(self.resources)}"
            ) from None


# --------------------------------------------------------------------------------------------
# Validation helpers


class _Where:
    """A position in the file, for error messages: ``sources.yml: sources.x.resources.y.field``."""

    def __init__(self, file: str, path: str) -> None:
        self.file = file
        self.path = path

    def __truediv__(self, key: str | int) -> _Where:
        return _Where(self.file, f"{self.path}.{key}" if self.path else str(key))

    def error(self, message: str) -> SourceConfigError:
        return SourceConfigError(f"{self.file}: {self.path}: {message}")


def _mapping(value: Any, where: _Where, allowed: tuple[str, ...] | None = None, required: tuple[str, ...] = ()) -> dict:
    if not isinstance(value, Mapping):
        raise where.error(f"must be a mapping, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise where.error(f"keys must be strings, got {key!r}")
    if allowed is not None:
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise where.error(f"unknown key {unknown[0]!r} (allowed: {', '.join(allowed)})")
    for key in required:
        if key not in value or value[key] is None:
            raise (where / key).error("is required")
    return dict(value)


def _str(
    value: Any, where: _Where, *, choices: tuple[str, ...] | None = None, pattern: re.Pattern | None = None
) -> str:
    if not isinstance(value, str) or not value.strip():
        raise where.error(f"must be a non-empty string, got {value!r}")
    if choices is not None and value not in choices:
        raise where.error(f"must be one of {', '.join(choices)}; got {value!r}")
    if pattern is not None and not pattern.match(value):
        raise where.error(f"{value!r} does not match {pattern.pattern}")
    return value


def _opt_str(value: Any, where: _Where, **kw: Any) -> str | None:
    return None if value is None else _str(value, where, **kw)


def _int(value: Any, where: _Where, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise where.error(f"must be an integer >= {low}, got {value!r}")
    return value


def _number(value: Any, where: _Where, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (positive and value == 0):
        raise where.error(f"must be a number {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _json_path(value: Any, where: _Where, *, allow_empty: bool = False, allow_arrays: bool = False) -> str:
    if allow_empty and value in ("", "$", "."):
        return ""
    text = _str(value, where)
    for segment in text.split("."):
        if not _PATH_SEGMENT_RE.match(segment):
            raise where.error(f"{text!r} is not a dotted path (e.g. data.items or key_skills[].name)")
        if segment.endswith("[]") and not allow_arrays:
            raise where.error(f"{text!r}: '[]' is only allowed in a field's path")
    return text


# --------------------------------------------------------------------------------------------
# Parsing


def _field(name: str, raw: Any, where: _Where, kind: str) -> FieldSpec:
    if not isinstance(name, str) or not _FIELD_RE.match(name):
        raise where.error("field names must match [a-z][a-z0-9_]* (at most 63 characters)")
    if name in LINEAGE_COLUMNS:
        raise where.error(f"{name!r} is a lineage column silver adds; rename the field")
    if isinstance(raw, str):
        raw = {"type": raw}
    spec = _mapping(raw, where, ("type", "path", "required", "description"), ("type",))
    ftype = _str(spec["type"], where / "type", choices=FIELD_TYPES)
    if kind == "csv_drop" and ftype.startswith("array["):
        raise (where / "type").error(f"{ftype} cannot come from a CSV column; use string or json")
    path = spec.get("path", name)
    if kind == "csv_drop":
        path = _str(path, where / "path")
    else:
        path = _json_path(path, where / "path", allow_arrays=True)
        if "[]" in path and not ftype.startswith("array["):
            raise (where / "path").error(f"{path!r} maps over a list, so the type must be an array[...] type")
    required = spec.get("required", False)
    if not isinstance(required, bool):
        raise (where / "required").error(f"must be true or false, got {required!r}")
    description = spec.get("description") or ""
    return FieldSpec(name=name, type=ftype, path=path, required=required, description=str(description))


def _pagination(raw: Any, where: _Where) -> PaginationSpec:
    if raw is None:
        return PaginationSpec()
    if isinstance(raw, str):
        raw = {"type": raw}
    allowed = {
        "page": ("type", "page_param", "first_page", "size_param", "page_size", "total_pages_path"),
        "offset": ("type", "offset_param", "limit_param", "limit", "total_path"),
        "cursor": ("type", "cursor_param", "cursor_path", "size_param", "page_size"),
        "next_link": ("type", "next_path"),
        "none": ("type",),
    }
    spec = _mapping(raw, where, None, ("type",))
    ptype = _str(spec["type"], where / "type", choices=PAGINATION_TYPES)
    spec = _mapping(raw, where, allowed[ptype])
    out: dict[str, Any] = {"type": ptype}
    for key in ("page_param", "size_param", "offset_param", "limit_param", "cursor_param"):
        if key in spec:
            out[key] = _str(spec[key], where / key)
    for key in ("total_pages_path", "total_path", "cursor_path", "next_path"):
        if key in spec:
            out[key] = _json_path(spec[key], where / key)
    if "first_page" in spec:
        out["first_page"] = _int(spec["first_page"], where / "first_page", low=0)
    for key in ("page_size", "limit"):
        if key in spec:
            out[key] = _int(spec[key], where / key, low=1)
    if ptype == "offset" and "limit" not in out:
        raise (where / "limit").error("is required for offset pagination (the page size)")
    if ptype == "cursor" and "cursor_path" not in out:
        raise (where / "cursor_path").error("is required for cursor pagination (where the next cursor is)")
    if "size_param" in out and "page_size" not in out:
        raise (where / "page_size").error("is required when size_param is set")
    return PaginationSpec(**out)


def _incremental(raw: Any, where: _Where, fields: tuple[FieldSpec, ...]) -> IncrementalSpec | None:
    if raw is None:
        return None
    spec = _mapping(raw, where, ("cursor_field", "start_param", "end_param", "param_format"),
                    ("cursor_field", "start_param"))  # fmt: skip
    cursor = _str(spec["cursor_field"], where / "cursor_field")
    by_name = {f.name: f for f in fields}
    if cursor not in by_name:
        raise (where / "cursor_field").error(f"{cursor!r} is not a declared field ({', '.join(by_name)})")
    if by_name[cursor].type not in ("timestamp", "date"):
        raise (where / "cursor_field").error(
            f"{cursor!r} must be a timestamp or date field, not {by_name[cursor].type}"
        )
    return IncrementalSpec(
        cursor_field=cursor,
        start_param=_str(spec["start_param"], where / "start_param"),
        end_param=_opt_str(spec.get("end_param"), where / "end_param"),
        param_format=_str(spec.get("param_format", "iso"), where / "param_format", choices=PARAM_FORMATS),
    )


# A resource path is appended to the source's base URL: RFC 3986 path characters only, so nothing in it can
# leave the base path (no '..' or '.' segment, no '//', no backslash, no encoded dot, slash, backslash or control).
_PATH_SEGMENT_CHARS_RE = re.compile(r"(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})*")
_ENCODED_FORBIDDEN_RE = re.compile(r"%(?:2e|2f|5c|[01][0-9a-f]|7f)", re.IGNORECASE)


def _resource_path(value: Any, where: _Where) -> str:
    """A REST resource ``path``: '/' then segments that keep the request under the source's base URL."""
    path = _str(value, where)
    shape = "must be a path starting with '/' under the source's base URL (e.g. /v1/items)"
    if not path.startswith("/") or path.startswith("//"):
        raise where.error(f"{shape}; got {path!r}")
    segments = path[1:].split("/")
    for index, segment in enumerate(segments):
        if segment == "" and index < len(segments) - 1:
            raise where.error(f"{shape}, without '//'; got {path!r}")
        if segment in (".", ".."):
            raise where.error(f"{shape}, without '.' or '..' segments; got {path!r}")
        if _ENCODED_FORBIDDEN_RE.search(segment):
            raise where.error(f"{shape}, without an encoded '.', '/', '\\' or control character; got {path!r}")
        if not _PATH_SEGMENT_CHARS_RE.fullmatch(segment):
            raise where.error(
                f"{shape}: letters, digits, -._~!$&'()*+,;=:@ and %XX escapes only (no query, fragment, "
                f"backslash, space or URL); got {path!r}"
            )
    return path


_REST_RESOURCE_KEYS = ("description", "path", "params", "records_path", "pagination", "incremental",
                       "write_disposition", "primary_key", "fields")  # fmt: skip
_CSV_RESOURCE_KEYS = ("description", "file_pattern", "delimiter", "encoding", "write_disposition", "primary_key",
                      "fields")  # fmt: skip


def _resource(name: str, raw: Any, where: _Where, kind: str) -> ResourceSpec:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise where.error("resource names must match [a-z][a-z0-9_]* (at most 31 characters)")
    allowed = _REST_RESOURCE_KEYS if kind == "rest_api" else _CSV_RESOURCE_KEYS
    spec = _mapping(raw, where, allowed, ("fields", "write_disposition"))
    fields_raw = _mapping(spec["fields"], where / "fields")
    if not fields_raw:
        raise (where / "fields").error("declares no field")
    fields = tuple(_field(n, v, where / "fields" / n, kind) for n, v in fields_raw.items())
    disposition = _str(spec["write_disposition"], where / "write_disposition", choices=WRITE_DISPOSITIONS)
    pk_raw = spec.get("primary_key") or []
    if isinstance(pk_raw, str):
        pk_raw = [pk_raw]
    if not isinstance(pk_raw, list):
        raise (where / "primary_key").error(f"must be a field name or a list of them, got {pk_raw!r}")
    names = {f.name: f for f in fields}
    for key in pk_raw:
        if key not in names:
            raise (where / "primary_key").error(f"{key!r} is not a declared field ({', '.join(names)})")
        if names[key].is_array or names[key].type == "json":
            raise (where / "primary_key").error(f"{key!r} is a {names[key].type} field and cannot be a key")
    if len(set(pk_raw)) != len(pk_raw):
        raise (where / "primary_key").error("lists a field twice")
    if disposition == "merge" and not pk_raw:
        raise (where / "primary_key").error("is required with write_disposition merge (rows are merged on it)")
    # Key fields must always be present.
    fields = tuple(FieldSpec(f.name, f.type, f.path, f.required or f.name in pk_raw, f.description) for f in fields)
    common: dict[str, Any] = {
        "name": name,
        "fields": fields,
        "primary_key": tuple(pk_raw),
        "write_disposition": disposition,
        "description": str(spec.get("description") or ""),
    }
    if kind == "rest_api":
        if "path" not in spec:
            raise (where / "path").error("is required (the endpoint path, e.g. /v1/items)")
        path = _resource_path(spec["path"], where / "path")
        params = _mapping(spec.get("params") or {}, where / "params")
        for key, value in params.items():
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise (where / "params" / key).error(f"must be a string or a number, got {value!r}")
        incremental = _incremental(spec.get("incremental"), where / "incremental", fields)
        if incremental is not None and not incremental.end_param and disposition == "replace":
            raise (where / "write_disposition").error("replace needs a full snapshot; an updated-after window is not")
        return ResourceSpec(
            **common,
            path=path,
            params={k: str(v) for k, v in params.items()},
            records_path=_json_path(spec.get("records_path", ""), where / "records_path", allow_empty=True),
            pagination=_pagination(spec.get("pagination"), where / "pagination"),
            incremental=incremental,
        )
    pattern = _str(spec.get("file_pattern", "*.csv"), where / "file_pattern")
    if "/" in pattern or pattern.startswith("."):
        raise (where / "file_pattern").error(f"must be a file name pattern (no '/', no leading '.'), got {pattern!r}")
    delimiter = spec.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        raise (where / "delimiter").error(f"must be a single character (not a quote or newline), got {delimiter!r}")
    encoding = _str(spec.get("encoding", "utf-8"), where / "encoding")
    try:
        "".encode(encoding)
    except LookupError:
        raise (where / "encoding").error(f"{encoding!r} is not a known text encoding") from None
    return ResourceSpec(**common, file_pattern=pattern, delimiter=delimiter, encoding=encoding)


_SOURCE_KEYS = {
    "rest_api": ("kind", "description", "schedule", "timezone", "start_date", "dbt_selector", "tags", "connection",
                 "base_url", "auth", "rate_limit", "retry", "timeout_seconds", "max_pages", "resources"),
    "csv_drop": ("kind", "description", "schedule", "timezone", "start_date", "dbt_selector", "tags", "inbox",
                 "connection", "resources"),
}  # fmt: skip


def _base_url(value: Any, where: _Where) -> str | None:
    if value is None:
        return None
    url = _str(value, where).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise where.error(f"must be an http(s):// URL with a host, got {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise where.error("must not carry credentials, a query or a fragment (secrets belong in the connection)")
    return url


def _source(name: str, raw: Any, where: _Where) -> SourceSpec:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise where.error("source names must match [a-z][a-z0-9_]* (at most 31 characters)")
    if name in RESERVED_SOURCE_NAMES:
        raise where.error(f"{name!r} is reserved; choose another source name")
    spec = _mapping(raw, where, None, ("kind", "resources"))
    kind = _str(spec["kind"], where / "kind", choices=KINDS)
    spec = _mapping(raw, where, _SOURCE_KEYS[kind])
    resources_raw = _mapping(spec["resources"], where / "resources")
    if not resources_raw:
        raise (where / "resources").error("declares no resource")
    resources = {n: _resource(n, v, where / "resources" / n, kind) for n, v in resources_raw.items()}
    out: dict[str, Any] = {"name": name, "kind": kind, "resources": resources}
    out["description"] = str(spec.get("description") or "")
    if "schedule" in spec:
        schedule = spec["schedule"]
        if schedule is not None:
            schedule = _str(schedule, where / "schedule")
            if not _CRON_RE.match(schedule.strip()):
                raise (where / "schedule").error(f"must be a 5-field cron expression or @daily etc., got {schedule!r}")
        out["schedule"] = schedule
    if "timezone" in spec:
        tz = _str(spec["timezone"], where / "timezone")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise (where / "timezone").error(f"{tz!r} is not an IANA time zone") from None
        out["timezone"] = tz
    if "start_date" in spec:
        value = spec["start_date"]
        if isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                value = None
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            raise (where / "start_date").error(f"must be a date YYYY-MM-DD, got {spec['start_date']!r}")
        try:
            out["start_date"] = parse_day(value, what="start_date")
        except ConfigError as exc:
            raise (where / "start_date").error(str(exc)) from None
    if spec.get("dbt_selector") is not None:
        out["dbt_selector"] = _str(spec["dbt_selector"], where / "dbt_selector", pattern=_FIELD_RE)
    tags = spec.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise (where / "tags").error(f"must be a list of strings, got {tags!r}")
    out["tags"] = tuple(tags)
    if kind == "rest_api":
        _rest_source_options(spec, where, out)
    else:
        _csv_source_options(spec, where, out)
    return SourceSpec(**out)


_S3_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CONN_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")
DEFAULT_S3_INBOX_CONNECTION = "lakehouse_s3"


def _s3_inbox(value: Any, where: _Where) -> str:
    """``inbox`` checked and normalised: ``s3://<bucket>/<prefix>/`` with a non-empty prefix."""
    url = _str(value, where).strip()
    shape = "must be s3://<bucket>/<prefix>/ (an S3 prefix holding the files; the local inbox needs no entry)"
    if not url.startswith("s3://"):
        raise where.error(f"{shape}, got {url!r}")
    bucket, _, prefix = url[5:].partition("/")
    if not _S3_BUCKET_RE.match(bucket) or ".." in bucket:
        raise where.error(f"{shape}: {bucket!r} is not a valid bucket name (3-63 of a-z, 0-9, '.', '-')")
    if any(ch in url for ch in "?#") or any(ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise where.error(f"{shape}: no query, fragment or control character, got {url!r}")
    parts = prefix.rstrip("/").split("/")
    if not prefix.strip("/") or any(part in ("", ".", "..") for part in parts):
        raise where.error(f"{shape}: the prefix must be non-empty, without '//', '.' or '..' segments, got {url!r}")
    return f"s3://{bucket}/{'/'.join(parts)}/"


def _csv_source_options(spec: dict[str, Any], where: _Where, out: dict[str, Any]) -> None:
    if spec.get("inbox") is not None:
        out["inbox"] = _s3_inbox(spec["inbox"], where / "inbox")
        connection = spec.get("connection") or DEFAULT_S3_INBOX_CONNECTION
        out["connection"] = _str(connection, where / "connection", pattern=_CONN_ID_RE)
    elif spec.get("connection") is not None:
        raise (where / "connection").error("is only used with an S3 inbox (inbox: s3://<bucket>/<prefix>/)")


def _rest_source_options(spec: dict[str, Any], where: _Where, out: dict[str, Any]) -> None:
    out["base_url"] = _base_url(spec.get("base_url"), where / "base_url")
    auth_raw = spec.get("auth") or {"type": "none"}
    if isinstance(auth_raw, str):
        auth_raw = {"type": auth_raw}
    auth = _mapping(auth_raw, where / "auth", ("type", "name"), ("type",))
    auth_type = _str(auth["type"], where / "auth" / "type", choices=AUTH_TYPES)
    auth_name = None
    if auth_type in ("header", "query"):
        if not auth.get("name"):
            raise (where / "auth" / "name").error(f"is required for auth type {auth_type} (the header or parameter)")
        auth_name = _str(auth["name"], where / "auth" / "name", pattern=_HEADER_RE)
    elif auth.get("name") is not None:
        raise (where / "auth" / "name").error(f"is only used with auth type header or query, not {auth_type}")
    out["auth"] = AuthSpec(auth_type, auth_name)
    connection = spec.get("connection")
    if connection is not None:
        connection = _str(connection, where / "connection", pattern=re.compile(r"^[A-Za-z0-9_.-]{1,250}$"))
    if auth_type != "none" and connection is None:
        raise (where / "connection").error(f"is required for auth type {auth_type} (the secret lives there)")
    if connection is None and out["base_url"] is None:
        raise (where / "base_url").error("is required when no connection is declared (nowhere to find the host)")
    out["connection"] = connection
    if spec.get("rate_limit") is not None:
        rate = _mapping(spec["rate_limit"], where / "rate_limit", ("requests_per_second",), ("requests_per_second",))
        out["requests_per_second"] = _number(
            rate["requests_per_second"], where / "rate_limit" / "requests_per_second", positive=True
        )
    if spec.get("retry") is not None:
        retry = _mapping(spec["retry"], where / "retry", ("max_attempts", "backoff_seconds", "backoff_cap_seconds",
                                                           "max_retry_after_seconds"))  # fmt: skip
        values: dict[str, Any] = {}
        if "max_attempts" in retry:
            values["max_attempts"] = _int(retry["max_attempts"], where / "retry" / "max_attempts", low=1)
        for key in ("backoff_seconds", "backoff_cap_seconds", "max_retry_after_seconds"):
            if key in retry:
                values[key] = _number(retry[key], where / "retry" / key)
        out["retry"] = RetrySpec(**values)
    if "timeout_seconds" in spec:
        out["timeout_seconds"] = _number(spec["timeout_seconds"], where / "timeout_seconds", positive=True)
    if "max_pages" in spec:
        out["max_pages"] = _int(spec["max_pages"], where / "max_pages", low=1)


def parse_declarations(data: Any, file: str = "sources.yml") -> dict[str, SourceSpec]:
    """Validate the parsed YAML document ``data`` and return the sources by name."""
    root = _Where(file, "")
    doc = _mapping(data if data is not None else {}, _Where(file, "(top level)"), ("version", "sources"))
    if doc.get("version", 1) != 1:
        raise (root / "version").error(f"only version 1 is understood, got {doc.get('version')!r}")
    sources_raw = _mapping(doc.get("sources") or {}, root / "sources")
    return {name: _source(name, raw, root / "sources" / name) for name, raw in sources_raw.items()}


def sources_file() -> Path:
    """The declarations file: ``$LAKEHOUSE_SOURCES_FILE`` or ``ingest/sources/sources.yml``."""
    raw = os.environ.get(SOURCES_FILE_ENV)
    return Path(raw).expanduser() if raw else DEFAULT_SOURCES_FILE


def load_declarations(path: Path | None = None) -> dict[str, SourceSpec]:
    """Read and validate the declarations file (see :func:`sources_file`).

    The file is read through :func:`lakehouse.yaml_files.read_yaml_file`: at most ``LAKEHOUSE_YAML_MAX_BYTES``
    (1 MiB by default), no YAML anchors or aliases (a few hundred bytes of nested aliases would expand into
    gigabytes in the DAG processor).
    """
    from lakehouse.yaml_files import read_yaml_file

    path = path or sources_file()
    data = read_yaml_file(path, what="the sources file", error=SourceConfigError)
    return parse_declarations(data, path.name)


def get_source(name: str, path: Path | None = None) -> SourceSpec:
    """The declared source ``name``; a SourceConfigError naming the declared ones otherwise."""
    declared = load_declarations(path)
    try:
        return declared[name]
    except KeyError:
        raise SourceConfigError(
            f"no source {name!r} is declared in {(path or sources_file()).name}; declared: "
            + (", ".join(declared) or "none")
        ) from None
