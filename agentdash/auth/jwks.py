"""The public signing keys of an OIDC identity provider, fetched from its JWKS URL and cached by `kid`."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWKClientError, PyJWTError

log = logging.getLogger(__name__)

# The only keys we accept, and the one algorithm each may verify: a token's header never picks another.
ALGORITHM_OF = {("RSA", None): "RS256", ("EC", "P-256"): "ES256"}


class KeysUnavailable(Exception):
    """The provider's key set could not be fetched or held no usable key."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str  # the only algorithm this key verifies
    key: object = field(repr=False)


class JwksKeys:
    """Keys by `kid`, refetched when older than `max_age_s` or when a token names an unknown `kid`.

    At most one fetch per `min_fetch_gap_s`, whatever the cause: a flood of bogus kids or an unreachable
    provider costs the provider one request per gap, and a rotated key is picked up within one gap.
    """

    def __init__(self, url: str, max_age_s: float = 300.0, min_fetch_gap_s: float = 10.0, timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        try:
            self._client = PyJWKClient(url, cache_jwk_set=False, timeout=timeout_s)
        except PyJWKClientError as exc:
            raise ValueError(f"--jwks-url {url!r} is not usable: {exc}") from None
        self.url, self.max_age_s, self.min_fetch_gap_s, self._clock = url, max_age_s, min_fetch_gap_s, clock
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at = -math.inf  # last successful fetch
        self._tried_at = -math.inf  # last attempt, successful or not
        self._lock = threading.Lock()

    def key(self, kid: str) -> SigningKey | None:
        """The key named `kid`, or None when the provider does not publish it."""
        with self._lock:
            stale = self._clock() - self._fetched_at >= self.max_age_s
            if (stale or kid not in self._keys) and self._clock() - self._tried_at >= self.min_fetch_gap_s:
                self._fetch()
            if self._fetched_at == -math.inf:
                raise KeysUnavailable("the identity provider's keys could not be fetched; try again shortly")
            return self._keys.get(kid)

    def _fetch(self) -> None:
        self._tried_at = self._clock()
        try:
            published = self._client.fetch_data().get("keys")
        except (
            PyJWTError,
            ValueError,
            OSError,
        ) as exc:  # keep serving the keys we have; the log says why the refresh failed
            log.warning("fetching the JWKS from %s failed: %s", self.url, exc)
            return
        if not isinstance(published, list):
            log.warning("the JWKS at %s has no `keys` list", self.url)
            return
        self._keys = {key.kid: key for key in map(_signing_key, published) if key}
        self._fetched_at = self._tried_at
        if not self._keys:
            log.warning("the JWKS at %s holds no RS256 or ES256 signing key with a kid", self.url)


def _signing_key(jwk: object) -> SigningKey | None:
    """An RSA or P-256 signing key with a kid, pinned to its algorithm; None for anything else."""
    if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or jwk.get("use", "sig") != "sig":
        return None
    kty, crv = jwk.get("kty"), jwk.get("crv")
    algorithm = ALGORITHM_OF.get((kty, crv)) if isinstance(kty, str) and isinstance(crv, str | None) else None
    if algorithm is None or jwk.get("alg", algorithm) != algorithm:
        return None
    try:
        return SigningKey(jwk["kid"], algorithm, PyJWK(jwk, algorithm).key)
    except PyJWTError:
        log.warning("skipping the malformed JWKS key %r", jwk["kid"])
        return None
