"""Signing in with the identity provider (OIDC code flow, PKCE, state, nonce): in process, then a real server.

Every forgery starts from the good path and changes one thing, so each test fails if its check is missing.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from browser import browser_page, chromium_path, screenshot
from idp import CLIENT_ID, USER, FakeProvider, SignInKnobs, rsa_key

from agentdash.auth import IdentityConfigError, verifier_for
from agentdash.auth.oidc_discovery import Discovery, DiscoveryFailed, ProviderMisconfigured
from agentdash.auth.oidc_login import CodeFlow, LoginFailed, PendingLogin, PendingLogins, code_flow_for, pkce_challenge
from agentdash.config import Settings
from agentdash.testing import ServerProcess, free_port

PROVIDER_NAME = "Acme SSO"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def approve(authorization_url: str) -> str:
    """The person approves at the provider: the URL it sends the browser back to."""
    answer = httpx.get(authorization_url, follow_redirects=False, trust_env=False)
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


# -- the protocol in process: no server, a fake clock where time matters


@pytest.fixture
def idp():
    with FakeProvider(rsa_key("rsa-1")) as provider:
        yield provider


def flow_for(idp: FakeProvider, **settings) -> CodeFlow:
    config = Settings(jwks_url=idp.url, jwt_issuer=idp.issuer, oidc_client_id=CLIENT_ID, **settings)
    return code_flow_for(config, verifier_for(config))


def test_the_pkce_challenge_is_rfc_7636_s256():
    assert (
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_a_public_client_signs_in_with_pkce_and_no_secret(idp):
    flow = flow_for(idp)
    started = flow.start("/teams", "http://dash.test:8080/", None)
    asked = query_of(started.authorization_url)
    assert asked["redirect_uri"] == "http://dash.test:8080/auth/callback"
    assert asked["scope"] == "openid profile email" and asked["code_challenge_method"] == "S256"
    assert started.browser not in started.authorization_url  # the flow cookie's value never travels to the provider
    signed_in = flow.finish(query_of(approve(started.authorization_url)), started.browser)
    assert (signed_in.identity.sub, signed_in.identity.org_id, signed_in.next_path) == ("ann", "acme", "/teams")


def test_two_sign_ins_under_way_in_one_browser_both_finish(idp):
    flow = flow_for(idp)
    first = flow.start("/cost", "http://dash.test/", None)
    second = flow.start("/teams", "http://dash.test/", first.browser)  # another tab: the same flow cookie
    assert second.browser == first.browser
    answers = [query_of(approve(started.authorization_url)) for started in (first, second)]
    assert [flow.finish(answer, first.browser).next_path for answer in reversed(answers)] == ["/teams", "/cost"]


def test_an_id_token_must_be_signed_by_the_provider_not_with_a_shared_secret(idp):
    secret = "s" * 40
    config = Settings(jwks_url=idp.url, jwt_issuer=idp.issuer, oidc_client_id=CLIENT_ID, jwt_secret=secret)
    flow = code_flow_for(config, verifier_for(config))
    started = flow.start("/", "http://dash.test/", None)
    nonce = query_of(started.authorization_url)["nonce"]
    forged = jwt.encode(
        {**USER, "iss": idp.issuer, "aud": CLIENT_ID, "nonce": nonce, "exp": int(time.time()) + 600}, secret
    )
    flow._redeem = lambda code, login: forged  # a token endpoint that answers with an HS256 token
    with pytest.raises(LoginFailed) as refused:
        flow.finish(query_of(approve(started.authorization_url)), started.browser)
    assert refused.value.reason == "id-token" and "algorithm" in refused.value.detail


@pytest.mark.parametrize("methods", [None, ["client_secret_post"]])
def test_a_confidential_client_authenticates_with_its_secret(methods):
    with FakeProvider(rsa_key("rsa-1"), client_secret="s3cret:with/odd chars") as idp:
        idp.knobs.discovery_changes = {"token_endpoint_auth_methods_supported": methods}  # None: basic, the default
        flow = flow_for(idp, oidc_client_secret="s3cret:with/odd chars")
        started = flow.start("/", "http://dash.test/", None)
        assert flow.finish(query_of(approve(started.authorization_url)), started.browser).identity.sub == "ann"
        wrong = flow_for(idp, oidc_client_secret="not-the-secret")
        started = wrong.start("/", "http://dash.test/", None)
        with pytest.raises(LoginFailed) as refused:
            wrong.finish(query_of(approve(started.authorization_url)), started.browser)
        assert refused.value.reason == "token-refused" and "invalid_client" in refused.value.detail


def test_a_configured_redirect_url_and_scope_are_what_the_provider_sees(idp):
    flow = flow_for(idp, oidc_redirect_url="https://dash.example.com/auth/callback", oidc_scope="groups email")
    asked = query_of(flow.start("/", "http://10.0.0.5:3000/", None).authorization_url)
    assert asked["redirect_uri"] == "https://dash.example.com/auth/callback"  # not the internal address
    assert asked["scope"] == "openid groups email"  # openid is never left out: no openid, no ID token


def test_a_sign_in_older_than_ten_minutes_is_refused(idp):
    flow = flow_for(idp)
    flow.pending = PendingLogins(clock=(clock := Clock()))
    started = flow.start("/cost", "http://dash.test/", None)
    callback = query_of(approve(started.authorization_url))
    clock.now += 601
    with pytest.raises(LoginFailed) as refused:
        flow.finish(callback, started.browser)
    assert refused.value.reason == "flow-expired" and refused.value.next_path == "/cost"
    assert idp.token_requests == 0  # refused before the code was redeemed


def test_pending_sign_ins_are_used_once_and_bounded():
    clock = Clock()
    pending = PendingLogins(ttl_s=600, limit=3, clock=clock)
    login = PendingLogin("b" * 43, "nonce", "verifier", "http://dash.test/auth/callback", "/", clock.now)
    pending.add("s1", login)
    assert pending.take("s1") == login and pending.take("s1") is None
    for state in ("a", "b", "c", "d"):  # over the limit: the oldest goes
        pending.add(state, login)
    assert pending.take("a") is None and pending.take("d") == login


def test_discovery_is_cached_for_an_hour_and_kept_while_the_provider_is_down(idp):
    clock = Clock()
    discovery = Discovery(idp.issuer, idp.url, httpx.Client(timeout=2, trust_env=False), max_age_s=3600, clock=clock)
    for _ in range(5):
        assert discovery.endpoints().token == f"{idp.issuer}/token"
        clock.now += 60
    assert idp.discovery_fetches == 1
    clock.now += 3600
    assert discovery.endpoints() and idp.discovery_fetches == 2
    discovery.url = f"http://127.0.0.1:{free_port()}/.well-known/openid-configuration"  # the provider goes down
    clock.now += 3600
    assert discovery.endpoints().token == f"{idp.issuer}/token"  # the last good document still serves


def test_a_provider_that_is_down_is_asked_once_per_gap():
    clock, attempts = Clock(), []

    def unreachable(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url)
        raise httpx.ConnectError("connection refused", request=request)

    http = httpx.Client(transport=httpx.MockTransport(unreachable))
    discovery = Discovery(
        "https://idp.example.test", "https://idp.example.test/jwks", http, min_fetch_gap_s=10, clock=clock
    )
    for _ in range(5):
        with pytest.raises(DiscoveryFailed, match="discovery document .* failed: connection refused") as failed:
            discovery.endpoints()
        assert failed.value.reason == "unavailable"
    assert len(attempts) == 1
    clock.now += 10
    with pytest.raises(DiscoveryFailed):
        discovery.endpoints()
    assert len(attempts) == 2


def test_a_discovery_document_for_another_issuer_is_a_misconfiguration(idp):
    idp.knobs.discovery_changes = {"issuer": "https://someone-else.example/"}
    with pytest.raises(ProviderMisconfigured, match="set --jwt-issuer to exactly") as refused:
        flow_for(idp).discovery.endpoints()
    assert refused.value.reason == "misconfigured"


def test_a_jwks_uri_other_than_the_configured_one_is_a_warning(idp, caplog):
    idp.knobs.discovery_changes = {"jwks_uri": "https://elsewhere.example/keys"}
    with caplog.at_level(logging.WARNING, logger="agentdash.auth.oidc_discovery"):
        assert flow_for(idp).discovery.endpoints()  # still usable: tokens are verified with --jwks-url
    assert "https://elsewhere.example/keys" in caplog.text and "--jwks-url" in caplog.text


def test_the_audience_is_the_client_id_unless_set_and_a_different_one_is_refused():
    oidc = {"jwks_url": "http://127.0.0.1:9/jwks", "jwt_issuer": "http://127.0.0.1:9"}
    assert verifier_for(Settings(**oidc, oidc_client_id=CLIENT_ID)).oidc.audience == CLIENT_ID
    with pytest.raises(IdentityConfigError, match="every sign-in would be refused"):
        code_flow_for(Settings(**oidc, oidc_client_id=CLIENT_ID, jwt_audience="api"), None)
    with pytest.raises(IdentityConfigError, match="needs --jwks-url and --jwt-issuer"):
        code_flow_for(Settings(jwt_secret="x" * 40, oidc_client_id=CLIENT_ID), None)
    assert code_flow_for(Settings(**oidc, jwt_audience="api"), None) is None  # no client id: no flow
    assert "s3cret" not in repr(Settings(oidc_client_secret="s3cret"))


# -- a real `agentdash serve` signing people in at the fake provider


@pytest.fixture(scope="module")
def provider():
    with FakeProvider(rsa_key("rsa-1")) as fake:
        yield fake


@pytest.fixture(autouse=True)
def fresh_knobs(request):
    """Each test starts from a provider that signs `USER` in normally."""
    if "provider" in request.fixturenames:
        request.getfixturevalue("provider").knobs = SignInKnobs()


@pytest.fixture(scope="module")
def server(provider, tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("oidc") / "data", dev=False).start(
        "--jwks-url", provider.url, "--jwt-issuer", provider.issuer, "--jwt-audience", CLIENT_ID,
        "--oidc-client-id", CLIENT_ID, "--oidc-provider-name", PROVIDER_NAME,
    )  # fmt: skip
    yield server
    server.stop()
    # Every sign-in of the module, good and forged, is logged by now: no ID token (a JWT starts so) among them.
    assert "eyJ" not in server.log(), "a token reached the server's log"


_addresses = itertools.count(2)


def new_browser(server: ServerProcess) -> httpx.Client:
    """A browser of its own: its cookies, and its own loopback address, so each test has its own failure budget."""
    transport = httpx.HTTPTransport(local_address=f"127.0.0.{next(_addresses)}")
    return httpx.Client(base_url=server.url, follow_redirects=False, trust_env=False, transport=transport, timeout=30)


def start(browser: httpx.Client, next_path: str = "/cost?days=7") -> str:
    answer = browser.get("/auth/start", params={"next": next_path})
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def logged(server: ServerProcess, text: str, timeout: float = 10) -> bool:
    """Whether `text` reaches the server's log: lines arrive a little late (Litestar logs through a queue thread)."""
    deadline = time.monotonic() + timeout
    while text not in server.log():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def refused_with(answer: httpx.Response, browser: httpx.Client) -> str:
    """The reason the callback sent the browser to /signin for, having checked that nobody got signed in."""
    assert answer.status_code == 303 and urlsplit(answer.headers["location"]).path == "/signin", answer.headers
    assert "agentdash_token" not in " ".join(answer.headers.get_list("set-cookie"))
    assert "agentdash_token" not in browser.cookies
    return query_of(answer.headers["location"])["reason"]


