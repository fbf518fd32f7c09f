"""The ingest key store interface: who may write events for which orgs. One backend per module."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime


class IngestKeyError(ValueError):
    """A key operation that cannot be done: an unknown id, or a key already revoked."""


@dataclass(frozen=True)
class IngestKey:
    """A key as listed: everything but its secret, which no store ever holds."""

    id: str
    name: str
    orgs: tuple[str, ...]
    created_at: datetime  # UTC
    revoked_at: datetime | None  # UTC

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class ActiveKey:
    """What checking a request needs: the key's id, the orgs it may write, the SHA-256 of its secret."""

    id: str
    orgs: frozenset[str]
    secret_sha256: bytes


class IngestKeyStore(ABC):
    """Ingest keys, kept as hashes (embedded/key_store.py, postgres/key_store.py).

    A failure of the database raises StorageError (storage.base), never a driver's exception.
    """

    @abstractmethod
    def add(self, key_id: str, name: str, orgs: tuple[str, ...], secret_sha256: bytes) -> IngestKey:
        """Store a new key; the caller made the secret and hands over only its hash."""

    @abstractmethod
    def list_keys(self) -> list[IngestKey]:
        """Every key, revoked ones too, oldest first."""

    @abstractmethod
    def revoke(self, key_id: str) -> IngestKey:
        """Revoke a key for good. Raises IngestKeyError for an unknown or already revoked id."""

    @abstractmethod
    def active_keys(self) -> list[ActiveKey]:
        """The keys that may write now."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""
