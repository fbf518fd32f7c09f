"""Dashboard identity: JWTs from the configured issuers (OIDC keys from a JWKS URL, an HS256 secret, dev mode)."""

from __future__ import annotations

import ipaddress
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from jwt.exceptions import InvalidSubjectError

from agentdash.auth.jwks import JwksKeys, KeysUnavailable
from agentdash.config import Settings

ROLES = ("org_admin", "manager", "member")
ALGORITHM = "HS256"  # of the tokens we sign: dev mode and `agentdash token`
LEEWAY_S = 30  # clock skew tolerated on exp, nbf and iat
MIN_SECRET_BYTES = 32
MAX_TOKEN_CHARS = 16_384  # far above any real ID token; refuses junk before parsing it
REQUIRED_CLAIMS = ["exp", "sub", "org_id", "role"]
LOOPBACK_NAMES = ("localhost",)
NOTHING_CONFIGURED = (
    "no identity provider is configured, so nobody could sign in. Choose one: "
    "--jwks-url with --jwt-issuer and --jwt-audience (OIDC, RS256/ES256), "
    "--jwt-secret (HS256 shared secret, at least 32 bytes), "
    "or --dev (local development only; tokens from `agentdash token`)"
)


class NotAuthorized(Exception):
    """The request carries no valid identity (401). Messages name the defect, never the token."""


class TokenExpired(NotAuthorized):
    """The token was valid but has expired: the person should sign in again."""


class ProviderUnavailable(NotAuthorized):
    """The identity provider's keys could not be fetched: not the caller's fault, worth a retry (503)."""


class IdentityConfigError(ValueError):
    """The identity settings cannot work; the message says how to fix them."""


@dataclass(frozen=True)
class Identity:
    sub: str
    org_id: str
    role: str
    teams: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class HmacKey:
    """A shared HS256 secret and the `iss`/`aud` its tokens must carry (None: not checked)."""

    secret: bytes = field(repr=False)
    issuer: str | None = None
    audience: str | None = None


@dataclass(frozen=True)
class OidcProvider:
    """An OIDC provider: its published keys and the `iss`/`aud` its tokens must carry."""

    keys: JwksKeys
    issuer: str
    audience: str