def test_signing_in_by_hand_sets_the_session_cookie_for_the_providers_user(server, provider):
    with new_browser(server) as browser:
        started = browser.get("/auth/start", params={"next": "/cost?days=7"})
        flow_cookie = started.headers["set-cookie"]
        assert "agentdash_login=" in flow_cookie and "HttpOnly" in flow_cookie and "SameSite=lax" in flow_cookie
        assert "Path=/auth" in flow_cookie and "Max-Age=600" in flow_cookie
        asked = query_of(started.headers["location"])
        assert started.headers["location"].startswith(f"{provider.issuer}/authorize?")
        assert asked["client_id"] == CLIENT_ID and asked["redirect_uri"] == f"{server.url}/auth/callback"
        assert asked["response_type"] == "code" and asked["code_challenge_method"] == "S256"
        assert len({asked["state"], asked["nonce"], asked["code_challenge"]}) == 3

        callback = approve(started.headers["location"])
        back = browser.get(callback)
        assert back.status_code == 303 and back.headers["location"] == "/cost?days=7"
        session = next(c for c in back.headers.get_list("set-cookie") if c.startswith("agentdash_token="))
        assert "HttpOnly" in session and "SameSite=lax" in session and "Path=/" in session
        assert 500 < int(session.split("Max-Age=")[1].split(";")[0]) <= 600  # expires with the ID token
        assert provider.token_requests == 1

        page = browser.get("/cost?days=7")
        assert page.status_code == 200 and "org_admin · ann" in page.text
        assert browser.get("/api/v1/orgs/acme/metrics").status_code == 200
        assert browser.get("/api/v1/orgs/globex/metrics").status_code == 404  # the org is the provider's claim
    assert not logged(server, query_of(callback)["code"], timeout=0.5)  # nor does the code reach the log


