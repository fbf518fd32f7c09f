"""Signing in and out: the session cookie, the sign-in page, and the development issuer (dev mode only)."""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import jwt
from fastapi import Form, Request
from fastapi.responses import JSONResponse, RedirectResponse
from nicegui import app, ui

from agentdash.auth import (
    ROLES,
    CodeFlow,
    FailureLimiter,
    LoginFailed,
    NotAuthorized,
    TokenVerifier,
    client_address,
    issue_token,
)  # fmt: skip
from agentdash.auth.oidc_login import FLOW_COOKIE, FLOW_TTL_S  # not on the package surface
from agentdash.ui.forms import post_form

log = logging.getLogger(__name__)

COOKIE = "agentdash_token"
DEV_TOKEN_TTL_S = 3600  # the development issuer's tokens are short-lived, like a real provider's
REASONS = {
    "expired": "Your session expired. Sign in again.",
    "signed-out": "You are signed out.",
    "invalid": "That token was not accepted. Check it, or ask for a new one.",
    "required": "Sign in to see your organisation's agent usage.",
    "throttled": "Too many failed sign-ins from this address. Wait a minute, then try again.",
    "unavailable": "The identity provider cannot be reached right now. Try again in a moment.",
    "misconfigured": "Signing in with the identity provider is not set up correctly on this server. "
    "Ask your administrator (the server log says what is wrong).",
    "flow-mismatch": "That sign-in could not be matched to one started in this browser. Start again.",
    "flow-expired": "The sign-in took too long. Start again.",
    "denied": "The identity provider did not sign you in (access denied).",
    "provider-error": "The identity provider could not sign you in. Try again, or ask your administrator.",
    "token-refused": "The identity provider did not complete the sign-in. Start again.",
    "id-token": "The identity provider's answer was not accepted. Ask your administrator to check that it "
    "sends org_id and role in the ID token.",
    "nonce": "The identity provider's answer belongs to another sign-in. Start again.",
    "cross-site": "A sign-in or sign-out sent from another site was refused. Use this page instead.",
    "token-link": "Sign-in links are turned off on this server (they would leave tokens in proxy logs). "
    "Paste the token below instead.",
}
# What a browser says of a request's initiator; "none" is the person typing the address or using a bookmark.
SAME_SITE_FETCHES = ("same-origin", "none")


@dataclass(frozen=True)
class SignIn:
    """Who can sign people in: the configured verifier, and the dev secret when the development issuer is on."""

    verifier: TokenVerifier
    dev_secret: str | None
    failures: FailureLimiter
    code_flow: CodeFlow | None = None  # "Sign in with <provider>": the OIDC code flow, when configured


def signin_url(reason: str, next_path: str = "/") -> str:
    return f"/signin?{urlencode({'reason': reason, 'next': safe_next(next_path)})}"


def safe_next(path: str | None) -> str:
    """Only a path on this site: never `//evil.example` or `https://…` (no open redirect)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def cross_site(request: Request) -> bool:
    """Whether a browser sent this request on another site's behalf (login/logout CSRF).

    Browsers send Sec-Fetch-Site, or at least Origin, on every POST; a request with neither is no browser's, and so
    carries no victim's cookie. Origin is compared by host only: behind a TLS proxy the scheme we see may differ.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in SAME_SITE_FETCHES
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin == "null" or urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower()


