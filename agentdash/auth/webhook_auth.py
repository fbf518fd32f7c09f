"""Who may deliver GitHub webhooks: the sender of a delivery is whoever holds the secret linked to its repository's
owner (or to that one repo); `X-Hub-Signature-256` is the HMAC-SHA256 of the raw body under that secret."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable
from typing import NoReturn

from agentdash.auth.failure_limiter import FailureLimiter, Throttled
from agentdash.auth.ingest_keys import valid_orgs
from agentdash.config import Settings
from agentdash.storage import GithubLink, GithubLinkStore, LinkSecret, open_github_links

log = logging.getLogger("agentdash.ingest")

REFRESH_S = 1.0  # a removed link stops working within this long
SIGNATURE_PREFIX = "sha256="
SECRET_BYTES = 32  # what --generate-secret makes
MIN_SECRET_CHARS = 16  # a short secret could be guessed through the signature; GitHub itself sets no minimum
# GitHub's rules: owners are 1-39 letters, digits and single hyphens; repos 1-100 letters, digits, '.', '-', '_'.
_OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")
_REPO = re.compile(r"[A-Za-z0-9._-]{1,100}")


class NotLinked(Exception):
    """No agentdash org is linked to the delivery's GitHub owner or repo (HTTP 404); nothing could authenticate it."""


class BadSignature(Exception):
    """`X-Hub-Signature-256` is missing or is not the body's HMAC under the linked secret (HTTP 401)."""


def parse_target(text: str) -> tuple[str, str]:
    """`OWNER` or `OWNER/REPO` as (owner, repo), lower case (GitHub names are case-insensitive); repo "" = all."""
    owner, _, repo = text.strip().partition("/")
    if not _OWNER.fullmatch(owner):
        raise ValueError(f"{owner!r} is not a GitHub owner (a user or organization login: letters, digits, '-')")
    if "/" in text.strip() and not _REPO.fullmatch(repo):
        raise ValueError(f"{repo!r} is not a GitHub repository name (letters, digits, '.', '-', '_')")
    return owner.lower(), repo.lower()


def make_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def link_github(store: GithubLinkStore, org_id: str, owner: str, repo: str, secret: str) -> tuple[GithubLink, bool]:
    """Validate and store a link (True when it replaced one); the secret is kept in plain text, never shown again."""
    (org,) = valid_orgs([org_id])
    owner, repo = parse_target(f"{owner}/{repo}" if repo else owner)
    if len(secret) < MIN_SECRET_CHARS:
        raise ValueError(f"the webhook secret must be at least {MIN_SECRET_CHARS} characters "
                         "(or let --generate-secret make one)")  # fmt: skip
    if secret != secret.strip() or any(ord(c) < 32 for c in secret):
        raise ValueError("the webhook secret must not contain spaces at its ends or control characters")
    return store.link(owner, repo, org, secret)