def test_the_signin_page_offers_the_provider_above_the_token_form(server):
    page = httpx.get(f"{server.url}/signin", params={"next": "/people"}, trust_env=False).text
    assert f"Sign in with {PROVIDER_NAME}" in page and "/auth/start?next=%2Fpeople" in page
    assert page.index("oidc-signin") < page.index("token-field")


@pytest.mark.skipif(chromium_path() is None, reason="Debian chromium is not installed (.ci/run installs it)")
def test_in_a_browser_the_provider_button_signs_in_and_returns_to_the_page_asked_for(server, provider):
    provider.knobs.user = {"sub": "mo", "org_id": "acme", "role": "manager", "teams": ["ops"]}
    with browser_page() as page:
        page.goto(f"{server.url}/cost?days=7")
        page.wait_for_selector("[data-testid=oidc-signin]")
        assert urlsplit(page.url).path == "/signin" and query_of(page.url)["next"] == "/cost?days=7"
        assert page.locator("[data-testid=oidc-signin]").inner_text() == f"Sign in with {PROVIDER_NAME}"
        screenshot(page, "signin-oidc")
        page.locator("[data-testid=oidc-signin]").click()
        page.wait_for_url("**/cost?days=7")
        page.wait_for_selector("[data-testid=role]")
        assert page.locator("[data-testid=role]").inner_text() == "manager · mo"
        assert page.locator("[data-testid=org]").inner_text() == "acme"
        cookie = next(c for c in page.context.cookies() if c["name"] == "agentdash_token")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert not [c for c in page.context.cookies() if c["name"] == "agentdash_login"]  # the flow cookie is spent


