"""Who may write events: the request's Bearer ingest key, checked against the active keys held in memory."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

from agentdash.auth.failure_limiter import FailureLimiter, Throttled
from agentdash.auth.ingest_keys import MalformedKey, parse_key, secret_matches
from agentdash.config import Settings
from agentdash.storage import ActiveKey, IngestKeyStore, open_ingest_keys

log = logging.getLogger("agentdash.ingest")

REFRESH_S = 1.0  # a revoked key stops working within this long


class Unauthenticated(Exception):
    """No usable ingest key; the message names the problem and never the key (HTTP 401)."""


class ActiveKeys:
    """The store's active keys by id, in memory: a request with a known key never touches the database.

    A full reload (not a change counter) because there are a handful of keys and one small query a second costs nothing.
    """

    def __init__(self, store: IngestKeyStore, clock: Callable[[], float] = time.monotonic) -> None:
        self._store, self._clock = store, clock
        self._keys: dict[str, ActiveKey] = {}
        self._loaded_at = float("-inf")
        self._reload()

    def __len__(self) -> int:
        return len(self._keys)

    def find(self, key_id: str, look_again: bool = True) -> ActiveKey | None:
        """The active key with this id: revocations show within REFRESH_S, new keys at once (unless not `look_again`:
        a throttled client's unknown ids must not reach the database)."""
        stale = self._clock() - self._loaded_at >= REFRESH_S
        if stale:
            self._reload()
        key = self._keys.get(key_id)
        if key is None and not stale and look_again:
            # Perhaps created a moment ago: look again rather than refuse it for up to a second. Only failing
            # requests of unthrottled clients get here, and the FailureLimiter caps those, so this cannot be a flood.
            self._reload()
            key = self._keys.get(key_id)
        return key

    def close(self) -> None:
        self._store.close()

    def _reload(self) -> None:
        self._loaded_at = self._clock()
        try:
            self._keys = {key.id: key for key in self._store.active_keys()}
        except Exception:  # keep the last good set; the next second tries again
            log.exception("could not reload ingest keys")


class IngestAuth:
    """Checks a request's Authorization header; `keys=None` is insecure mode (anyone may write any org)."""

    def __init__(self, keys: ActiveKeys | None, limiter: FailureLimiter | None = None) -> None:
        self.keys = keys
        self.limiter = limiter or FailureLimiter()

    def writer(self, authorization: str | None, client: str) -> ActiveKey | None:
        """The key the request writes with (None in insecure mode). Raises Throttled or Unauthenticated.

        A valid key is accepted even from a throttled address: behind NAT or a proxy, other clients' failures must
        not lock its owner out, and a 256-bit secret leaves nothing to guess.
        """
        if self.keys is None:
            return None
        wait = self.limiter.retry_after(client)
        try:
            return self._verify(authorization, look_again=not wait)
        except Unauthenticated as exc:
            if wait:  # not logged again: the client was logged when it crossed the limit
                raise Throttled(f"too many failed ingest key attempts from {client}; retry in {wait} s", wait) from None
            self._failed(client, str(exc))
            raise

    def close(self) -> None:
        if self.keys is not None:
            self.keys.close()

    def _verify(self, authorization: str | None, look_again: bool) -> ActiveKey:
        assert self.keys is not None
        if not authorization:
            raise Unauthenticated("missing Authorization: Bearer <ingest key>")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <ingest key>'")
        try:
            key_id, secret = parse_key(token.strip())
        except MalformedKey as exc:
            raise Unauthenticated(str(exc)) from None
        key = self.keys.find(key_id, look_again)
        # One answer for an unknown id and a wrong secret: a caller cannot tell which part was wrong.
        if key is None or not secret_matches(secret, key.secret_sha256):
            raise Unauthenticated("unknown or revoked ingest key")
        return key

    def _failed(self, client: str, reason: str) -> None:
        # One line per failure is bounded: after `limit` failures the client is throttled, and that is not logged.
        log.info("ingest: refused a write from %s: %s", client, reason)  # the reason never quotes the key
        self.limiter.failed(client)
        if self.limiter.retry_after(client):  # log once, when the client crosses the limit, not per request
            log.warning("ingest: %d failed key attempts from %s (last: %s); refusing it for up to %.0f s",
                        self.limiter.limit, client, reason, self.limiter.window_s)  # fmt: skip


def open_ingest_auth(settings: Settings) -> IngestAuth:
    """Ingest auth as configured; insecure mode announces itself loudly."""
    if settings.insecure_ingest:
        warn_insecure(settings)
        return IngestAuth(None)
    keys = ActiveKeys(open_ingest_keys(settings))
    if len(keys):
        log.info("ingest: %d active ingest keys", len(keys))
    else:
        log.warning("ingest: no active ingest keys yet; POST /v1/events answers 401 until one is created "
                    "(agentdash ingest-key create --org ORG)")  # fmt: skip
    return IngestAuth(keys)


def warn_insecure(settings: Settings) -> None:
    where = f"http://{settings.ingest_host}:{settings.ingest_port}/v1/events"
    banner = [
        "*" * 78,
        "WARNING: INGEST AUTHENTICATION IS OFF (--insecure-ingest / AGENTDASH_INSECURE_INGEST).",
        f"WARNING: anyone who can reach {where} may write events for ANY org.",
        "WARNING: use this for local experiments only; producers should send an ingest key:",
        "WARNING:     agentdash ingest-key create --org ORG",
        "*" * 78,
    ]
    sys.stderr.write("\n".join(banner) + "\n")
    sys.stderr.flush()
    log.warning("ingest authentication is OFF (--insecure-ingest): any caller may write events for any org")
