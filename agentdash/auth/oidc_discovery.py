"""Where an OIDC provider signs people in: its discovery document, fetched on first use and cached."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

log = logging.getLogger(__name__)

WELL_KNOWN = "/.well-known/openid-configuration"


class DiscoveryFailed(Exception):
    """The provider's endpoints are not known; `reason` is the sign-in page's reason for it."""

    reason = "unavailable"


class ProviderMisconfigured(DiscoveryFailed):
    """The discovery document contradicts our settings: retrying will not help, an admin must act."""

    reason = "misconfigured"


@dataclass(frozen=True)
class Endpoints:
    authorization: str
    token: str
    token_auth_methods: tuple[str, ...]  # how the token endpoint lets clients authenticate


class Discovery:
    """`{issuer}/.well-known/openid-configuration`, kept for `max_age_s` and still used while a refetch fails.

    At most one fetch per `min_fetch_gap_s`, so a provider that is down costs it (and the person waiting) one
    timeout per gap rather than one per click.
    """

    def __init__(self, issuer: str, jwks_url: str, http: httpx.Client, max_age_s: float = 3600.0,
                 min_fetch_gap_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.issuer, self.jwks_url, self._http = issuer, jwks_url, http
        self.url = issuer.rstrip("/") + WELL_KNOWN
        self.max_age_s, self.min_fetch_gap_s, self._clock = max_age_s, min_fetch_gap_s, clock
        self._endpoints: Endpoints | None = None
        self._error: DiscoveryFailed = DiscoveryFailed("the provider's discovery document was never fetched")
        self._fetched_at = self._tried_at = -math.inf
        self._lock = threading.Lock()

    def endpoints(self) -> Endpoints:
        """The provider's endpoints; DiscoveryFailed (why, for the log) when they are not known."""
        with self._lock:
            now = self._clock()
            if now - self._fetched_at >= self.max_age_s and now - self._tried_at >= self.min_fetch_gap_s:
                self._tried_at = now
                try:
                    self._endpoints, self._fetched_at = self._fetch(), now
                except DiscoveryFailed as exc:
                    self._error = exc
                    log.warning("%s", exc)
            if self._endpoints is None:
                raise self._error
            return self._endpoints

    def _fetch(self) -> Endpoints:
        try:
            answer = self._http.get(self.url, headers={"Accept": "application/json"})
            answer.raise_for_status()
            document = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise DiscoveryFailed(f"fetching the OIDC discovery document {self.url} failed: {exc}") from None
        if not isinstance(document, dict):
            raise ProviderMisconfigured(f"the OIDC discovery document {self.url} is not a JSON object")
        return self._checked(document)

    def _checked(self, document: dict) -> Endpoints:
        if document.get("issuer") != self.issuer:
            # OIDC Discovery §4.3: must match exactly, and every ID token's `iss` is checked against it too.
            raise ProviderMisconfigured(
                f"the OIDC discovery document {self.url} names the issuer {document.get('issuer')!r}, but --jwt-issuer "
                f"is {self.issuer!r}: set --jwt-issuer to exactly the provider's issuer"
            )
        authorization, token = document.get("authorization_endpoint"), document.get("token_endpoint")
        if not _is_url(authorization) or not _is_url(token):
            raise ProviderMisconfigured(
                f"the OIDC discovery document {self.url} lacks authorization_endpoint or token_endpoint"
            )
        if document.get("jwks_uri") not in (None, self.jwks_url):
            # A warning, not a refusal: tokens are verified with --jwks-url, which may rightly be a mirror or an
            # internal address; but a mismatch is more often a wrong tenant, which shows as unknown keys.
            log.warning("the provider publishes its keys at %s but --jwks-url is %s; tokens are verified with --jwks-url",
                        document.get("jwks_uri"), self.jwks_url)  # fmt: skip
        methods = document.get("token_endpoint_auth_methods_supported")
        methods = tuple(m for m in methods if isinstance(m, str)) if isinstance(methods, list) else ()
        return Endpoints(str(authorization), str(token), methods)


def _is_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))
