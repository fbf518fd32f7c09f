"""Source counts in SQLite: a small file of its own in the data dir, written by the server's source keeper."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from agentdash.storage.embedded.errors import translated
from agentdash.storage.queries import load_queries
from agentdash.storage.source_store import (
    MAX_PEOPLE_LISTED,
    SeenUsers,
    SourceCount,
    SourcesReport,
    SourceStore,
    add_params,
    sources_report,
)

SQL = load_queries("sqlite_sources")


class SqliteSourceStore(SourceStore):
    """One connection behind a lock; not the event log's file, so counting never contends with the log writer."""

    @translated
    def __init__(self, path: Path) -> None:
        _create_private(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        self._db.execute(SQL.statement("connect"))
        for statement in SQL.statements("schema"):
            self._db.execute(statement)
        self._lock = threading.Lock()

    @translated
    def add(self, counts: Iterable[SourceCount], users: SeenUsers) -> None:
        records, reasons, people = add_params(counts, users)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(SQL.statement("add_record"), records)
                self._db.executemany(SQL.statement("add_reason"), reasons)
                self._db.executemany(SQL.statement("add_person"), people)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @translated
    def sources(self, org_id: str) -> SourcesReport:
        params = {"org_id": org_id, "most": MAX_PEOPLE_LISTED}
        with self._lock:  # one read transaction: the four queries see the same adds
            self._db.execute("BEGIN")
            try:
                rows = [self._db.execute(SQL.statement(name), params).fetchall()
                        for name in ("records", "versions", "reasons", "people")]  # fmt: skip
            finally:
                self._db.execute("COMMIT")
        return sources_report(org_id, *rows)

    @translated
    def close(self) -> None:
        with self._lock:
            self._db.close()


def _create_private(path: Path) -> None:
    # Owner-only like every file of the data dir: the counts name people (user ids) and orgs.
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
