"""Settings of the AppMetrica Logs API source, from the Airflow connection ``appmetrica_default``.

The connection (type ``http``) carries the base URL with its scheme in ``host``, the OAuth token in
``password`` and the rest in ``extra`` (see docs/contracts.md). The token is never shown: it is left out of
``repr`` and of every error message.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ingest.appmetrica.catalogue import is_custom_attribute_name, resource_doc
from lakehouse.settings import ConfigError

ENV_CONNECTION = "AIRFLOW_CONN_APPMETRICA_DEFAULT"
CONNECTION_ID = "appmetrica_default"
FORMATS = ("csv", "json")
# The hosts the AppMetrica docs give for the API (both current; the official loader defaults to .ru).
DOCUMENTED_HOSTS = ("api.appmetrica.yandex.ru", "api.appmetrica.yandex.com")
# Columns silver adds to every profile row: a custom attribute cannot take one of these names.
RESERVED_ATTRIBUTE_NAMES = frozenset({"row_hash", "bronze_file", "bronze_row", "export_date"})

_APP_ID_RE = re.compile(r"^[0-9]{1,20}$")  # ASCII digits only (\d would also accept fullwidth digits)

# Options that may come from the connection's ``extra`` (besides application_id), with their types.
_EXTRA_OPTIONS: dict[str, type] = {
    "poll_interval_seconds": float,
    "poll_timeout_seconds": float,
    "max_parts": int,
    "connect_timeout_seconds": float,
    "read_timeout_seconds": float,
    "retries": int,
    "backoff_base_seconds": float,
    "backoff_cap_seconds": float,
    "quota_wait_seconds": float,
    "format": str,
}


@dataclass(frozen=True)
class AppMetricaSettings:
    """Everything the Logs API client needs; validated on construction.

    ``base_url`` is stored without a trailing slash. Times are seconds. Every option below may be set
    in the connection's ``extra``:

    - ``poll_interval_seconds`` (5): the wait between two polls of a queued export (202).
    - ``poll_timeout_seconds`` (600): the most one export part may take, from its first request: 202
      polling, 429/420 quota waits, retry backoff and the requests themselves. Past it the export
      fails naming the timeout.
    - ``quota_wait_seconds`` (60): the wait after a 429/420 ("already 3 enqueued queries").
    - ``retries`` (5): consecutive retries of a 5xx, a refused/reset connection, a read timeout or a
      broken body (Content-Length not reached, cut gzip) before the export fails.
    - ``backoff_base_seconds`` (1) and ``backoff_cap_seconds`` (60): retry ``n`` waits
      ``min(cap, base * 2**(n-1))`` times a random factor in [0.5, 1] (jitter).
    - ``connect_timeout_seconds`` (30): to open the connection.
    - ``read_timeout_seconds`` (300): the longest silence accepted while waiting for the response or
      inside a body; a stalled body is dropped and retried.
    - ``max_parts`` (64): the most parts an export may be split into on "Try to use more parts".
    - ``format`` (``csv``): ``csv`` or ``json``.
    - ``profile_attributes`` (none): the custom profile attributes to export with profiles_v2, by name
      (``["plan", "level"]``): plain identifiers, none a documented profiles_v2 field, each once.
    """

    base_url: str
    token: str = field(repr=False)
    application_id: str
    poll_interval_seconds: float = 5.0
    poll_timeout_seconds: float = 600.0
    max_parts: int = 64
    connect_timeout_seconds: float = 30.0
    read_timeout_seconds: float = 300.0
    retries: int = 5
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 60.0
    quota_wait_seconds: float = 60.0
    format: str = "csv"
    profile_attributes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", _check_base_url(self.base_url))
        object.__setattr__(self, "profile_attributes", _check_profile_attributes(self.profile_attributes))
        if not isinstance(self.token, str) or not self.token.strip():
            raise ConfigError("AppMetrica OAuth token is missing (the connection's password)")
        if any(ch.isspace() for ch in self.token):
            raise ConfigError("AppMetrica OAuth token contains whitespace (check the connection's password)")
        app_id = str(self.application_id).strip() if self.application_id is not None else ""
        if not app_id:
            raise ConfigError("AppMetrica application_id is missing (the connection's extra.application_id)")
        if not _APP_ID_RE.match(app_id):
            raise ConfigError(f"AppMetrica application_id must be digits only, got {self.application_id!r}")
        object.__setattr__(self, "application_id", app_id)
        for name in (
            "poll_interval_seconds",
            "poll_timeout_seconds",
            "connect_timeout_seconds",
            "read_timeout_seconds",
            "backoff_base_seconds",
            "backoff_cap_seconds",
            "quota_wait_seconds",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"AppMetrica setting {name} must be a number >= 0, got {value!r}")
        for name, low in (("max_parts", 1), ("retries", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"AppMetrica setting {name} must be an integer >= {low}, got {value!r}")
        if self.format not in FORMATS:
            raise ConfigError(f"AppMetrica format must be one of {', '.join(FORMATS)}, got {self.format!r}")

    @classmethod
    def from_connection(
        cls,
        host: str | None,
        password: str | None,
        extra: Mapping[str, Any] | str | None,
        *,
        schema: str | None = None,
        port: int | str | None = None,
    ) -> AppMetricaSettings:
        """Build settings from the fields of the Airflow connection ``appmetrica_default``.

        ``host`` is the base URL with its scheme (Airflow's HTTP convention of a bare host plus
        ``schema``/``port`` is accepted too), ``password`` the OAuth token, ``extra`` a dict or its
        JSON text with ``application_id`` and optional overrides (``poll_interval_seconds``,
        ``poll_timeout_seconds``, ``max_parts``, ``retries``, ``quota_wait_seconds``, ``format``, ...).
        """
        extra_dict = _parse_extra(extra)
        if not host or not str(host).strip():
            raise ConfigError(f"connection {CONNECTION_ID}: host (the Logs API base URL with scheme) is missing")
        base_url = str(host).strip()
        if "://" not in base_url and schema:
            base_url = f"{schema}://{base_url}"
        if port not in (None, ""):
            parts = urlsplit(base_url)
            if parts.scheme and parts.port is None and parts.hostname:
                base_url = f"{parts.scheme}://{parts.netloc}:{int(port)}{parts.path}"
        if password is None or not str(password).strip():
            raise ConfigError(f"connection {CONNECTION_ID}: password (the AppMetrica OAuth token) is missing")
        app_id = extra_dict.get("application_id")
        if app_id is None or str(app_id).strip() == "":
            raise ConfigError(f"connection {CONNECTION_ID}: extra.application_id is missing")
        options: dict[str, Any] = {}
        for key, kind in _EXTRA_OPTIONS.items():
            if key not in extra_dict or extra_dict[key] in (None, ""):
                continue
            raw = extra_dict[key]
            what = "a whole number" if kind is int else "a number"
            try:
                if kind is not str and (isinstance(raw, bool) or (kind is int and isinstance(raw, float)
                                                                  and not raw.is_integer())):  # fmt: skip
                    raise ValueError(raw)  # int(1.9) would quietly be 1, int(True) 1
                options[key] = raw if kind is str else kind(raw)
            except (TypeError, ValueError, OverflowError):
                raise ConfigError(f"connection {CONNECTION_ID}: extra.{key} must be {what}, got {raw!r}") from None
        if extra_dict.get("profile_attributes") is not None:
            options["profile_attributes"] = extra_dict["profile_attributes"]
        return cls(base_url=base_url, token=str(password), application_id=str(app_id), **options)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, var: str = ENV_CONNECTION) -> AppMetricaSettings:
        """Build settings from ``AIRFLOW_CONN_APPMETRICA_DEFAULT`` (Airflow's JSON form, or a URI).

        JSON: ``{"conn_type": "http", "host": "http://127.0.0.1:8765", "password": "...",
        "extra": {"application_id": "..."}}``. URI: ``http://:TOKEN@host:port?application_id=...``.
        """
        env = os.environ if environ is None else environ
        raw = env.get(var)
        if raw is None or not raw.strip():
            raise ConfigError(f"environment variable {var} is not set (the {CONNECTION_ID} connection)")
        text = raw.strip()
        if text.startswith("{"):
            try:
                conn = json.loads(text)
            except json.JSONDecodeError as exc:  # the message names where, never the text (it holds the token)
                raise ConfigError(
                    f"environment variable {var} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
                ) from None
            if not isinstance(conn, dict):
                raise ConfigError(f"environment variable {var} must be a JSON object")
            try:
                return cls.from_connection(
                    conn.get("host"),
                    conn.get("password"),
                    conn.get("extra"),
                    schema=conn.get("schema"),
                    port=conn.get("port"),
                )
            except ConfigError as exc:
                raise ConfigError(f"environment variable {var}: {exc}") from None
        return cls._from_uri(text, var)

    @classmethod
    def _from_uri(cls, text: str, var: str) -> AppMetricaSettings:
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise ConfigError(f"environment variable {var} is neither JSON nor a valid connection URI") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"environment variable {var} must be Airflow JSON or an http(s):// URI with a host "
                f"(got scheme {parts.scheme!r})"
            )
        extra: dict[str, Any] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key == "__extra__":
                try:
                    extra.update(json.loads(value))
                except (ValueError, TypeError):
                    raise ConfigError(f"environment variable {var}: __extra__ is not a JSON object") from None
            else:
                extra[key] = value
        host = parts.hostname
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        base = f"{parts.scheme}://{host}" + (f":{port}" if port else "") + parts.path.rstrip("/")
        password = unquote(parts.password) if parts.password else None
        try:
            return cls.from_connection(base, password, extra)
        except ConfigError as exc:
            raise ConfigError(f"environment variable {var}: {exc}") from None

    def public_dict(self) -> dict[str, Any]:
        """The settings as a dict without the token (for logs and manifests)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "token"}


