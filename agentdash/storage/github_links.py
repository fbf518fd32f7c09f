"""The GitHub link store interface: which agentdash org a GitHub owner (or one repo) belongs to, and the webhook
secret its deliveries are signed with. One backend per module."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime


class GithubLinkError(ValueError):
    """A link operation that cannot be done: unlinking an owner or repo that is not linked."""


@dataclass(frozen=True)
class GithubLink:
    """A link as listed: everything but its secret, which is never shown again."""

    owner: str  # lower case: GitHub compares owner and repo names case-insensitively
    repo: str  # "" for every repo of the owner
    org_id: str
    created_at: datetime  # UTC, when the link was made or last replaced

    @property
    def target(self) -> str:
        return f"{self.owner}/{self.repo}" if self.repo else self.owner


@dataclass(frozen=True)
class LinkSecret:
    """What verifying a delivery needs: the link and its webhook secret in plain text (HMAC needs it)."""

    owner: str
    repo: str
    org_id: str
    secret: str = field(repr=False)


class GithubLinkStore(ABC):
    """GitHub links (embedded/github_links.py, postgres/github_links.py).

    A failure of the database raises StorageError (storage.base), never a driver's exception.
    """

    @abstractmethod
    def link(self, owner: str, repo: str, org_id: str, secret: str) -> tuple[GithubLink, bool]:
        """Link an owner (repo "") or one repo to an org with its secret; replaces an existing link of the same
        owner and repo (True when it did), so a secret can be rotated without a gap."""

    @abstractmethod
    def list_links(self) -> list[GithubLink]:
        """Every link, ordered by owner and repo."""

    @abstractmethod
    def unlink(self, owner: str, repo: str) -> GithubLink:
        """Remove a link. Raises GithubLinkError when that owner and repo are not linked."""

    @abstractmethod
    def secrets(self) -> list[LinkSecret]:
        """Every link with its secret, for the server's in-memory copy."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""
