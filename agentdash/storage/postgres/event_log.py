"""The event log in PostgreSQL: a writer thread per process with group commit, seq in commit order."""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from typing import Any

import psycopg
from msgspec.structs import astuple

from agentdash.events import Event
from agentdash.storage.archive import month_of
from agentdash.storage.base import LogFootprint, LoggedEvent, LogPosition, Overloaded, Unavailable, caused_by
from agentdash.storage.group_commit import GroupCommitWriter, Pending
from agentdash.storage.postgres.archive import ensure_partitions, next_month
from agentdash.storage.postgres.connections import ConnectionPool, connect
from agentdash.storage.postgres.errors import domain_error, short_of
from agentdash.storage.queries import load_queries

log = logging.getLogger(__name__)

SQL = load_queries("postgres", pyformat=True)
EVENT_FIELDS = tuple(Event.__struct_fields__)


class PostgresEventLog:
    """Appends from one thread per process; several processes append to one table without gaps or reordering.

    Every append transaction takes the log's advisory lock, computes seq from max(seq) and holds the lock
    until COMMIT, so transactions (of every process) become visible in seq order.
    """

    def __init__(self, url: str, readers: ConnectionPool, queue_limit: int = 64) -> None:
        self._url = url
        self._readers = readers
        self._db: psycopg.Connection | None = None
        self._months: set[str] = set()  # months whose partition this process has seen (archive.ensure_partitions)
        self._writer = GroupCommitWriter(self._try_write, queue_limit)  # last: it starts writing at once

    # -- writing -------------------------------------------------------------------------------

    def submit(self, events: list[Event]) -> Future[list[bool]]:
        return self._writer.submit(events)

    def close(self) -> None:
        self._writer.close()
        if self._db is not None:
            self._db.close()

    def _try_write(self, pending: list[Pending]) -> bool:
        """Commit the batches in one transaction; on failure set the error only when alone."""
        events = [event for batch, _ in pending for event in batch]
        try:
            db = self._connection()
            columns = _columns(events)
            month = month_of(columns["received_us"])
            with db.transaction():
                db.execute(SQL.statement("lock_log"))
                if month not in self._months:  # its partition, and the next month's ahead of the turn
                    ensure_partitions(db, month, next_month(month))
                stored = {
                    (org_id, event_id) for org_id, event_id in db.execute(SQL.statement("append_events"), columns)
                }
            self._months.add(month)
        except Exception as exc:  # nothing of these batches is acknowledged
            if len(pending) == 1:
                log.exception("event log write failed")
                pending[0][1].set_exception(_for_producer(exc))
            return False
        seen: set[tuple[str, str]] = set()  # shared: a copy in a later batch of the group is a duplicate too
        for batch, future in pending:
            future.set_result(_first_copies(batch, stored, seen))
        return True

    def _connection(self) -> psycopg.Connection:
        if self._db is None or self._db.broken or self._db.closed:
            self._db = connect(self._url)  # after a lost connection, the next batch reconnects
        return self._db

    # -- reading -------------------------------------------------------------------------------

    def position(self, after_seq: int = 0) -> LogPosition:
        with self._readers.connection() as db:
            last_seq, oldest = _first(db.execute(SQL.statement("log_position"), {"after_seq": after_seq}))
        return LogPosition(last_seq=last_seq, oldest_unfolded_received_us=oldest)

    def footprint(self) -> LogFootprint:
        with self._readers.connection() as db:
            return LogFootprint(*_first(db.execute(SQL.statement("log_footprint"))))

    def end(self, after_seq: int, limit: int) -> int:
        """The last seq of the next chunk of at most `limit` entries (after_seq when there are none)."""
        with self._readers.connection() as db:
            return _first(db.execute(SQL.statement("log_end"), {"after_seq": after_seq, "limit": limit}))[0]

    def entries(self, after_seq: int, limit: int) -> list[LoggedEvent]:
        with self._readers.connection() as db:
            rows = db.execute(SQL.statement("log_entries"), {"after_seq": after_seq, "limit": limit}).fetchall()
        return [LoggedEvent(seq, received_us, Event(*fields)) for seq, received_us, *fields in rows]


def _first(cursor: psycopg.Cursor) -> tuple:
    row = cursor.fetchone()
    assert row is not None, "an aggregate query returns one row"
    return row


def _for_producer(exc: Exception) -> Exception:
    """A lost or unreachable database is a reason to retry (503), like a full queue; anything else stays itself."""
    error = domain_error(exc)
    # A server short of disk or memory is up: its own Unavailable says what it lacks (a full disk is not "unreachable").
    if isinstance(error, Unavailable) and short_of(exc) is None:
        return caused_by(
            Overloaded(f"the event log database is unreachable; retry shortly ({type(exc).__name__})"), error
        )
    return error


def _columns(events: list[Event]) -> dict[str, Any]:
    """One array parameter per event field (unnest turns them back into rows); money as exact decimals."""
    rows = [astuple(e) for e in events]
    columns: dict[str, list] = {name: [row[i] for row in rows] for i, name in enumerate(EVENT_FIELDS)}
    columns["cost_usd"] = [repr(cost) for cost in columns["cost_usd"]]
    return {**columns, "received_us": time.time_ns() // 1000}


def _first_copies(batch: list[Event], stored: set[tuple[str, str]], seen: set[tuple[str, str]]) -> list[bool]:
    """True for the events this transaction stored, at their first copy; marks them seen."""
    result = []
    for event in batch:
        identity = (event.org_id, event.id)
        result.append(identity in stored and identity not in seen)
        seen.add(identity)
    return result
