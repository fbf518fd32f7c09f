"""The embedded backend: the event log in SQLite, the read models in DuckDB, both files in the data dir."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from agentdash.config import Settings
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
    StorageInUse,
    poison_check,
)
from agentdash.storage.dead_letters import Burial, DeadLetterStore
from agentdash.storage.embedded.archive import SqliteArchive
from agentdash.storage.embedded.dead_letters import FILE_NAME as DEAD_LETTERS_FILE
from agentdash.storage.embedded.dead_letters import SqliteDeadLetterStore
from agentdash.storage.embedded.errors import translated
from agentdash.storage.embedded.event_log import SqliteEventLog
from agentdash.storage.embedded.read_models import DuckdbReadModels


class EmbeddedStorage(Storage):
    """One process owns the data dir; every driver error leaves here as a StorageError (see errors.py)."""

    @translated
    def __init__(self, settings: Settings, poison: Callable[[LoggedEvent], bool] | None = None) -> None:
        """`poison`: tests only, entries a fold must fail on (see base.poison_check)."""
        _private_dir(settings.data_dir)
        # Read models first: their file lock is what tells us another process already serves this dir.
        try:
            self._models = DuckdbReadModels(settings.read_models_path)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            raise StorageInUse(f"{settings.data_dir} is in use by another agentdash process") from None
        self._log = SqliteEventLog(settings.log_path, queue_limit=settings.ingest_queue_limit, durable=settings.durable)
        self._dead = SqliteDeadLetterStore(settings.data_dir / DEAD_LETTERS_FILE)
        self._check = poison_check(poison, self._log.entries)
        self._archive = SqliteArchive(settings.log_path, durable=settings.durable)
        _private_files(settings.data_dir)

    def submit(self, events: list[Event]) -> Future[list[bool]]:
        return self._log.submit(events)  # the writer hands a failed batch's future a StorageError

    @translated
    def log_synchronous(self) -> str:
        """The event log's SQLite `synchronous` level by name: FULL under --durable, else NORMAL."""
        return self._log.synchronous()

    @translated
    def log_position(self, after_seq: int = 0) -> LogPosition:
        return self._log.position(after_seq)

    @translated
    def footprint(self) -> LogFootprint:
        return self._log.footprint()

    @translated
    def read_log(self, after_seq: int, limit: int) -> LogChunk | None:
        return self._log.read(after_seq, limit)

    @translated
    def log_entries(self, after_seq: int, limit: int) -> list[LoggedEvent]:
        return self._log.entries(after_seq, limit)

    @translated
    def fold(self, chunk: LogChunk) -> bool:
        table = chunk.table
        assert table is not None, "the embedded log reads chunks with their entries"
        if table.num_rows:
            seqs = table["seq"]
            skipped = self._dead.skipped(pc.min(seqs).as_py() - 1, chunk.last_seq)
            if skipped:
                table = table.filter(pc.invert(pc.is_in(seqs, pa.array(sorted(skipped), pa.int64()))))
        self._models.fold(LogChunk(table, chunk.last_seq), self._check)
        return True  # one process owns the data dir: nobody else folds

    @translated
    def bury(self, seq: int, error: str) -> None:
        (entry,) = self._log.entries(seq - 1, 1)
        e = entry.event
        self._dead.bury(Burial(seq, e.org_id, e.id, e.type, error))

    @translated
    def refold(self, seqs: list[int]) -> bool:
        marked = set(self._dead.to_retry())
        pending = [seq for seq in seqs if seq in marked]
        if not pending:
            return True
        # Folded already when the process stopped between the read models' COMMIT and forgetting them here.
        done = self._models.refolded(pending)
        todo = [seq for seq in pending if seq not in done]
        if todo:
            table = self._log.read_at(todo)
            self._models.refold(table, todo, self._check)
        self._dead.forget(pending)
        return True

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
        return self._archive.archive(self._models.fold_state().seq, self._dead.skipped, before_us, directory, stop)

    @translated
    def restore_archive(self, directory: Path) -> RestoreReport:
        return self._archive.restore(directory)

    @translated
    def archived_entries(self) -> int:
        return self._archive.archived()

    @translated
    def close(self) -> None:
        self._archive.close()
        self._log.close()
        self._models.close()
        self._dead.close()


def _private_dir(data_dir: Path) -> None:
    """Every org's events live here: owner only (0700), also for a data dir an older version made 0755."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)


def _private_files(data_dir: Path) -> None:
    # The drivers create their files (and WAL/SHM siblings) with the process umask: tighten what exists now.
    for path in (*data_dir.glob("events.sqlite*"), *data_dir.glob("read_models.duckdb*"),
                 *data_dir.glob("dead-letters.sqlite*")):  # fmt: skip
        path.chmod(0o600)
