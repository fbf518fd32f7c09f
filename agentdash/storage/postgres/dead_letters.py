"""Dead letters in PostgreSQL: the table every worker's fold skips and `agentdash dlq --database-url` edits."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import psycopg

from agentdash.storage.dead_letters import Burial, DeadLetter, DeadLetterError, DeadLetterStore
from agentdash.storage.postgres.connections import connect, store_connection
from agentdash.storage.postgres.errors import translated
from agentdash.storage.queries import load_queries

SQL = load_queries("postgres_dead_letters", pyformat=True)


class PostgresDeadLetterStore(DeadLetterStore):
    """One autocommit connection behind a lock; each call is one statement or transaction."""

    @translated
    def __init__(self, url: str) -> None:
        self._url = url
        self._db = store_connection(url, SQL.statements("schema"))
        self._lock = threading.Lock()

    @translated
    def bury(self, burial: Burial) -> None:
        params = {"seq": burial.seq, "org_id": burial.org_id, "event_id": burial.event_id, "type": burial.type,
                  "error": burial.error, "failed_us": time.time_ns() // 1000}  # fmt: skip
        with self._lock:
            self._execute("bury", params)

    @translated
    def unbury(self, seq: int) -> None:
        with self._lock:
            self._execute("unbury", {"seq": seq})

    @translated
    def list_letters(self, include_dropped: bool = False) -> list[DeadLetter]:
        with self._lock:
            return [_letter(row) for row in self._execute("list_letters", {"include_dropped": include_dropped})]

    @translated
    def skipped(self, after_seq: int, last_seq: int) -> set[int]:
        with self._lock:
            return {seq for (seq,) in self._execute("skipped", {"after_seq": after_seq, "last_seq": last_seq})}

    @translated
    def request_retry(self, seqs: list[int] | None = None) -> list[DeadLetter]:
        if seqs is None:
            with self._lock:
                return sorted((_letter(row) for row in self._execute("mark_all_retry", {})), key=lambda d: d.seq)
        return self._each("mark_retry", seqs, {})

    @translated
    def to_retry(self) -> list[int]:
        with self._lock:
            return [seq for (seq,) in self._execute("to_retry", {})]

    @translated
    def forget(self, seqs: list[int]) -> None:
        with self._lock:
            self._execute("forget", {"seqs": seqs})

    @translated
    def drop(self, seqs: list[int]) -> list[DeadLetter]:
        return self._each("drop", seqs, {"dropped_us": time.time_ns() // 1000})

    @translated
    def count(self, org_id: str | None = None) -> int:
        with self._lock:
            row = self._execute("count", {"org_id": org_id}).fetchone()
        assert row is not None, "count returns one row"
        return row[0]

    @translated
    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _each(self, name: str, seqs: list[int], params: dict) -> list[DeadLetter]:
        """Run a one-row statement per seq in one transaction; any seq it does not match undoes them all."""
        with self._lock, self._connection().transaction():
            letters = []
            for seq in seqs:
                row = self._execute(name, {"seq": seq, **params}).fetchone()
                if row is None:
                    raise DeadLetterError(f"no dead letter {seq} (see agentdash dlq list)")
                letters.append(_letter(row))
        return letters

    def _execute(self, name: str, params: dict) -> psycopg.Cursor:
        statement = SQL.statement(name)
        return self._connection().execute(statement, {k: v for k, v in params.items() if f"%({k})s" in statement})

    def _connection(self) -> psycopg.Connection:
        # Opened again after it was lost: the projector's next look-up works once the database is back.
        if self._db.broken or self._db.closed:
            self._db = connect(self._url, autocommit=True)
        return self._db


def _letter(row: tuple) -> DeadLetter:
    seq, org_id, event_id, type_, error, failed_us, attempts, state = row
    return DeadLetter(seq, org_id, event_id, type_, error, datetime.fromtimestamp(failed_us / 1e6, tz=UTC), attempts,
                      state)  # fmt: skip
