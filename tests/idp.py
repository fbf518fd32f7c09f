"""A fake OIDC identity provider for tests: its own RSA and P-256 keys, published as a JWKS over real HTTP.

It also signs people in (test-only, nobody is asked anything): discovery, `/authorize` that approves at once
and `/token` that checks the code, the client and PKCE before issuing an RS256 ID token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.example.test/"
AUDIENCE = "agentdash-test"
CLIENT_ID = "agentdash-dashboard"
USER = {"sub": "ann", "org_id": "acme", "role": "org_admin", "teams": ["t-1"]}  # who signs in at /authorize


@dataclass(frozen=True)
class ProviderKey:
    """A signing key pair the provider holds; only the public half is ever published."""

    kid: str
    algorithm: str
    private: object = field(repr=False)

    def jwk(self) -> dict:
        public = self.private.public_key()
        as_jwk = RSAAlgorithm.to_jwk if self.algorithm == "RS256" else ECAlgorithm.to_jwk
        return {**as_jwk(public, as_dict=True), "kid": self.kid, "use": "sig", "alg": self.algorithm}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict, kid: str | None = None) -> str:
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers={"kid": kid or self.kid})


def rsa_key(kid: str) -> ProviderKey:
    return ProviderKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(kid: str) -> ProviderKey:
    return ProviderKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


def claims(**changes) -> dict:
    """Claims a verifier configured for ISSUER and AUDIENCE accepts; a change to None drops that claim."""
    now = int(time.time())
    base = {"sub": "ann", "org_id": "acme", "role": "org_admin", "teams": ["t-1"], "iss": ISSUER, "aud": AUDIENCE,
            "iat": now, "exp": now + 600}  # fmt: skip
    return {k: v for k, v in (base | changes).items() if v is not None}


@dataclass(frozen=True)
class Grant:
    """What `/authorize` remembers for one code, for `/token` to check."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str
    user: dict


@dataclass
class SignInKnobs:
    """How the provider behaves towards the next sign-ins; tests change one thing at a time."""

    user: dict = field(default_factory=lambda: dict(USER))
    deny: bool = False  # /authorize answers error=access_denied
    id_token_changes: dict = field(default_factory=dict)  # forged ID tokens: a change to None drops the claim
    discovery_changes: dict = field(default_factory=dict)


def pkce_s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class FakeProvider:
    """Serves `/jwks` on a free loopback port: the published keys plus any raw extra entries; counts fetches.

    Signing in: `/.well-known/openid-configuration`, `/authorize`, `/token` for the client CLIENT_ID
    (with `client_secret` when set); `knobs` shape what they answer.
    """

    def __init__(self, *keys: ProviderKey, client_secret: str = "") -> None:
        self.published: list[dict] = [key.jwk() for key in keys]
        self.signer = next((key for key in keys if key.algorithm == "RS256"), None)
        self.client_secret = client_secret
        self.knobs = SignInKnobs()
        self.grants: dict[str, Grant] = {}
        self.authorize_requests: list[dict[str, str]] = []
        self.fetches = self.discovery_fetches = self.token_requests = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-idp", daemon=True)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.issuer}/jwks"

    def publish(self, *keys: ProviderKey, extra: tuple[dict, ...] = ()) -> None:
        """Replace the published set (a key rotation)."""
        self.published = [key.jwk() for key in keys] + list(extra)

    def discovery(self) -> dict:
        document = {"issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token", "jwks_uri": self.url,
                    "response_types_supported": ["code"], "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"]}  # fmt: skip
        return {k: v for k, v in (document | self.knobs.discovery_changes).items() if v is not None}

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], dict]:
        """Approve at once: (302, Location back to the client) or (400, {}, error) when the request is malformed."""
        self.authorize_requests.append(query)
        problems = [name for name, ok in (
            ("response_type", query.get("response_type") == "code"), ("client_id", query.get("client_id") == CLIENT_ID),
            ("redirect_uri", query.get("redirect_uri", "").startswith("http")), ("state", bool(query.get("state"))),
            ("scope", "openid" in query.get("scope", "").split()), ("nonce", bool(query.get("nonce"))),
            ("code_challenge", len(query.get("code_challenge", "")) == 43),
            ("code_challenge_method", query.get("code_challenge_method") == "S256"),
        ) if not ok]  # fmt: skip
        if problems:  # never redirect a malformed request: the redirect_uri itself may be the problem
            return 400, {}, {"error": "invalid_request", "error_description": f"bad {', '.join(problems)}"}
        if self.knobs.deny:
            answer = {"error": "access_denied", "state": query["state"]}
        else:
            code = secrets.token_urlsafe(24)
            self.grants[code] = Grant(
                CLIENT_ID, query["redirect_uri"], query["code_challenge"], query["nonce"], dict(self.knobs.user)
            )
            answer = {"code": code, "state": query["state"]}
        return 302, {"Location": f"{query['redirect_uri']}?{urlencode(answer)}"}, {}

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict]:
        """Redeem a code once, for its client, its redirect_uri and the PKCE verifier of its challenge."""
        self.token_requests += 1
        grant = self.grants.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or grant is None:
            return 400, {"error": "invalid_grant"}
        if not self._client_authenticated(form, authorization):
            return 401, {"error": "invalid_client"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {
                "error": "invalid_grant",
                "error_description": "redirect_uri differs from the authorization request's",
            }
        if pkce_s256(form.get("code_verifier", "")) != grant.code_challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        return 200, {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "expires_in": 600,
                     "id_token": self.id_token(grant)}  # fmt: skip

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        base = {
            **grant.user,
            "iss": self.issuer,
            "aud": grant.client_id,
            "nonce": grant.nonce,
            "iat": now,
            "exp": now + 600,
        }
        return self.signer.sign({k: v for k, v in (base | self.knobs.id_token_changes).items() if v is not None})

    def _client_authenticated(self, form: dict[str, str], authorization: str) -> bool:
        if not self.client_secret:
            return form.get("client_id") == CLIENT_ID and "client_secret" not in form
        if authorization.startswith("Basic "):
            client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
            return unquote_plus(client_id) == CLIENT_ID and unquote_plus(secret) == self.client_secret
        return form.get("client_id") == CLIENT_ID and form.get("client_secret") == self.client_secret

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(provider: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/jwks":
                provider.fetches += 1
                self._json(200, {"keys": provider.published})
            elif url.path == "/.well-known/openid-configuration":
                provider.discovery_fetches += 1
                self._json(200, provider.discovery())
            elif url.path == "/authorize":
                status, headers, body = provider.authorize({k: v[0] for k, v in parse_qs(url.query).items()})
                self._json(status, body, headers)
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/token":
                return self._json(404, {"error": "not_found"})
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            form = {k: v[0] for k, v in parse_qs(body).items()}
            self._json(*provider.token(form, self.headers.get("Authorization", "")))

        def _json(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {
                "Content-Type": "application/json",
                "Content-Length": str(len(data)),
                **(headers or {}),
            }.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:  # quiet test output
            pass

    return Handler
