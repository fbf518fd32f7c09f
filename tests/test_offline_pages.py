"""Offline-clean (issue 13, item 7): no page, schema viewer or asset of either port loads anything from elsewhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from agentdash.testing import ServerProcess
from agentdash.ui.layout import ADMIN_NAV, ALERTS_NAV, NAV

pytestmark = pytest.mark.slow

# Every viewer path Litestar serves by default, on both apps: each must answer our own page, not a CDN's viewer.
VIEWERS = ("", "/swagger", "/redoc", "/elements", "/rapidoc", "/scalar")
DASHBOARD_PAGES = ("/signin", *(path for path, _, _ in NAV + ADMIN_NAV + ALERTS_NAV), "/people/u1", "/teams/t1")
LINK = re.compile(r"""\b(?:src|href|action)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
ABSOLUTE = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s"'<>)]*""")
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)|@import\s+['"]([^'"]+)""", re.I)


def links(html: str) -> list[str]:
    return [next(g for g in m.groups() if g is not None) for m in LINK.finditer(html)]


def off_server(base: str, found: list[str]) -> list[str]:
    """The links that leave `base`: another scheme and host, or a protocol-relative //host."""
    home = urlsplit(base).netloc
    return [url for url in found if urlsplit(urljoin(base + "/", url)).netloc not in ("", home)
            and not url.startswith(("data:", "blob:", "#", "javascript:"))]  # fmt: skip


def fetched(client: httpx.Client, url: str) -> httpx.Response:
    answer = client.get(url)
    assert answer.status_code == 200, (url, answer.status_code, answer.text[:300])
    return answer


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    """One server for the module (per xdist worker): its tests only read pages."""
    served = ServerProcess(tmp_path_factory.mktemp("offline") / "data").start()
    try:
        yield served
    finally:
        served.stop()


def test_every_page_and_schema_viewer_links_only_to_its_own_server(server: ServerProcess):
    with httpx.Client(timeout=30, trust_env=False, follow_redirects=True) as client:
        fetched(client, f"{server.url}/login?token={server.token('acme')}")  # the session cookie, for every page
        pages = [f"{server.ingest_url}/schema{v}" for v in VIEWERS] + [f"{server.url}/api/schema{v}" for v in VIEWERS]
        pages += [f"{server.url}{path}" for path in DASHBOARD_PAGES]
        assets: set[str] = set()
        for url in pages:
            answer = fetched(client, url)
            assert answer.headers["content-type"].startswith("text/html"), url
            found = links(answer.text)
            assert off_server(url, found) == [], url
            # Nor in inline scripts and styles (an import map, a font's url()): no absolute URL to another host.
            assert off_server(url, ABSOLUTE.findall(answer.text)) == [], url
            assets |= {urljoin(url, link) for link in found if urlsplit(link).path.endswith((".css", ".js"))}
        assert any(urlsplit(a).path.endswith(".js") for a in assets), assets  # the dashboard's were found
        for asset in sorted(assets):  # styles must not pull fonts or other styles from elsewhere either
            if urlsplit(asset).path.endswith(".css"):
                css = fetched(client, asset).text
                imported = [next(g for g in m.groups() if g) for m in CSS_URL.finditer(css)]
                assert off_server(asset.rsplit("/", 1)[0], imported) == [], asset
            else:
                fetched(client, asset)


def test_the_schema_page_lists_the_operations_and_links_the_json(server: ServerProcess):
    page = httpx.get(f"{server.ingest_url}/schema", timeout=30).text
    assert "/v1/events" in page and "/metrics" in page and "/readyz" in page
    assert "href='/schema/openapi.json'" in page
    assert "/api/v1/orgs/{org_id}/metrics" in httpx.get(f"{server.url}/api/schema", timeout=30).text
    assert httpx.get(f"{server.url}/api/schema/openapi.yaml", timeout=30).status_code == 200
