"""/docs (Swagger UI) and /redoc work without internet access: every script, stylesheet and
image they load is served by the intake itself."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

# What a page loads: <script src>, <link href>, and the `url:` / `*_url` values of its setup.
ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|\burl\s*:\s*["']([^"']+)["']""")
KINDS = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "json"}


@pytest.mark.parametrize(("page", "needs"), [("/docs", {".js", ".css"}), ("/redoc", {".js"})])
def test_doc_pages_load_only_what_the_intake_serves(api: str, page: str, needs: set[str]) -> None:
    html = httpx.get(f"{api}{page}", timeout=5)
    assert html.status_code == 200
    urls = [a or b for a, b in ASSET.findall(html.text)]
    assert urls, html.text
    foreign = [u for u in urls if urlsplit(urljoin(api + page, u)).netloc != urlsplit(api).netloc]
    assert foreign == [], f"{page} loads from elsewhere: {foreign}"
    seen = set()
    for url in urls:
        suffix = "." + url.rsplit(".", 1)[-1]
        if suffix not in KINDS:
            continue
        seen.add(suffix)
        resp = httpx.get(urljoin(api + page, url), timeout=10)
        assert resp.status_code == 200, url
        assert KINDS[suffix] in resp.headers["content-type"], (url, resp.headers)
        assert len(resp.content) > 100, url
    assert needs <= seen, f"{page} loads no {needs - seen}: {urls}"