def link_table(links: list[GithubLink]) -> str:
    """`github list` output: one aligned row per link, never a secret."""
    header = ("OWNER", "REPO", "ORG", "CREATED (UTC)")
    rows = [header] + [(k.owner, k.repo or "*", k.org_id, f"{k.created_at:%Y-%m-%d %H:%M:%S}") for k in links]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def signature(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for this body under this secret."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header: str) -> bool:
    # Bytes, not str: compare_digest refuses non-ASCII text, and a header may hold anything. Constant time.
    return hmac.compare_digest(signature(secret, body).encode(), header.strip().lower().encode("utf-8", "replace"))


class LinkedSecrets:
    """The store's links in memory, by (owner, repo): a delivery never touches the database.

    Reloaded whole at most once a second (a handful of rows), and at once for an owner not yet known, so a link made
    a moment ago works immediately.
    """

    def __init__(self, store: GithubLinkStore, clock: Callable[[], float] = time.monotonic) -> None:
        self._store, self._clock = store, clock
        self._links: dict[tuple[str, str], LinkSecret] = {}
        self._loaded_at = float("-inf")
        self._reload()

    def __len__(self) -> int:
        return len(self._links)

    def find(self, owner: str, repo: str, look_again: bool = True) -> LinkSecret | None:
        """The link of this repo, else of its owner (case-insensitive); None when neither is linked."""
        stale = self._clock() - self._loaded_at >= REFRESH_S
        if stale:
            self._reload()
        link = self._lookup(owner.lower(), repo.lower())
        if link is None and not stale and look_again:  # only unthrottled failing deliveries get here
            self._reload()
            link = self._lookup(owner.lower(), repo.lower())
        return link

    def close(self) -> None:
        self._store.close()

    def _lookup(self, owner: str, repo: str) -> LinkSecret | None:
        return (self._links.get((owner, repo)) if repo else None) or self._links.get((owner, ""))

    def _reload(self) -> None:
        self._loaded_at = self._clock()
        try:
            self._links = {(link.owner, link.repo): link for link in self._store.secrets()}
        except Exception:  # keep the last good set; the next second tries again
            log.exception("could not reload GitHub links")


class WebhookAuth:
    """Checks a delivery's signature against its link; bad signatures count in a FailureLimiter like bad keys."""

    def __init__(self, links: LinkedSecrets, limiter: FailureLimiter | None = None) -> None:
        self.links = links
        self.limiter = limiter or FailureLimiter()

    def require_signature(self, header: str | None, client: str) -> str:
        """The signature header, checked before the body is parsed; raises BadSignature or Throttled."""
        if header and header.strip().lower().startswith(SIGNATURE_PREFIX):
            return header
        problem = "missing X-Hub-Signature-256: set a Secret in the webhook's settings on GitHub"
        if header:
            problem = "X-Hub-Signature-256 must be 'sha256=<hex HMAC-SHA256 of the body>'"
        self._refuse(BadSignature(problem), client)

    def verify(self, owner: str, repo: str, body: bytes, header: str, client: str) -> LinkSecret:
        """The link whose secret signed this body; raises NotLinked, BadSignature or Throttled."""
        wait = self.limiter.retry_after(client)
        target = f"{owner}/{repo}" if repo else owner
        link = self.links.find(owner, repo, look_again=not wait)
        if link is None:
            self._refuse(NotLinked(f"GitHub {target!r} is not linked to an agentdash org: run agentdash github link "
                                   f"--org ORG --owner {owner} --secret - (the webhook's secret on stdin)"), client)  # fmt: skip
        if not signature_matches(link.secret, body, header):
            self._refuse(BadSignature(f"X-Hub-Signature-256 does not match the body under the secret linked to "
                                      f"{link.owner}{'/' + link.repo if link.repo else ''}"), client)  # fmt: skip
        return link

    def close(self) -> None:
        self.links.close()

    def _refuse(self, error: Exception, client: str) -> NoReturn:
        """Raise `error`, or Throttled for a client over its budget; count and log the failure (never a secret)."""
        if wait := self.limiter.retry_after(client):  # not logged again: logged when the client crossed the limit
            raise Throttled(f"too many refused GitHub deliveries from {client}; retry in {wait} s", wait) from None
        log.info("github webhook: refused a delivery from %s: %s", client, error)
        self.limiter.failed(client)
        if self.limiter.retry_after(client):
            log.warning("github webhook: %d refused deliveries from %s (last: %s); refusing it for up to %.0f s",
                        self.limiter.limit, client, error, self.limiter.window_s)  # fmt: skip
        raise error


def open_webhook_auth(settings: Settings) -> WebhookAuth:
    """Webhook auth on the backend's link store; signatures are checked even with --insecure-ingest (the link names
    the org)."""
    links = LinkedSecrets(open_github_links(settings))
    log.info("ingest: %d GitHub links", len(links))
    return WebhookAuth(links)
