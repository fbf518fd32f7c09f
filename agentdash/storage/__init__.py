"""Storage backends behind one interface; `open_storage` and `open_ingest_keys` pick one from the settings."""

from __future__ import annotations

from agentdash.config import Settings
from agentdash.storage.base import Overloaded, Storage, StorageInUse
from agentdash.storage.ingest_keys import ActiveKey, IngestKey, IngestKeyError, IngestKeyStore

__all__ = ["ActiveKey", "IngestKey", "IngestKeyError", "IngestKeyStore", "Overloaded", "Storage", "StorageInUse",
           "open_ingest_keys", "open_storage"]


def open_storage(settings: Settings) -> Storage:
    """The one place that chooses a backend (a Postgres backend joins here)."""
    from agentdash.storage.embedded import EmbeddedStorage

    return EmbeddedStorage(settings)


def open_ingest_keys(settings: Settings) -> IngestKeyStore:
    """The ingest key store of the data dir; it takes no lock, so it opens while a server runs."""
    from agentdash.storage.sqlite_keys import SqliteIngestKeyStore

    return SqliteIngestKeyStore(settings.ingest_keys_path)
