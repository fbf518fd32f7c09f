"""Source counts in PostgreSQL: the tables every worker's source keeper adds to."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import psycopg

from agentdash.storage.postgres.connections import connect, store_connection
from agentdash.storage.postgres.errors import translated
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

SQL = load_queries("postgres_sources", pyformat=True)


class PostgresSourceStore(SourceStore):
    """One autocommit connection behind a lock, opened again after it was lost (the keeper retries next tick)."""

    @translated
    def __init__(self, url: str) -> None:
        self._url = url
        self._db = store_connection(url, SQL.statements("schema"))
        self._lock = threading.Lock()

    @translated
    def add(self, counts: Iterable[SourceCount], users: SeenUsers) -> None:
        records, reasons, people = add_params(counts, users)
        with self._lock:
            db = self._connection()
            with db.transaction(), db.cursor() as cursor:
                for name, params in (("add_record", records), ("add_reason", reasons), ("add_person", people)):
                    if params:
                        cursor.executemany(SQL.statement(name), params)

    @translated
    def sources(self, org_id: str) -> SourcesReport:
        params = {"org_id": org_id, "most": MAX_PEOPLE_LISTED}
        with self._lock:
            db = self._connection()
            with db.transaction():
                db.execute(SQL.statement("snapshot"))
                rows = [db.execute(SQL.statement(name), params).fetchall()
                        for name in ("records", "versions", "reasons", "people")]  # fmt: skip
        return sources_report(org_id, *rows)

    @translated
    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _connection(self) -> psycopg.Connection:
        if self._db.broken or self._db.closed:
            self._db = connect(self._url, autocommit=True)
        return self._db