def _parse_extra(extra: Mapping[str, Any] | str | None) -> dict[str, Any]:
    if extra is None or extra == "":
        return {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            raise ConfigError(f"connection {CONNECTION_ID}: extra is not valid JSON") from None
    if not isinstance(extra, Mapping):
        raise ConfigError(f"connection {CONNECTION_ID}: extra must be a JSON object")
    return dict(extra)


_HOST_FIELD = f"the host field of the connection {CONNECTION_ID}"
_HOST_EXAMPLES = " or ".join(f"https://{h}" for h in DOCUMENTED_HOSTS)


def _check_base_url(value: Any) -> str:
    """The base URL without a trailing slash. Either documented host works (https only: the token is a header);
    any other http(s) host is taken as a local server or a proxy. Errors name the connection's host field."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"AppMetrica base_url is missing: set {_HOST_FIELD} (e.g. {_HOST_EXAMPLES})")
    url = value.strip().rstrip("/")
    if "@" in url.split("://", 1)[-1].split("/", 1)[0]:
        raise ConfigError(
            f"AppMetrica base_url must not contain credentials ({_HOST_FIELD}); put the token in the password"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise ConfigError(f"AppMetrica base_url {url!r} is not a valid URL (set {_HOST_FIELD})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"AppMetrica base_url must start with http:// or https:// and name a host, got {url!r} "
            f"(set {_HOST_FIELD}, e.g. {_HOST_EXAMPLES})"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"AppMetrica base_url must not have a query or fragment, got {url!r} (set {_HOST_FIELD})")
    host = parts.hostname.lower()
    if host.endswith(("appmetrica.yandex.ru", "appmetrica.yandex.com")) and host not in DOCUMENTED_HOSTS:
        raise ConfigError(f"AppMetrica base_url {url!r} is not a Logs API host: set {_HOST_FIELD} to {_HOST_EXAMPLES}")
    if host in DOCUMENTED_HOSTS and (parts.scheme != "https" or parts.path not in ("", "/")):
        raise ConfigError(
            f"AppMetrica base_url {url!r}: the Logs API is served at https://{host} with no path; "
            f"set {_HOST_FIELD} to https://{host}"
        )
    return url


def _check_profile_attributes(value: Any) -> tuple[str, ...]:
    """The configured custom profile attribute names as a tuple; errors name the connection and the bad entry."""
    where = f"connection {CONNECTION_ID}: extra.profile_attributes"
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ConfigError(f'{where} must be a list of attribute names (e.g. ["plan", "level"]), got {value!r}')
    documented = resource_doc("profiles_v2")
    seen: set[str] = set()
    for i, name in enumerate(value):
        entry = f"{where}[{i}]"
        if not isinstance(name, str) or not is_custom_attribute_name(name):
            raise ConfigError(
                f"{entry} = {name!r} is not a plain attribute name (letters, digits and _, not starting with a digit)"
            )
        if documented.is_documented(name):
            raise ConfigError(
                f"{entry} = {name!r} is a documented profiles_v2 field, not a custom attribute; remove it "
                "(the documented fields the project needs are requested already)"
            )
        if name in RESERVED_ATTRIBUTE_NAMES:
            raise ConfigError(
                f"{entry} = {name!r} is a column name silver adds to every profile row "
                f"({', '.join(sorted(RESERVED_ATTRIBUTE_NAMES))}); such an attribute cannot be exported"
            )
        if name in seen:
            raise ConfigError(f"{entry} = {name!r} is listed twice")
        seen.add(name)
    return tuple(value)
