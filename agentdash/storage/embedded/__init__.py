"""The embedded backend: the event log in SQLite, the read models in DuckDB, ingest keys in their own SQLite file."""

from __future__ import annotations

from agentdash.storage.embedded.key_store import SqliteIngestKeyStore
from agentdash.storage.embedded.storage import EmbeddedStorage

__all__ = ["EmbeddedStorage", "SqliteIngestKeyStore"]
