"""Great Expectations Data Docs without internet: the pages' CDN scripts, styles and logos served from the site.

GX writes pages that load Bootstrap, jQuery, Font Awesome, bootstrap-table, Vega and its logos from public CDNs;
offline they render unstyled. :func:`localize` copies the same files (``vendor/``, from their npm packages, see
``vendor/README.md``) into ``<site>/static/vendor/`` and rewrites every page to load them by relative path.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

VENDOR = Path(__file__).with_name("vendor")

# Each CDN address the pages use, and the file under vendor/ with the same content.
CDN_FILES = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper/popper.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome/css/all.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker/bootstrap-datepicker.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table/bootstrap-table-filter-control.css",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "bootstrap-dark/bootstrap-prefers-dark.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega/vega-embed.min.js",
}  # fmt: skip
# GX's logos on its own S3 bucket; the site carries its logo in static/images/.
_LOGO = re.compile(r"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/[A-Za-z0-9_.-]+\.png[^\"']*")
_TAG = re.compile(r"<(?:script|link|img)\b[^>]*>", re.IGNORECASE)
_URL = re.compile(r"""(?P<attr>\b(?:src|href))=(?P<q>["'])(?P<url>https?://[^"']+)(?P=q)""")
# Subresource-integrity hashes name the CDN's response; a local copy is checked by being in the repo.
_SRI = re.compile(r"""\s+(?:integrity|crossorigin)=(["'])[^"']*\1""")


def localize_page(html: str, static: str, unknown: set[str] | None = None) -> str:
    """``html`` with every script, stylesheet and image address that points at a CDN replaced by its copy under
    ``static`` (the site's static/ folder relative to the page); addresses with no copy are left and added to
    ``unknown``."""

    def local(match: re.Match[str]) -> str:
        url = match.group("url")
        if url in CDN_FILES:
            path = f"{static}/vendor/{CDN_FILES[url]}"
        elif _LOGO.fullmatch(url):
            path = f"{static}/images/logo-long.png"
        else:
            if unknown is not None:
                unknown.add(url)
            return match.group(0)
        return f"{match.group('attr')}={match.group('q')}{path}{match.group('q')}"

    def tag(match: re.Match[str]) -> str:
        old = match.group(0)
        new = _URL.sub(local, old)
        return _SRI.sub("", new) if new != old else old

    return _TAG.sub(tag, html)


def localize(site: Path) -> set[str]:
    """Copy the assets into ``site``/static/vendor/ and point every page of the site at them.

    Returns the CDN addresses some page still loads because no copy of them is kept (logged as a warning: the docs
    then need internet for those; the gate's result does not depend on them).
    """
    static = site / "static"
    shutil.copytree(VENDOR, static / "vendor", dirs_exist_ok=True, ignore=shutil.ignore_patterns("README.md"))
    unknown: set[str] = set()
    for page in sorted(site.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        new = localize_page(html, Path(os.path.relpath(static, page.parent)).as_posix(), unknown)
        if new != html:
            tmp = page.with_name(f".tmp-{page.name}")
            tmp.write_text(new, encoding="utf-8")
            os.replace(tmp, page)
    if unknown:
        log.warning("Data Docs in %s load assets with no local copy (they need internet): %s", site, sorted(unknown))
    return unknown
