"""Sign in with the identity provider: the OIDC authorization-code flow with PKCE, state and nonce.

`CodeFlow.start` makes the provider's sign-in URL and remembers the attempt; `CodeFlow.finish` takes the
provider's answer, redeems the code and returns a verified ID token for the session cookie. The web routes
that call them live in `ui/signin.py`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote_plus, urlencode

import httpx
import jwt

from agentdash.auth.oidc_discovery import Discovery, DiscoveryFailed, Endpoints
from agentdash.auth.tokens import Identity, IdentityConfigError, NotAuthorized, ProviderUnavailable, TokenVerifier
from agentdash.config import Settings

log = logging.getLogger(__name__)

FLOW_TTL_S = 600  # time to sign in at the provider, MFA included
FLOW_COOKIE = "agentdash_login"
CALLBACK_PATH = "/auth/callback"
MAX_PENDING = 10_000  # pending sign-ins held in memory; beyond it the oldest are forgotten
HTTP_TIMEOUT_S = 5.0
_BROWSER_ID = re.compile(r"[A-Za-z0-9_-]{43}")


class LoginFailed(Exception):
    """A sign-in with the provider that did not end signed in.

    `reason` keys the sign-in page's message; `detail` is for the log and never holds a code or token;
    `counts` is False when the caller did nothing wrong (the provider is down), so it is not throttled.
    """

    def __init__(self, reason: str, detail: str, next_path: str = "/", counts: bool = True) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.next_path, self.counts = reason, detail, next_path, counts


@dataclass(frozen=True)
class Client:
    """This application as registered at the provider."""

    client_id: str
    client_secret: str = field(default="", repr=False)
    redirect_url: str = ""  # empty: the request's own address + CALLBACK_PATH
    scope: str = "openid profile email"
    provider_name: str = "your identity provider"


@dataclass(frozen=True)
class PendingLogin:
    """What one sign-in attempt must find again when the provider sends the browser back."""

    browser: str = field(repr=False)  # the flow cookie's value: binds the attempt to the browser that started it
    nonce: str = field(repr=False)
    code_verifier: str = field(repr=False)
    redirect_uri: str
    next_path: str
    started_at: float


@dataclass(frozen=True)
class Started:
    authorization_url: str
    browser: str = field(repr=False)  # to keep in FLOW_COOKIE


@dataclass(frozen=True)
class SignedIn:
    token: str = field(repr=False)
    identity: Identity
    next_path: str


class PendingLogins:
    """Sign-in attempts by `state`, each usable once, forgotten after FLOW_TTL_S.

    Server-side, not a signed cookie: single use (a replayed callback is refused) needs server state anyway,
    and nothing secret (nonce, PKCE verifier) ever leaves the server. The price: in memory, per process, so a
    server restart mid-sign-in or several workers without sticky sessions mean "start again".
    """

    def __init__(
        self, ttl_s: float = FLOW_TTL_S, limit: int = MAX_PENDING, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s, self.limit, self.clock = ttl_s, limit, clock
        self._pending: dict[str, PendingLogin] = {}
        self._lock = threading.Lock()

    def add(self, state: str, login: PendingLogin) -> None:
        with self._lock:
            if len(self._pending) >= self.limit:
                self._forget_expired()
            while len(self._pending) >= self.limit:  # a flood of starts: the oldest attempts go first
                del self._pending[next(iter(self._pending))]
            self._pending[state] = login

    def take(self, state: str) -> PendingLogin | None:
        with self._lock:
            return self._pending.pop(state, None)

    def expired(self, login: PendingLogin) -> bool:
        return self.clock() - login.started_at > self.ttl_s

    def _forget_expired(self) -> None:
        for state in [s for s, login in self._pending.items() if self.expired(login)]:
            del self._pending[state]


class CodeFlow:
    """The authorization-code flow against one provider, for one registered client."""

    def __init__(self, client: Client, discovery: Discovery, verifier: TokenVerifier, http: httpx.Client,
                 pending: PendingLogins | None = None) -> None:  # fmt: skip
        self.client, self.discovery, self.verifier, self._http = client, discovery, verifier, http
        self.pending = pending or PendingLogins()

    @property
    def provider_name(self) -> str:
        return self.client.provider_name

    def start(self, next_path: str, base_url: str, browser: str | None) -> Started:
        """The provider's sign-in URL for a new attempt, remembered under a fresh `state`."""
        endpoints = self._endpoints(next_path)
        browser = browser if browser and _BROWSER_ID.fullmatch(browser) else secrets.token_urlsafe(32)
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        redirect_uri = self.client.redirect_url or base_url.rstrip("/") + CALLBACK_PATH
        self.pending.add(state, PendingLogin(browser, nonce, verifier, redirect_uri, next_path, self.pending.clock()))
        query = {"response_type": "code", "client_id": self.client.client_id, "redirect_uri": redirect_uri,
                 "scope": _scope(self.client.scope), "state": state, "nonce": nonce,
                 "code_challenge": pkce_challenge(verifier), "code_challenge_method": "S256"}  # fmt: skip
        separator = "&" if "?" in endpoints.authorization else "?"
        return Started(endpoints.authorization + separator + urlencode(query), browser)

    def finish(self, answer: Mapping[str, str], browser: str) -> SignedIn:
        """The provider's answer (the callback's query) as a verified session token; LoginFailed otherwise."""
        login = self.pending.take(answer.get("state", ""))
        if login is None or not hmac.compare_digest(login.browser.encode(), browser.encode()):
            raise LoginFailed("flow-mismatch", "the callback's state matches no sign-in started by this browser")
        if self.pending.expired(login):
            raise LoginFailed(
                "flow-expired", f"the sign-in took longer than {self.pending.ttl_s:.0f} s", login.next_path
            )
        if "error" in answer:
            reason = "denied" if answer["error"] == "access_denied" else "provider-error"
            raise LoginFailed(reason, f"the provider answered error={answer['error'][:64]!r}", login.next_path)
        if not answer.get("code"):
            raise LoginFailed("provider-error", "the provider sent no code", login.next_path)
        token = self._redeem(answer["code"], login)
        return SignedIn(token, self._verified(token, login), login.next_path)

    def _endpoints(self, next_path: str) -> Endpoints:
        try:
            return self.discovery.endpoints()
        except DiscoveryFailed as exc:
            raise LoginFailed(exc.reason, str(exc), next_path, counts=False) from None

    def _redeem(self, code: str, login: PendingLogin) -> str:
        """The ID token the token endpoint gives for `code` and the attempt's PKCE verifier."""
        endpoints = self._endpoints(login.next_path)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": login.redirect_uri,
                "code_verifier": login.code_verifier}  # fmt: skip
        headers = {"Accept": "application/json"}
        self._authenticate(form, headers, endpoints.token_auth_methods)
        try:
            answer = self._http.post(endpoints.token, data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise LoginFailed(
                "unavailable", f"the token endpoint could not be reached: {exc}", login.next_path, counts=False
            ) from None
        body = _json_object(answer)
        if answer.status_code != 200:
            error = str(body.get("error", ""))[:64]  # the OAuth error code only: the rest may echo what we sent
            raise LoginFailed(
                "token-refused", f"the token endpoint answered {answer.status_code} error={error!r}", login.next_path
            )
        if not isinstance(body.get("id_token"), str):
            raise LoginFailed(
                "token-refused",
                "the token endpoint's answer holds no id_token (is `openid` in the scope?)",
                login.next_path,
            )
        return body["id_token"]

    def _authenticate(self, form: dict[str, str], headers: dict[str, str], methods: tuple[str, ...]) -> None:
        """Client authentication: none for a public client (PKCE protects the code), else the secret."""
        client_id, secret = self.client.client_id, self.client.client_secret
        if secret and "client_secret_basic" not in methods and "client_secret_post" in methods:
            form |= {"client_id": client_id, "client_secret": secret}
        elif secret:  # client_secret_basic, the default when the provider does not say (RFC 8414 §2)
            pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"  # RFC 6749 §2.3.1: form-encoded first
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = client_id

    def _verified(self, token: str, login: PendingLogin) -> Identity:
        try:
            identity = self.verifier.verify(token)
        except ProviderUnavailable as exc:
            raise LoginFailed("unavailable", str(exc), login.next_path, counts=False) from None
        except NotAuthorized as exc:
            raise LoginFailed("id-token", f"the provider's ID token was refused: {exc}", login.next_path) from None
        claims = jwt.decode(token, options={"verify_signature": False})  # verified just above
        if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), login.nonce.encode()):
            # An ID token minted for another sign-in attempt (a replay or an injected code).
            raise LoginFailed("nonce", "the ID token's nonce is not the one this sign-in sent", login.next_path)
        if "azp" in claims and claims["azp"] != self.client.client_id:
            raise LoginFailed("id-token", "the ID token was issued to another client (azp)", login.next_path)
        return identity


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: base64url(sha256(verifier)), unpadded."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _scope(scope: str) -> str:
    words = scope.split()
    return " ".join(words if "openid" in words else ["openid", *words])