def install(signin: SignIn) -> None:
    """Register /login (token → cookie), /logout, /signin, /signin/dev (dev mode) and /auth/* (the code flow)."""

    @app.get("/login")
    def login_link(request: Request, token: str = "", next: str = "/") -> RedirectResponse:
        # The one-click link from `agentdash demo`; elsewhere tokens must not sit in URLs (proxy logs, history).
        if signin.dev_secret is None:
            return RedirectResponse(signin_url("token-link", next), status_code=303)
        return _start_session(signin, request, token, next)

    @app.post("/login")
    def login_form(request: Request, token: str = Form(""), next: str = Form("/")) -> RedirectResponse:
        if cross_site(request):
            return _refuse_cross_site(request, next)
        return _start_session(signin, request, token, next)

    @app.get("/logout")
    def logout_link() -> JSONResponse:
        # Not a way out: any page could embed it. The Sign out button posts.
        return JSONResponse({"error": "sign out with POST /logout (the Sign out button)"}, status_code=405,
                            headers={"Allow": "POST"})  # fmt: skip

    @app.post("/logout")
    def logout(request: Request) -> RedirectResponse:
        if cross_site(request):
            return _refuse_cross_site(request, "/")
        response = RedirectResponse(signin_url("signed-out"), status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.post("/signin/dev")
    def dev_signin(request: Request, org: str = Form(""), role: str = Form(""), user: str = Form(""),
                   teams: str = Form(""), next: str = Form("/")) -> RedirectResponse:  # fmt: skip
        if signin.dev_secret is None or not is_loopback(request.client.host if request.client else None):
            return RedirectResponse(signin_url("required", next), status_code=303)
        if cross_site(request):
            return _refuse_cross_site(request, next)
        role = role if role in ROLES else "member"
        team_list = tuple(t.strip() for t in teams.split(",") if t.strip())
        token = issue_token(
            signin.dev_secret, org.strip() or "demo", role, user.strip() or "dev", team_list, DEV_TOKEN_TTL_S
        )
        return _start_session(signin, request, token, next)

    @ui.page("/signin", title="Sign in · agentdash")
    def signin_page(request: Request, reason: str = "required", next: str = "/") -> None:
        dev = signin.dev_secret is not None and is_loopback(request.client.host if request.client else None)
        provider = signin.code_flow.provider_name if signin.code_flow else None
        _signin_page(REASONS.get(reason, REASONS["required"]), safe_next(next), dev, provider)

    if signin.code_flow:
        _install_code_flow(signin, signin.code_flow)


def _install_code_flow(signin: SignIn, flow: CodeFlow) -> None:
    """/auth/start sends the browser to the provider; /auth/callback takes it back, signed in or told why not."""

    @app.get("/auth/start")
    def provider_start(request: Request, next: str = "/") -> RedirectResponse:
        if signin.failures.retry_after(_client(request)):  # the callback would refuse it anyway: say so now
            return RedirectResponse(signin_url("throttled", next), status_code=303)
        try:
            started = flow.start(safe_next(next), str(request.base_url), request.cookies.get(FLOW_COOKIE))
        except LoginFailed as exc:
            return _login_failed(signin, request, exc)
        response = RedirectResponse(started.authorization_url, status_code=303)
        # Lax: the provider sends the browser back with a cross-site top-level GET, which Lax lets through.
        response.set_cookie(FLOW_COOKIE, started.browser, max_age=FLOW_TTL_S, path="/auth", httponly=True,
                            samesite="lax", secure=request.url.scheme == "https")  # fmt: skip
        return response

    @app.get("/auth/callback")
    def provider_callback(request: Request) -> RedirectResponse:
        if signin.failures.retry_after(_client(request)):
            response = RedirectResponse(signin_url("throttled"), status_code=303)
        else:
            try:
                signed_in = flow.finish(dict(request.query_params), request.cookies.get(FLOW_COOKIE, ""))
            except LoginFailed as exc:
                response = _login_failed(signin, request, exc)
            else:
                response = RedirectResponse(safe_next(signed_in.next_path), status_code=303)
                _set_session_cookie(response, request, signed_in.token)
                # Only now: a forged callback someone sends you must not break the sign-in you have under way.
                response.delete_cookie(FLOW_COOKIE, path="/auth")
        return response


def _refuse_cross_site(request: Request, next_path: str) -> RedirectResponse:
    origin = (
        request.headers.get("origin", "-")[:100].encode("unicode_escape").decode()
    )  # one log line, whatever it holds
    log.warning("refused a cross-site %s %s from %s (Origin %s)", request.method, request.url.path, _client(request),
                origin)  # fmt: skip
    return RedirectResponse(signin_url("cross-site", next_path), status_code=303)


def _login_failed(signin: SignIn, request: Request, failure: LoginFailed) -> RedirectResponse:
    log.warning("sign-in with the identity provider failed for %s: %s", _client(request), failure.detail)
    if failure.counts:
        signin.failures.failed(_client(request))
    return RedirectResponse(signin_url(failure.reason, failure.next_path), status_code=303)


def _client(request: Request) -> str:
    return client_address(request.client.host if request.client else None)


def _start_session(signin: SignIn, request: Request, token: str, next_path: str) -> RedirectResponse:
    """Check the token, then keep it in an HttpOnly cookie that expires with it; throttle repeated failures."""
    client = _client(request)
    try:
        # A valid token passes even from a throttled address (others behind the same NAT may be guessing).
        signin.verifier.verify(token.strip())
    except NotAuthorized as exc:
        if signin.failures.retry_after(client):
            return RedirectResponse(signin_url("throttled", next_path), status_code=303)
        signin.failures.failed(client)
        reason = "expired" if "expired" in str(exc) else "invalid"
        return RedirectResponse(signin_url(reason, next_path), status_code=303)
    response = RedirectResponse(safe_next(next_path), status_code=303)
    _set_session_cookie(response, request, token.strip())
    return response


def _set_session_cookie(response: RedirectResponse, request: Request, token: str) -> None:
    """Keep a verified token in an HttpOnly cookie that expires with it."""
    expires_at = jwt.decode(token, options={"verify_signature": False}).get("exp", 0)
    # Lax, not Strict: a dashboard link shared in chat must open signed in; Lax still keeps the cookie off
    # cross-site POSTs and sub-requests.
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https", max_age=max(0, int(expires_at - time.time())))  # fmt: skip


def _signin_page(message: str, next_path: str, dev: bool, provider: str | None) -> None:
    with ui.column().classes("absolute-center items-stretch gap-4").style("width: min(440px, 92vw)"):
        ui.label("agentdash").classes("text-h5 text-weight-bold")
        ui.label(message).classes("text-subtitle1").props("data-testid=signin-message role=status")
        if provider:
            _provider_button(provider, next_path)
        if dev:
            _dev_issuer(next_path)
        _token_form(next_path)


def _dev_issuer(next_path: str) -> None:
    """The development issuer: pick who to be. Only on a --dev server, only from this machine."""
    with ui.card().classes("w-full gap-2").props("data-testid=dev-issuer").mark("dev-issuer"):
        ui.label("Development sign-in").classes("text-subtitle1 text-weight-medium")
        ui.label("This server runs in dev mode: pick any org, role, teams and user.").classes("text-caption text-grey")
        org = ui.input("Org", value="demo").props("dense outlined data-testid=dev-org").classes("w-full")
        role = ui.select({r: r for r in ROLES}, value="org_admin", label="Role").props(
            "dense outlined data-testid=dev-role").classes("w-full")  # fmt: skip
        teams = (
            ui.input("Teams (comma-separated, for managers)")
            .props("dense outlined data-testid=dev-teams")
            .classes("w-full")
        )
        user = ui.input("User", value="dev").props("dense outlined data-testid=dev-user").classes("w-full")

        def go() -> None:
            fields = {"org": org.value, "role": role.value, "user": user.value, "teams": teams.value, "next": next_path}
            post_form("/signin/dev", {key: str(value or "") for key, value in fields.items()})

        ui.button("Sign in", on_click=go).props("data-testid=dev-signin")


def _provider_button(provider: str, next_path: str) -> None:
    """The way most people sign in: a plain link, so it works before the page's websocket connects."""
    href = "/auth/start?" + urlencode({"next": next_path})
    ui.html(
        f'<a href="{_attr(href)}" data-testid="oidc-signin" class="q-btn q-btn--standard q-btn--no-uppercase '
        'bg-primary text-white q-pa-md text-subtitle1" style="display:block;text-align:center;border-radius:4px;text-decoration:none">'
        f"Sign in with {_attr(provider)}</a>",
        sanitize=False,
    ).classes("w-full")


def _token_form(next_path: str) -> None:
    """Paste a token from your identity provider (or `agentdash token`); posted, so it never sits in a URL."""
    with ui.card().classes("w-full gap-2"):
        ui.label("Sign in with a token").classes("text-subtitle1 text-weight-medium")
        ui.html(
            '<form method="post" action="/login" style="display:flex;flex-direction:column;gap:8px">'
            '<label for="token-field" class="text-caption">Token from your identity provider</label>'
            '<textarea id="token-field" name="token" rows="3" required autocomplete="off" data-testid="token-field" '
            'style="width:100%;box-sizing:border-box;font-family:monospace;padding:6px;border:1px solid #bbb;border-radius:4px;background:transparent;color:inherit"></textarea>'
            f'<input type="hidden" name="next" value="{_attr(next_path)}">'
            '<button type="submit" class="q-btn q-btn--standard bg-primary text-white q-pa-sm" data-testid="token-signin" '
            'style="border:0;border-radius:4px;cursor:pointer">Sign in with token</button></form>',
            sanitize=False,
        )


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