def test_a_wrong_state_is_refused_and_the_right_one_still_works(server, provider):
    with new_browser(server) as browser:
        callback = approve(start(browser))
        redeemed = provider.token_requests
        forged = callback.replace(query_of(callback)["state"], secrets.token_urlsafe(32))
        assert refused_with(browser.get(forged), browser) == "flow-mismatch"
        assert provider.token_requests == redeemed  # refused before the code was redeemed
        assert browser.get(callback).headers["location"] == "/cost?days=7"  # the one thing changed was the state


def test_a_replayed_callback_is_refused(server, provider):
    with new_browser(server) as browser:
        callback = approve(start(browser))
        cookie = browser.cookies["agentdash_login"]
        assert browser.get(callback).headers["location"] == "/cost?days=7"
        redeemed = provider.token_requests
        browser.cookies.clear()  # the session from the first use, and the spent flow cookie
        browser.cookies.set("agentdash_login", cookie, domain="127.0.0.1", path="/auth")  # the same browser, replaying
        assert refused_with(browser.get(callback), browser) == "flow-mismatch"
        assert provider.token_requests == redeemed  # refused before the provider was asked


def test_a_callback_opened_in_another_browser_is_refused(server):
    # Login CSRF: someone sends you the callback of a sign-in they started, to sign you in as them.
    with new_browser(server) as theirs, new_browser(server) as yours:
        callback = approve(start(theirs))
        assert refused_with(yours.get(callback), yours) == "flow-mismatch"