def _json_object(answer: httpx.Response) -> dict:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def code_flow_for(settings: Settings, verifier: TokenVerifier) -> CodeFlow | None:
    """The code flow when --oidc-client-id is set; IdentityConfigError when the settings around it cannot work."""
    if not settings.oidc_client_id:
        return None
    if not settings.jwks_url or not settings.jwt_issuer:
        raise IdentityConfigError(
            "--oidc-client-id needs --jwks-url and --jwt-issuer too: they verify the ID tokens it brings back"
        )
    if settings.jwt_audience and settings.jwt_audience != settings.oidc_client_id:
        raise IdentityConfigError(
            f"--jwt-audience is {settings.jwt_audience!r} but the provider's ID tokens carry the client id "
            f"{settings.oidc_client_id!r} as audience, so every sign-in would be refused: drop --jwt-audience or make them equal"
        )
    if settings.oidc_redirect_url and not settings.oidc_redirect_url.startswith(("https://", "http://")):
        raise IdentityConfigError(
            f"--oidc-redirect-url must be an absolute http(s) URL, got {settings.oidc_redirect_url!r}"
        )
    client = Client(settings.oidc_client_id, settings.oidc_client_secret, settings.oidc_redirect_url,
                    settings.oidc_scope, settings.oidc_provider_name)  # fmt: skip
    http = httpx.Client(timeout=HTTP_TIMEOUT_S, follow_redirects=False)
    # Only the provider's keys: what its token endpoint hands back must be its own, never an HS256 or dev token.
    provider_only = TokenVerifier(oidc=verifier.oidc)
    return CodeFlow(client, Discovery(settings.jwt_issuer, settings.jwks_url, http), provider_only, http)
