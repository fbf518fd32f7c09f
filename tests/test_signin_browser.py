"""Signing in and out in a real browser: the development issuer, the session cookie, expiry, logout, headers."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from browser import browser_page, chromium_path, screenshot

from agentdash.testing import ServerProcess

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="Debian chromium is not installed (.ci/run installs it)"
)


def _query(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def _message(page) -> str:
    return page.locator("[data-testid=signin-message]").inner_text()


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Iterator[ServerProcess]:
    """One server (per xdist worker) for the tests that fail no sign-in, so that the per-address throttle they share
    counts nothing, and leave it running."""
    server = ServerProcess(tmp_path_factory.mktemp("signin") / "data").start()
    try:
        yield server
    finally:
        server.stop()


def test_the_development_issuer_signs_in_and_returns_to_the_page_asked_for(server):
    with browser_page() as page:
        page.goto(f"{server.url}/cost?days=7")
        page.wait_for_selector("[data-testid=dev-issuer]")
        assert urlparse(page.url).path == "/signin"
        assert _query(page) == {"reason": "required", "next": "/cost?days=7"}
        assert "Sign in" in _message(page)
        screenshot(page, "signin-dev")
        page.locator("[data-testid=dev-org]").fill("acme")
        page.locator("[data-testid=dev-role]").click()
        page.get_by_role("option", name="manager").click()
        page.locator("[data-testid=dev-teams]").fill("ops, web")
        page.locator("[data-testid=dev-user]").fill("boss")
        page.locator("[data-testid=dev-signin]").click()
        page.wait_for_url("**/cost?days=7")
        page.wait_for_selector("[data-testid=role]")
        assert page.locator("[data-testid=role]").inner_text() == "manager · boss"
        assert page.locator("[data-testid=org]").inner_text() == "acme"

        cookie = next(c for c in page.context.cookies() if c["name"] == "agentdash_token")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert 3000 < cookie["expires"] - _now(page) <= 3600  # the dev issuer's tokens are short-lived
        assert page.evaluate("document.cookie").find("agentdash_token") == -1  # scripts cannot read it

        page.locator("[data-testid=logout]").click()
        page.wait_for_url("**/signin?**")
        assert _query(page)["reason"] == "signed-out" and "signed out" in _message(page)
        assert not [c for c in page.context.cookies() if c["name"] == "agentdash_token"]
        page.goto(f"{server.url}/")
        page.wait_for_url("**/signin?**")
    server.stop()  # log lines are written after the answers: read the log once the server is done
    assert "eyJ" not in server.log()  # no token (a JWT starts so) is ever written to the server's log


def _now(page) -> float:
    return page.evaluate("Date.now() / 1000")


def test_an_expired_session_sends_the_person_to_sign_in_again_with_a_clear_message(server):
    expired = server.cli("token", "--org", "acme", "--role", "org_admin", "--ttl", "-120")
    with browser_page() as page:
        page.context.add_cookies([{"name": "agentdash_token", "value": expired, "url": server.url}])
        page.goto(f"{server.url}/reliability?days=30")
        page.wait_for_selector("[data-testid=signin-message]")
        assert _query(page) == {"reason": "expired", "next": "/reliability?days=30"}
        assert "expired" in _message(page)
        # A link carrying an expired token is refused the same way, and sets no cookie.
        page.goto(f"{server.url}/login?token={expired}")
        page.wait_for_selector("[data-testid=signin-message]")
        assert "expired" in _message(page)
        assert not [c for c in page.context.cookies() if c["name"] == "agentdash_token"]


def test_bad_tokens_set_no_cookie_and_repeated_failures_are_throttled(server):
    with httpx.Client(base_url=server.url, follow_redirects=False, trust_env=False) as client:
        forged = server.token("acme")[:-3] + "AAA"
        answer = client.post("/login", data={"token": forged, "next": "/"})
        assert answer.status_code == 303 and "reason=invalid" in answer.headers["location"]
        assert "agentdash_token" not in answer.headers.get("set-cookie", "")
        # Only paths on this site are followed after sign-in.
        good = client.post("/login", data={"token": server.token("acme"), "next": "//evil.example/x"})
        assert good.status_code == 303 and good.headers["location"] == "/"
        for _ in range(12):
            answer = client.post("/login", data={"token": "nonsense"})
        assert "reason=throttled" in answer.headers["location"]
        # A good token passes the throttle: guessers behind the same address cannot lock its owner out.
        passed = client.post("/login", data={"token": server.token("acme")})
        assert passed.headers["location"] == "/" and "agentdash_token=" in passed.headers["set-cookie"]
        assert "reason=throttled" in client.post("/login", data={"token": "nonsense"}).headers["location"]
    server.stop()
    assert forged not in server.log() and "eyJ" not in server.log()  # refused tokens are not logged either


def test_without_dev_mode_there_is_no_issuer_only_the_providers_tokens(server_factory, tmp_path):
    from agentdash.testing.server_process import ServerProcess

    secret = secrets.token_urlsafe(40)
    server = ServerProcess(tmp_path / "idp-data", dev=False).start("--jwt-secret", secret)
    try:
        with httpx.Client(base_url=server.url, follow_redirects=False, trust_env=False) as client:
            issued = client.post("/signin/dev", data={"org": "acme", "role": "org_admin", "user": "me"})
            assert issued.status_code == 303 and "agentdash_token" not in issued.headers.get("set-cookie", "")
            # Outside dev mode a token in the URL is not taken: it would sit in proxy logs and browser history.
            good = server.cli("token", "--org", "acme", "--role", "org_admin", "--jwt-secret", secret)
            link = client.get("/login", params={"token": good})
            assert link.status_code == 303 and "reason=token-link" in link.headers["location"]
            assert "agentdash_token" not in link.headers.get("set-cookie", "")
        token = server.cli("token", "--org", "acme", "--role", "org_admin", "--user", "pat", "--jwt-secret", secret)
        with browser_page() as page:
            page.goto(f"{server.url}/signin")
            page.wait_for_selector("[data-testid=token-field]")
            assert page.locator("[data-testid=dev-issuer]").count() == 0
            page.locator("[data-testid=token-field]").fill(token)
            page.locator("[data-testid=token-signin]").click()
            page.wait_for_selector("[data-testid=role]")
            assert page.locator("[data-testid=role]").inner_text() == "org_admin · pat"
            assert token not in page.url
    finally:
        server.stop()


def test_the_client_port_sends_security_headers(shared):
    for path in ("/signin", "/api/v1/orgs/acme/metrics"):
        headers = httpx.get(f"{shared.url}{path}", trust_env=False).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"


def test_the_client_port_refuses_big_bodies_declared_or_streamed(server):
    big = b"token=" + b"x" * 70_000
    declared = httpx.post(f"{server.url}/login", content=big, trust_env=False,
                          headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert declared.status_code == 413 and "request body over" in declared.json()["error"]

    def chunks():
        for _ in range(70):
            yield b"x" * 1024

    streamed = httpx.post(f"{server.url}/login", content=chunks(), trust_env=False,
                          headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert streamed.status_code == 413
    small = httpx.post(f"{server.url}/login", data={"token": "x"}, trust_env=False, follow_redirects=False)
    assert small.status_code == 303  # an ordinary sign-in form still goes through


CROSS_SITE = [{"origin": "http://evil.example"}, {"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"},
              {"origin": "null"}]  # fmt: skip


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_another_site_can_neither_sign_you_in_nor_out(shared, headers):
    """Login CSRF (switching the victim to the attacker's account) and logout CSRF are refused."""
    with httpx.Client(base_url=shared.url, follow_redirects=False, trust_env=False) as client:
        forced = client.post("/login", data={"token": shared.token("acme", user="attacker")}, headers=headers)
        assert forced.status_code == 303 and "reason=cross-site" in forced.headers["location"]
        assert "agentdash_token" not in forced.headers.get("set-cookie", "")
        mine = client.post("/login", data={"token": shared.token("acme")},
                           headers={"origin": shared.url, "sec-fetch-site": "same-origin"})  # fmt: skip
        assert mine.headers["location"] == "/" and "agentdash_token=" in mine.headers["set-cookie"]
        assert "agentdash_token" not in client.post("/logout", headers=headers).headers.get("set-cookie", "")
        embedded = client.get("/logout")  # an <img src=/logout> on any page
        assert embedded.status_code == 405 and "agentdash_token" not in embedded.headers.get("set-cookie", "")
        out = client.post("/logout", headers={"sec-fetch-site": "same-origin"})
        assert out.status_code == 303 and 'agentdash_token=""' in out.headers["set-cookie"]


def test_the_dev_issuer_answers_only_same_origin_posts_under_a_loopback_name(shared):
    """Against DNS rebinding: a page under another name that resolves to 127.0.0.1 gets nothing."""
    port = shared.port
    form = {"org": "acme", "role": "org_admin", "user": "rebound"}
    with httpx.Client(base_url=shared.url, follow_redirects=False, trust_env=False) as client:
        for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.evil.example:{port}"):
            for method, path in (("GET", "/signin"), ("POST", "/signin/dev"), ("GET", "/api/v1/orgs/acme/metrics")):
                answer = client.request(method, path, data=form if method == "POST" else None, headers={"host": host})
                assert answer.status_code == 403, (host, path)
                assert "agentdash_token" not in answer.headers.get("set-cookie", "")
        assert client.get("/signin/dev", params=form).status_code == 405  # a plain GET issues nothing
        refused = client.post("/signin/dev", data=form, headers={"origin": "http://evil.example"})
        assert "reason=cross-site" in refused.headers["location"]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            issued = client.post("/signin/dev", data=form, headers={"host": host, "sec-fetch-site": "same-origin"})
            assert "agentdash_token=" in issued.headers["set-cookie"], host


def test_the_csp_lets_the_page_connect_only_to_its_own_origin(shared):
    policy = httpx.get(f"{shared.url}/signin", trust_env=False).headers["content-security-policy"]
    connect = next(d for d in policy.split("; ") if d.startswith("connect-src"))
    assert connect == "connect-src 'self'"  # not `ws: wss:`, which is any host


@pytest.mark.parametrize("query", ["from=0001-01-01&to=0001-01-02", "to=0001-01-10", "from=9999-12-01&to=9999-12-31"])
def test_extreme_dates_are_a_400_in_the_api_and_a_default_range_on_the_page(shared, query):
    token = shared.token("acme")
    answer = httpx.get(f"{shared.url}/api/v1/orgs/acme/metrics?{query}", headers={"Authorization": f"Bearer {token}"},
                       trust_env=False)  # fmt: skip
    assert answer.status_code == 400 and "must lie between" in answer.json()["error"], answer.text
    with httpx.Client(base_url=shared.url, cookies={"agentdash_token": token}, trust_env=False) as client:
        page = client.get(f"/?{query}")
    assert page.status_code == 200 and "Traceback" not in page.text and "OverflowError" not in page.text
