"""Project-wide settings and the data layout of docs/contracts.md.

Every path a job reads or writes is built here, from validated inputs only, so nothing
derived from a DAG Param or a CLI argument can point outside ``LAKEHOUSE_DATA_DIR``.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

REPO_ROOT = Path(__file__).resolve().parents[1]
# The Airflow home of `make` and of the `lakehouse` command unless AIRFLOW_HOME says otherwise (never ~/airflow).
DEFAULT_AIRFLOW_HOME = REPO_ROOT / ".airflow"
DEFAULT_APP_TIMEZONE = "Europe/Moscow"
DEFAULT_S3_PREFIX = "gold"

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The days a run, a backfill or a source may name: far enough from the calendar's ends that every day derived
# from one (lookback windows, data intervals, UTC conversions) is a real date too (silver's own checks use the same
# years for event times).
MIN_DAY = dt.date(2000, 1, 1)
MAX_DAY = dt.date(2099, 12, 31)
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class ConfigError(ValueError):
    """A setting or an input value is invalid; the message names it."""


def parse_day(value: str | dt.date, *, what: str = "date") -> dt.date:
    """Return ``value`` as a date, accepting only ``YYYY-MM-DD`` strings or dates from MIN_DAY to MAX_DAY."""
    if isinstance(value, dt.datetime):
        raise ConfigError(f"{what} must be a calendar date (YYYY-MM-DD), got a datetime {value!r}")
    if isinstance(value, dt.date):
        day = value
    elif not isinstance(value, str) or not _DATE_RE.match(value):
        raise ConfigError(f"{what} must look like YYYY-MM-DD, got {value!r}")
    else:
        try:
            day = dt.date.fromisoformat(value)
        except ValueError as exc:
            raise ConfigError(f"{what} {value!r} is not a real calendar date: {exc}") from None
    if not MIN_DAY <= day <= MAX_DAY:
        raise ConfigError(f"{what} {day.isoformat()} is out of range: days from {MIN_DAY} to {MAX_DAY} are accepted")
    return day


def check_name(value: str, *, what: str) -> str:
    """Validate an identifier used in a path (resource, table, mart): lowercase, digits, underscore."""
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ConfigError(f"{what} must match [a-z][a-z0-9_]*, got {value!r}")
    return value


def check_connection_env(conn_id: str) -> None:
    """Refuse a malformed ``AIRFLOW_CONN_<ID>`` naming the variable and the JSON error.

    Airflow's secrets lookup swallows a parse error and reports the connection as not defined, so
    a typo in the variable would read as a missing connection (retried, or a silent fallback).
    The message carries the parser's position, never the value (it holds the secret).
    """
    var = f"AIRFLOW_CONN_{conn_id.upper()}"
    text = (os.environ.get(var) or "").strip()
    if not text.startswith(("{", "[", '"')):
        return  # unset, or the URI form (Airflow's own parser names its problems)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"environment variable {var} (the {conn_id} connection) is not valid JSON: "
            f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(f"environment variable {var} (the {conn_id} connection) must be a JSON object, "
                          f"got a JSON {type(value).__name__}")  # fmt: skip


def app_timezone() -> ZoneInfo:
    """The application's time zone (AppMetrica ``*_datetime`` values are in it)."""
    name = os.environ.get("LAKEHOUSE_APP_TIMEZONE", DEFAULT_APP_TIMEZONE)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"LAKEHOUSE_APP_TIMEZONE={name!r} is not a known IANA time zone") from None


DEFAULT_REPORTING_CURRENCY = "USD"
_CURRENCY_RE = re.compile(r"[A-Z]{3}")


def reporting_currency() -> str:
    """The one currency revenue features add amounts in (``LAKEHOUSE_REPORTING_CURRENCY``, default USD).

    An ISO 4217 code of three capital letters. Amounts exported in another currency are never converted: the
    features count them apart (docs/features.md).
    """
    code = os.environ.get("LAKEHOUSE_REPORTING_CURRENCY", "").strip() or DEFAULT_REPORTING_CURRENCY
    if not _CURRENCY_RE.fullmatch(code):
        raise ConfigError(
            f"LAKEHOUSE_REPORTING_CURRENCY must be an ISO 4217 code of three capital letters (e.g. USD), got {code!r}"
        )
    return code


_UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def data_dir_problem(exc: BaseException) -> str | None:
    """What ``exc`` (or an error it was raised from) says about ``LAKEHOUSE_DATA_DIR``, when it is a file-system
    error on a path under it (a read-only or unusable data folder), else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _UNWRITABLE and current.filename:
            root = Layout.from_env().root
            path = Path(os.fsdecode(current.filename)).absolute()
            if path == root or root in path.parents:
                return f"LAKEHOUSE_DATA_DIR={str(root)!r} cannot be written: {current.strerror}: {path}"
        current = current.__cause__ or current.__context__
    return None


@dataclass(frozen=True)
class Layout:
    """The folder layout under ``LAKEHOUSE_DATA_DIR`` (see docs/contracts.md, "Data layout")."""

    root: Path

    @classmethod
    def from_env(cls) -> Layout:
        """The layout under ``LAKEHOUSE_DATA_DIR`` (default ``data/`` in the repo); a path through a file is refused."""
        raw = os.environ.get("LAKEHOUSE_DATA_DIR")
        root = (Path(raw) if raw else REPO_ROOT / "data").expanduser().resolve()
        for folder in (root, *root.parents):  # the first one that exists must be a folder
            if folder.exists():
                if not folder.is_dir():
                    where = "is a file" if folder == root else f"goes through the file {folder}"
                    raise ConfigError(f"LAKEHOUSE_DATA_DIR={str(root)!r} {where}: point it at a folder")
                break
        return cls(root)

    def _partition(self, *parts: str, day: dt.date) -> Path:
        return self.root.joinpath(*parts, f"date={day.isoformat()}")

    def bronze(self, resource: str, day: dt.date, source: str = "appmetrica") -> Path:
        return self._partition(
            "bronze", check_name(source, what="source"), check_name(resource, what="resource"), day=day
        )

    def silver(self, table: str, day: dt.date) -> Path:
        return self._partition("silver", check_name(table, what="silver table"), day=day)

    def silver_table(self, table: str) -> Path:
        return self.root / "silver" / check_name(table, what="silver table")

    def quarantine(self, resource: str, day: dt.date) -> Path:
        return self._partition("quarantine", check_name(resource, what="resource"), day=day)

    @property
    def gold(self) -> Path:
        return self.root / "gold"

    @property
    def warehouse(self) -> Path:
        """Where the dbt-duckdb database file lives (not under gold/: gold holds only Parquet)."""
        return self.root / "warehouse"

    @property
    def published(self) -> Path:
        return self.root / "published"

    @property
    def reports(self) -> Path:
        return self.root / "reports"
