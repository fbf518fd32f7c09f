"""Ingest keys in SQLite: a small file of its own in the data dir, shared by the server and the CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from agentdash.storage.embedded.errors import translated
from agentdash.storage.key_store import ActiveKey, IngestKey, IngestKeyError, IngestKeyStore
from agentdash.storage.queries import load_queries

SQL = load_queries("sqlite_ingest_keys")


class SqliteIngestKeyStore(IngestKeyStore):
    """One connection, no lock held between calls, so a server and `agentdash ingest-key` can share the file."""

    @translated
    def __init__(self, path: Path) -> None:
        _create_private(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        self._db.execute(SQL.statement("connect"))
        self._db.execute(SQL["schema"])
        self._lock = threading.Lock()

    @translated
    def add(self, key_id: str, name: str, orgs: tuple[str, ...], secret_sha256: bytes) -> IngestKey:
        params = {"id": key_id, "name": name, "orgs": json.dumps(list(orgs)), "secret_sha256": secret_sha256,
                  "created_us": time.time_ns() // 1000}  # fmt: skip
        with self._lock:
            self._db.execute(SQL["add"], params)
        return self._get(key_id)

    @translated
    def list_keys(self) -> list[IngestKey]:
        with self._lock:
            return [_key(row) for row in self._db.execute(SQL["list_keys"])]

    @translated
    def revoke(self, key_id: str) -> IngestKey:
        with self._lock:
            revoked = self._db.execute(SQL["revoke"], {"id": key_id, "revoked_us": time.time_ns() // 1000}).rowcount
        key = self._get(key_id)
        if not revoked:
            raise IngestKeyError(
                f"ingest key {key_id!r} is already revoked (since {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC)"
            )
        return key

    @translated
    def active_keys(self) -> list[ActiveKey]:
        with self._lock:
            rows = self._db.execute(SQL["active_keys"]).fetchall()
        return [ActiveKey(key_id, frozenset(json.loads(orgs)), bytes(digest)) for key_id, orgs, digest in rows]

    @translated
    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _get(self, key_id: str) -> IngestKey:
        with self._lock:
            row = self._db.execute(SQL["get_key"], {"id": key_id}).fetchone()
        if row is None:
            raise IngestKeyError(f"no ingest key with id {key_id!r}")
        return _key(row)


def _key(row: tuple) -> IngestKey:
    key_id, name, orgs, created_us, revoked_us = row
    return IngestKey(key_id, name, tuple(json.loads(orgs)), _utc(created_us), _utc(revoked_us) if revoked_us else None)


def _utc(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, tz=UTC)


def _create_private(path: Path) -> None:
    # Only hashes live here, but whoever can write this file can add keys: owner-only, like the dev secret.
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
