"""The docs web app the Airflow plugin mounts: dbt docs and GX Data Docs from ``$LAKEHOUSE_DATA_DIR/docs``, and
the run report pages from ``$LAKEHOUSE_DATA_DIR/reports/appmetrica_lakehouse`` (``report/latest``: the newest).

``plugins/lakehouse_docs_plugin.py`` mounts :func:`create_app` at :data:`URL_PREFIX` inside the
Airflow API server (with Airflow's own authentication as a dependency) and links both sites in
the UI navigation. The sites are read from disk on every request, so a DAG run that regenerates
them is visible at once.

Only files inside a site's folder are served: a path with an empty, ``.`` or ``..`` segment, a
hidden segment (the staging folders of :func:`lakehouse.fsutil.staged_dir`), a backslash or a
NUL byte is refused, symlinks pointing outside the folder are refused after resolving, the dbt
site serves only its four documented files, and only static web file types are served at all.

Importing this module is cheap (FastAPI is imported by :func:`create_app`): Airflow imports the
plugin in every task process too, where the app is never used.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakehouse.docs import SITES, DocsSite
from lakehouse.settings import Layout

if TYPE_CHECKING:
    from fastapi import FastAPI

URL_PREFIX = "/lakehouse-docs"
SERVED_SUFFIXES = frozenset(
    {".html", ".json", ".css", ".js", ".map", ".png", ".svg", ".ico", ".gif", ".jpg", ".jpeg", ".webp",
     ".woff", ".woff2", ".ttf", ".eot", ".txt"}
)  # fmt: skip
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
}


class DocsPathError(Exception):
    """A requested docs path is refused or absent; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def resolve_docs_file(site: DocsSite, root: Path, relative: str) -> Path:
    """The file of ``site`` under ``root`` that ``relative`` (a URL path, already percent-decoded) names.

    Raises :class:`DocsPathError` (400 for a malformed or escaping path, 404 for anything not
    served or not there).
    """
    relative = relative or site.index
    if relative.endswith("/"):  # a folder of the site: its index page
        relative += site.index
    if "\\" in relative or "\x00" in relative or relative.startswith("/"):
        raise DocsPathError(400, f"refused docs path {relative!r}")
    parts = relative.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise DocsPathError(400, f"refused docs path {relative!r}")
    if site.allowed_files is not None and relative not in site.allowed_files:
        raise DocsPathError(404, f"{relative!r} is not part of the {site.key} docs")
    if Path(parts[-1]).suffix.lower() not in SERVED_SUFFIXES:
        raise DocsPathError(404, f"{relative!r} is not a served file type")
    if not root.is_dir():
        raise DocsPathError(404, f"the {site.title} are not generated yet: {site.missing_hint}")
    base = root.resolve()
    candidate = base.joinpath(*parts).resolve()
    if not candidate.is_relative_to(base):
        raise DocsPathError(400, f"refused docs path {relative!r}: it leaves the docs folder")
    if not candidate.is_file():
        raise DocsPathError(404, f"{relative!r} not found in the {site.key} docs")
    return candidate


def _site_status(site: DocsSite, layout: Layout) -> dict[str, Any]:
    index = site.folder(layout) / site.index
    if not index.is_file():
        return {"ready": False, "note": f"not generated yet: {site.missing_hint}"}
    stamp = dt.datetime.fromtimestamp(index.stat().st_mtime, dt.UTC).isoformat(timespec="seconds")
    return {"ready": True, "note": f"generated {stamp}"}


def landing_page(layout: Layout) -> str:
    """A small HTML page linking both sites (relative links, so it works under any prefix)."""
    items = []
    for site in SITES.values():
        status = _site_status(site, layout)
        title = html.escape(site.title)
        link = f'<a href="{site.key}/">{title}</a>' if status["ready"] else title
        items.append(f"<li>{link} <small>({html.escape(status['note'])})</small></li>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Lakehouse docs</title></head>"
        "<body style='font-family: sans-serif; margin: 2em'><h1>Lakehouse docs</h1>"
        f"<ul>{''.join(items)}</ul><p>Data folder: <code>{html.escape(str(layout.root))}</code></p></body></html>"
    )


def create_app(
    layout_factory: Callable[[], Layout] = Layout.from_env,
    dependencies: Sequence[Any] = (),
) -> FastAPI:
    """The FastAPI app serving the docs sites of ``layout_factory()`` (called per request).

    ``dependencies`` (FastAPI ``Depends``) guard every route; the plugin passes Airflow's
    "authenticated user" check.
    """
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

    app = FastAPI(
        title="Lakehouse docs",
        description="dbt docs and Great Expectations Data Docs of the AppMetrica lakehouse",
        dependencies=list(dependencies),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    def site_of(key: str) -> DocsSite:
        if key not in SITES:
            raise HTTPException(404, f"no docs site {key!r}; known: {', '.join(SITES)}")
        return SITES[key]

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(landing_page(layout_factory()), headers=HEADERS)

    @app.get("/report/latest")
    def latest_report() -> RedirectResponse:
        from lakehouse.run_report import latest_page

        newest = latest_page(SITES["report"].folder(layout_factory()))
        if newest is None:
            raise HTTPException(404, f"no run report yet: {SITES['report'].missing_hint}")
        return RedirectResponse(newest, status_code=307, headers=HEADERS)

    @app.get("/{key}")
    def site_root(key: str) -> RedirectResponse:
        site_of(key)
        return RedirectResponse(f"{key}/", status_code=307)

    @app.get("/{key}/{path:path}")
    def site_file(key: str, path: str) -> FileResponse:
        site = site_of(key)
        try:
            file = resolve_docs_file(site, site.folder(layout_factory()), path)
        except DocsPathError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return FileResponse(file, headers=HEADERS)

    return app


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class LazyASGIApp:
    """An ASGI app built by ``factory`` on its first request (so importing the plugin costs nothing)."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._app: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            self._app = self._factory()
        await self._app(scope, receive, send)