def dev_secret(path: Path) -> str:
    """The local signing secret, created on first use and readable by its owner only."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret)
    return secret


def issue_token(secret: str, org_id: str, role: str, user: str, teams: tuple[str, ...] = (), ttl_s: int = 8 * 3600,
                issuer: str | None = None, audience: str | None = None) -> str:  # fmt: skip
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    now = int(time.time())
    claims = {"sub": user, "org_id": org_id, "role": role, "teams": list(teams), "iat": now, "exp": now + ttl_s}
    claims |= ({"iss": issuer} if issuer else {}) | ({"aud": audience} if audience else {})
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


class TokenVerifier:
    """Accepts a token signed by any configured issuer, each key verifying only its own algorithm."""

    def __init__(self, hmac_keys: Sequence[HmacKey] = (), oidc: OidcProvider | None = None) -> None:
        self.hmac_keys, self.oidc = tuple(hmac_keys), oidc

    def __repr__(self) -> str:
        return f"TokenVerifier(hmac_keys={len(self.hmac_keys)}, oidc={self.oidc.keys.url if self.oidc else None})"

    def verify(self, token: str) -> Identity:
        if not token:
            raise NotAuthorized("not signed in")
        if len(token) > MAX_TOKEN_CHARS:
            raise NotAuthorized("token is too long")
        try:
            return _identity(self._claims(token, jwt.get_unverified_header(token)))
        except jwt.PyJWTError as exc:
            raise _refusal(exc) from None

    def _claims(self, token: str, header: dict) -> dict:
        # The header only routes the token: the key it reaches then accepts only its own algorithm.
        algorithm = header.get("alg")
        if algorithm == ALGORITHM and self.hmac_keys:
            return self._hmac_claims(token)
        if algorithm in ("RS256", "ES256") and self.oidc:
            return self._oidc_claims(self.oidc, token, header.get("kid"))
        raise NotAuthorized("token is signed with an algorithm this server does not accept")

    def _hmac_claims(self, token: str) -> dict:
        for key in self.hmac_keys[:-1]:
            try:
                return _decode(token, key.secret, ALGORITHM, key.issuer, key.audience)
            except jwt.InvalidSignatureError:
                continue  # signed with another of our secrets, perhaps
        last = self.hmac_keys[-1]
        return _decode(token, last.secret, ALGORITHM, last.issuer, last.audience)

    @staticmethod
    def _oidc_claims(oidc: OidcProvider, token: str, kid: object) -> dict:
        if not isinstance(kid, str):
            raise NotAuthorized("token names no signing key (kid)")
        try:
            key = oidc.keys.key(kid)
        except KeysUnavailable as exc:
            raise ProviderUnavailable(str(exc)) from None
        if key is None:
            raise NotAuthorized("token is signed with a key the identity provider does not publish")
        return _decode(token, key.key, key.algorithm, oidc.issuer, oidc.audience)


def _decode(token: str, key: Any, algorithm: str, issuer: str | None, audience: str | None) -> dict:
    return jwt.decode(token, key, algorithms=[algorithm], issuer=issuer, audience=audience, leeway=LEEWAY_S,
                      options={"require": REQUIRED_CLAIMS, "enforce_minimum_key_length": True})  # fmt: skip


def _identity(claims: dict) -> Identity:
    sub, org_id, role, teams = claims["sub"], claims["org_id"], claims["role"], claims.get("teams", [])
    if not isinstance(sub, str) or not sub or not isinstance(org_id, str) or not org_id:
        raise NotAuthorized("token's sub and org_id must be non-empty strings")
    if not isinstance(role, str) or role not in ROLES:
        raise NotAuthorized(f"token's role must be one of {', '.join(ROLES)}")
    if not isinstance(teams, list) or not all(isinstance(team, str) for team in teams):
        raise NotAuthorized("token's teams must be a list of strings")
    return Identity(sub=sub, org_id=org_id, role=role, teams=tuple(teams))


_REFUSALS: list[tuple[type[Exception], str]] = [
    (jwt.ExpiredSignatureError, "your session expired; sign in again"),
    (jwt.ImmatureSignatureError, "token is not valid yet (nbf or iat in the future)"),
    (jwt.InvalidSignatureError, "token signature is invalid"),
    (jwt.InvalidIssuerError, "token issuer is not accepted"),
    (jwt.InvalidAudienceError, "token audience is not accepted"),
    (jwt.InvalidAlgorithmError, "token is signed with an algorithm this server does not accept"),
    (jwt.InvalidKeyError, "token is signed with a key this server does not accept"),
    (InvalidSubjectError, "token's sub must be a non-empty string"),
    (jwt.DecodeError, "token is malformed"),
]


def _refusal(exc: jwt.PyJWTError) -> NotAuthorized:
    """PyJWT's error as our own message: PyJWT's may quote parts of the token."""
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return NotAuthorized(f"token lacks the {exc.claim!r} claim")
    for kind, message in _REFUSALS:
        if isinstance(exc, kind):
            return (TokenExpired if kind is jwt.ExpiredSignatureError else NotAuthorized)(message)
    return NotAuthorized("token is invalid")


def verifier_for(settings: Settings) -> TokenVerifier:
    """The verifier for the configured issuers; IdentityConfigError when none is configured or one cannot work."""
    hmac_keys = []
    if settings.jwt_secret:
        hmac_keys.append(
            HmacKey(_checked_secret(settings.jwt_secret), settings.jwt_issuer or None, settings.jwt_audience or None)
        )
    if settings.dev:
        _require_loopback(settings.host)
        hmac_keys.append(HmacKey(dev_secret(settings.secret_path).encode()))
    oidc = _oidc(settings) if settings.jwks_url else None
    if not hmac_keys and oidc is None:
        raise IdentityConfigError(NOTHING_CONFIGURED)
    return TokenVerifier(hmac_keys, oidc)


def issue_local_token(settings: Settings, org_id: str, role: str, user: str, teams: tuple[str, ...] = (),
                      ttl_s: int = 8 * 3600) -> str:  # fmt: skip
    """A token for `agentdash token`: signed with --jwt-secret (and its iss/aud) when set, else with the dev secret."""
    if not settings.jwt_secret:
        return issue_token(dev_secret(settings.secret_path), org_id, role, user, teams, ttl_s)
    _checked_secret(settings.jwt_secret)
    return issue_token(settings.jwt_secret, org_id, role, user, teams, ttl_s,
                       issuer=settings.jwt_issuer or None, audience=settings.jwt_audience or None)  # fmt: skip


def _checked_secret(secret: str) -> bytes:
    encoded = secret.encode()
    if len(encoded) < MIN_SECRET_BYTES:
        raise IdentityConfigError(
            f"--jwt-secret (AGENTDASH_JWT_SECRET) must be at least {MIN_SECRET_BYTES} bytes, got {len(encoded)}: "
            "a short HS256 secret can be guessed offline from any token"
        )
    return encoded


def _require_loopback(host: str) -> None:
    try:
        loopback = host in LOOPBACK_NAMES or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise IdentityConfigError(
            f"--dev lets anyone sign in as anyone, so it is refused unless --host is loopback "
            f"(127.0.0.1, ::1 or localhost), not {host!r}; configure --jwks-url or --jwt-secret instead"
        )


def _oidc(settings: Settings) -> OidcProvider:
    # An ID token's `aud` is the client id, so signing in with the provider needs no separate audience.
    audience = settings.jwt_audience or settings.oidc_client_id
    if not settings.jwt_issuer or not audience:
        raise IdentityConfigError(
            "--jwks-url needs --jwt-issuer and --jwt-audience (or --oidc-client-id) too (AGENTDASH_JWT_ISSUER, "
            "AGENTDASH_JWT_AUDIENCE): without them a token your provider issued for another application would be accepted"
        )
    try:
        keys = JwksKeys(settings.jwks_url)
    except ValueError as exc:
        raise IdentityConfigError(str(exc)) from None
    return OidcProvider(keys, settings.jwt_issuer, audience)
