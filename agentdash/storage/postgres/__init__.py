"""The PostgreSQL backend: log, read models and ingest keys in one database that several servers share."""

from __future__ import annotations

from agentdash.storage.postgres.key_store import PostgresIngestKeyStore
from agentdash.storage.postgres.storage import PostgresStorage

__all__ = ["PostgresIngestKeyStore", "PostgresStorage"]
