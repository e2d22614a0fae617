"""GX Data Docs pages point at the copies of their CDN assets kept in the repo, not at the CDNs."""

from __future__ import annotations

from transforms.quality.local_assets import CDN_FILES, VENDOR, localize, localize_page

PAGE = """<html><head>
<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>
<script src="https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js" integrity="sha384-x" crossorigin="anonymous"></script>
<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>
<script src="https://example.org/not-kept.js"></script>
</head><body>
<img src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=20261101T000000Z">
<a href="https://greatexpectations.io">a link stays a link</a>
</body></html>"""  # noqa: E501


def test_every_cdn_address_has_its_file():
    for url, rel in CDN_FILES.items():
        assert (VENDOR / rel).is_file() and (VENDOR / rel).stat().st_size > 100, url


def test_a_page_loads_the_local_copies(tmp_path):
    unknown: set[str] = set()
    html = localize_page(PAGE, "../../static", unknown)
    assert 'href="../../static/vendor/bootstrap/bootstrap.min.css"' in html
    assert '<script src="../../static/vendor/popper/popper.min.js"></script>' in html, "SRI of the CDN dropped"
    assert 'src="../../static/vendor/vega/vega.min.js"' in html
    assert 'src="../../static/images/logo-long.png"' in html
    assert 'href="https://greatexpectations.io"' in html
    assert unknown == {"https://example.org/not-kept.js"}


def test_localize_copies_the_assets_into_the_site(tmp_path):
    (tmp_path / "validations" / "t").mkdir(parents=True)
    (tmp_path / "validations" / "t" / "p.html").write_text(PAGE)
    (tmp_path / "index.html").write_text(PAGE)
    assert localize(tmp_path) == {"https://example.org/not-kept.js"}
    assert 'href="../../static/vendor/bootstrap/bootstrap.min.css"' in (tmp_path / "validations/t/p.html").read_text()
    assert 'href="static/vendor/bootstrap/bootstrap.min.css"' in (tmp_path / "index.html").read_text()
    assert (tmp_path / "static/vendor/fontawesome/webfonts/fa-solid-900.woff2").is_file()
