"""The PostgreSQL backend: event log, read models and ingest keys in one database that several processes share."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from agentdash.events import Event
from agentdash.storage.base import (
    ArchiveReport,
    FoldState,
    LogChunk,
    LogFootprint,
    LoggedEvent,
    LogPosition,
    RestoreReport,
    Storage,
    poison_check,
)
from agentdash.storage.dead_letters import Burial, DeadLetterStore
from agentdash.storage.postgres.archive import PostgresArchive, partition_log
from agentdash.storage.postgres.connections import ConnectionPool, connected
from agentdash.storage.postgres.dead_letters import PostgresDeadLetterStore
from agentdash.storage.postgres.errors import translated
from agentdash.storage.postgres.event_log import PostgresEventLog
from agentdash.storage.postgres.read_models import PostgresReadModels, prepare

# Metric queries run four at a time (metrics._POOL) and request handlers ask for status: enough for both.
READ_CONNECTIONS = 8
# A year's metric sorts (runs by group, DISTINCT ids, percentiles) need ~45 MB; at the server's default 4 MB they
# merge on disk (full-year run_metrics by team: ~25% slower). Per sort, per connection: at most a few hundred MB.
READ_SETTINGS = "-c work_mem=64MB"


class PostgresStorage(Storage):
    """Any number of processes on one database: each appends and reads; folds take turns (advisory lock).

    Every psycopg error leaves here as a StorageError (see errors.py); a lost database is Unavailable.
    """

    @translated
    def __init__(self, url: str, queue_limit: int = 64, poison: Callable[[LoggedEvent], bool] | None = None) -> None:
        """`poison`: tests only, entries a fold must fail on (see base.poison_check)."""
        with connected(url) as db:
            reader = prepare(db)  # None: row-level security is off (logged: the login role may not set it up)
            if partition_log(db):  # an unpartitioned log from before, copied once: the new table's row security
                reader = prepare(db)
        self._dead = PostgresDeadLetterStore(url)  # before any fold: fold_chunk reads its table
        self._readers = ConnectionPool(url, READ_CONNECTIONS, READ_SETTINGS)
        self._log = PostgresEventLog(url, self._readers, queue_limit=queue_limit)
        self._models = PostgresReadModels(url, self._readers, reader)
        self._check = poison_check(poison, self._log.entries)
        self._archive = PostgresArchive(url)

    def submit(self, events: list[Event]) -> Future[list[bool]]:
        return self._log.submit(events)  # the writer hands a failed batch's future a StorageError (lost: Overloaded)

    @translated
    def log_position(self, after_seq: int = 0) -> LogPosition:
        return self._log.position(after_seq)

    @translated
    def footprint(self) -> LogFootprint:
        return self._log.footprint()

    @translated
    def read_log(self, after_seq: int, limit: int) -> LogChunk | None:
        """The seq range only: the fold reads the entries inside the database."""
        last_seq = self._log.end(after_seq, limit)
        return LogChunk(table=None, last_seq=last_seq) if last_seq > after_seq else None

    @translated
    def log_entries(self, after_seq: int, limit: int) -> list[LoggedEvent]:
        return self._log.entries(after_seq, limit)

    @translated
    def fold(self, chunk: LogChunk) -> bool:
        return self._models.fold(chunk, self._check)

    @translated
    def bury(self, seq: int, error: str) -> None:
        (entry,) = self._log.entries(seq - 1, 1)
        e = entry.event
        self._dead.bury(Burial(seq, e.org_id, e.id, e.type, error))  # idempotent: two workers may bury the same entry

    @translated
    def refold(self, seqs: list[int]) -> bool:
        return self._models.refold(seqs, self._check)

    @property
    def dead_letters(self) -> DeadLetterStore:
        return self._dead

    @translated
    def fold_state(self) -> FoldState:
        return self._models.fold_state()

    @translated
    def reset_read_models(self) -> None:
        self._models.reset()

    @translated
    def query(self, name: str, params: dict[str, Any]) -> list[tuple]:
        return self._models.query(name, params)

    @translated
    def archive(self, before_us: int, directory: Path, stop: threading.Event | None = None) -> ArchiveReport:
        return self._archive.archive(before_us, directory, stop)

    @translated
    def restore_archive(self, directory: Path) -> RestoreReport:
        return self._archive.restore(directory)

    @translated
    def archived_entries(self) -> int:
        return self._archive.archived()

    @translated
    def close(self) -> None:
        self._log.close()
        self._models.close()
        self._readers.close()
        self._dead.close()