def test_a_code_without_its_pkce_verifier_is_refused_by_the_provider(server, provider):
    with new_browser(server) as victim, new_browser(server) as attacker:
        stolen = query_of(approve(start(victim)))["code"]
        direct = httpx.post(f"{provider.issuer}/token", trust_env=False, data={
            "grant_type": "authorization_code", "code": stolen, "client_id": CLIENT_ID,
            "redirect_uri": f"{server.url}/auth/callback"})  # fmt: skip
        assert direct.status_code == 400 and direct.json()["error"] == "invalid_grant"

        stolen = query_of(approve(start(victim)))["code"]
        own = approve(start(attacker))  # injected into the attacker's own sign-in, whose verifier does not match
        injected = own.replace(query_of(own)["code"], stolen)
        assert refused_with(attacker.get(injected), attacker) == "token-refused"


def test_an_id_token_with_another_nonce_is_refused(server, provider):
    provider.knobs.id_token_changes = {"nonce": "from-another-sign-in"}
    with new_browser(server) as browser:
        assert refused_with(browser.get(approve(start(browser))), browser) == "nonce"


def test_an_id_token_for_another_audience_is_refused(server, provider):
    provider.knobs.id_token_changes = {"aud": "another-app"}
    with new_browser(server) as browser:
        assert refused_with(browser.get(approve(start(browser))), browser) == "id-token"


def test_an_id_token_without_a_role_is_refused(server, provider):
    provider.knobs.user = {k: v for k, v in USER.items() if k != "role"}
    with new_browser(server) as browser:
        assert refused_with(browser.get(approve(start(browser))), browser) == "id-token"
    assert logged(server, "lacks the 'role' claim")  # the admin reads why in the log


def test_a_denial_at_the_provider_is_shown_as_such(server, provider):
    provider.knobs.deny = True
    with new_browser(server) as browser:
        callback = approve(start(browser, "/teams"))
        assert query_of(callback)["error"] == "access_denied"
        answer = browser.get(callback)
        assert refused_with(answer, browser) == "denied" and query_of(answer.headers["location"])["next"] == "/teams"
        page = browser.get(answer.headers["location"])
        assert "did not sign you in (access denied)" in page.text and "oidc-signin" in page.text


def test_failed_sign_ins_are_throttled_per_address(server):
    with new_browser(server) as browser:
        good = approve(start(browser))  # a sign-in under way while someone at this address guesses
        for _ in range(10):
            assert (
                refused_with(browser.get("/auth/callback", params={"state": "guess", "code": "guess"}), browser)
                == "flow-mismatch"
            )
        assert refused_with(browser.get(good), browser) == "throttled"  # even a good answer waits
        throttled = browser.get("/auth/start", params={"next": "/teams"})
        assert query_of(throttled.headers["location"]) == {"reason": "throttled", "next": "/teams"}


def test_a_provider_that_is_down_is_named_on_the_signin_page(tmp_path):
    down = f"http://127.0.0.1:{free_port()}"
    server = ServerProcess(tmp_path / "data", dev=False).start(
        "--jwks-url", f"{down}/jwks", "--jwt-issuer", down, "--oidc-client-id", CLIENT_ID)  # fmt: skip
    try:
        with new_browser(server) as browser:
            for _ in range(12):  # not the person's fault, so never throttled
                answer = browser.get("/auth/start", params={"next": "/cost"})
                assert answer.status_code == 303 and query_of(answer.headers["location"]) == {
                    "reason": "unavailable",
                    "next": "/cost",
                }
            page = browser.get(answer.headers["location"])
            assert "cannot be reached right now" in page.text and "Sign in with your identity provider" in page.text
        assert logged(server, "openid-configuration")  # the log says which request failed
    finally:
        server.stop()
