"""Ingest keys in PostgreSQL: the table every server and `agentdash ingest-key --database-url` share."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import psycopg

from agentdash.storage.key_store import ActiveKey, IngestKey, IngestKeyError, IngestKeyStore
from agentdash.storage.postgres.connections import store_connection
from agentdash.storage.postgres.errors import translated
from agentdash.storage.queries import load_queries

SQL = load_queries("postgres_ingest_keys", pyformat=True)


class PostgresIngestKeyStore(IngestKeyStore):
    """One autocommit connection; each call is one statement, so servers see a change at their next reload."""

    @translated
    def __init__(self, url: str) -> None:
        self._db = store_connection(url, SQL.statements("schema"))
        self._lock = threading.Lock()

    @translated
    def add(self, key_id: str, name: str, orgs: tuple[str, ...], secret_sha256: bytes) -> IngestKey:
        params = {"id": key_id, "name": name, "orgs": list(orgs), "secret_sha256": secret_sha256,
                  "created_us": time.time_ns() // 1000}  # fmt: skip
        with self._lock:
            self._execute("add", params)
        return self._get(key_id)

    @translated
    def list_keys(self) -> list[IngestKey]:
        with self._lock:
            return [_key(row) for row in self._execute("list_keys", {}).fetchall()]

    @translated
    def revoke(self, key_id: str) -> IngestKey:
        with self._lock:
            revoked = self._execute("revoke", {"id": key_id, "revoked_us": time.time_ns() // 1000}).rowcount
        key = self._get(key_id)
        if not revoked:
            raise IngestKeyError(
                f"ingest key {key_id!r} is already revoked (since {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC)"
            )
        return key

    @translated
    def active_keys(self) -> list[ActiveKey]:
        with self._lock:
            rows = self._execute("active_keys", {}).fetchall()
        return [ActiveKey(key_id, frozenset(orgs), bytes(digest)) for key_id, orgs, digest in rows]

    @translated
    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _get(self, key_id: str) -> IngestKey:
        with self._lock:
            row = self._execute("get_key", {"id": key_id}).fetchone()
        if row is None:
            raise IngestKeyError(f"no ingest key with id {key_id!r}")
        return _key(row)

    def _execute(self, name: str, params: dict) -> psycopg.Cursor:
        return self._db.execute(SQL.statement(name), params)


def _key(row: tuple) -> IngestKey:
    key_id, name, orgs, created_us, revoked_us = row
    return IngestKey(key_id, name, tuple(orgs), _utc(created_us), _utc(revoked_us) if revoked_us else None)


def _utc(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, tz=UTC)
