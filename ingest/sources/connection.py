"""Where a declared API source finds its host and its secret: an Airflow connection.

The connection named by the declaration's ``connection`` (any type; ``http`` is natural) gives
``host`` = the base URL with its scheme (``https://api.example.com``; a bare host plus
``schema``/``port`` is accepted too), ``password`` = the secret (token or API key) and, for
``basic`` auth, ``login``. It is read with ``BaseHook.get_connection``, so it may come from
``AIRFLOW_CONN_<ID>`` (JSON or URI), a secrets backend or the metadata DB, inside a task or from
the CLI. The secret is never part of ``repr``, a log line, an error or a manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ingest.sources.config import SourceConfigError, SourceSpec
from lakehouse.settings import check_connection_env


@dataclass(frozen=True)
class Credentials:
    """The resolved base URL and secret of one source (``secret``/``login`` hidden from repr)."""

    base_url: str
    secret: str | None = field(default=None, repr=False)
    login: str | None = field(default=None, repr=False)


def _url_from_host(host: str, schema: str | None, port: int | str | None) -> str:
    url = host.strip().rstrip("/")
    if "://" not in url:
        url = f"{schema or 'https'}://{url}"
    parts = urlsplit(url)
    if port not in (None, "") and parts.port is None and parts.hostname:
        url = f"{parts.scheme}://{parts.netloc}:{int(port)}{parts.path}"
    return url


def resolve_credentials(
    source: SourceSpec,
    *,
    host: str | None,
    password: str | None,
    login: str | None = None,
    schema: str | None = None,
    port: int | str | None = None,
) -> Credentials:
    """Combine the declaration with the fields of its connection (the connection's host wins)."""
    where = f"connection {source.connection!r} of source {source.name!r}"
    base_url = _url_from_host(host, schema, port) if host and host.strip() else source.base_url
    if not base_url:
        raise SourceConfigError(f"{where}: host (the API base URL with scheme) is missing and no base_url is declared")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceConfigError(f"{where}: host must be an http(s):// URL with a host name")
    if parts.username or parts.password:
        raise SourceConfigError(f"{where}: host must not carry credentials; put the secret in the password")
    auth = source.auth.type
    if auth != "none" and (password is None or not str(password).strip()):
        raise SourceConfigError(f"{where}: password (the secret for {auth} auth) is missing")
    if auth == "basic" and not login:
        raise SourceConfigError(f"{where}: login is missing (basic auth needs login and password)")
    if password is not None and any(ch in str(password) for ch in "\r\n"):
        raise SourceConfigError(f"{where}: password contains a line break")
    return Credentials(base_url=base_url.rstrip("/"), secret=str(password) if password else None, login=login)


def credentials_from_airflow(source: SourceSpec) -> Credentials:
    """Read the source's connection through Airflow (env ``AIRFLOW_CONN_*``, secrets backend or DB).

    A source without a declared connection uses its ``base_url`` and no secret.
    """
    if source.connection is None:
        return resolve_credentials(source, host=None, password=None)
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    check_connection_env(source.connection)
    try:
        conn = BaseHook.get_connection(source.connection)
    except AirflowNotFoundException:
        raise SourceConfigError(
            f"source {source.name!r}: the Airflow connection {source.connection!r} is not defined "
            f"(set AIRFLOW_CONN_{source.connection.upper()} or add it in the UI)"
        ) from None
    return resolve_credentials(
        source, host=conn.host, password=conn.password, login=conn.login, schema=conn.schema, port=conn.port
    )
