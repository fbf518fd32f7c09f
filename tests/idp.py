"""A fake OIDC identity provider for tests: its own RSA and P-256 keys, published as a JWKS over real HTTP."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.example.test/"
AUDIENCE = "agentdash-test"


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
        return self.private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

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


class FakeProvider:
    """Serves `/jwks` on a free loopback port: the published keys plus any raw extra entries; counts fetches."""

    def __init__(self, *keys: ProviderKey) -> None:
        self.published: list[dict] = [key.jwk() for key in keys]
        self.fetches = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.fetches += 1
                body = json.dumps({"keys": provider.published}).encode()
                self.send_response(200 if self.path == "/jwks" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # quiet test output
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-idp", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/jwks"

    def publish(self, *keys: ProviderKey, extra: tuple[dict, ...] = ()) -> None:
        """Replace the published set (a key rotation)."""
        self.published = [key.jwk() for key in keys] + list(extra)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._server.shutdown()
        self._server.server_close()
