"""The embedded backend: the event log in SQLite, the read models in DuckDB, both files in the data dir."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

import duckdb

from agentdash.config import Settings
from agentdash.events import Event
from agentdash.storage.base import FoldState, LogChunk, LoggedEvent, LogPosition, Storage, StorageInUse
from agentdash.storage.embedded.errors import translated
from agentdash.storage.embedded.event_log import SqliteEventLog
from agentdash.storage.embedded.read_models import DuckdbReadModels


class EmbeddedStorage(Storage):
    """One process owns the data dir; every driver error leaves here as a StorageError (see errors.py)."""

    @translated
    def __init__(self, settings: Settings) -> None:
        _private_dir(settings.data_dir)
        # Read models first: their file lock is what tells us another process already serves this dir.
        try:
            self._models = DuckdbReadModels(settings.read_models_path)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            raise StorageInUse(f"{settings.data_dir} is in use by another agentdash process") from None
        self._log = SqliteEventLog(settings.log_path, queue_limit=settings.ingest_queue_limit)
        _private_files(settings.data_dir)

    def submit(self, events: list[Event]) -> Future[list[bool]]:
        return self._log.submit(events)  # the writer hands a failed batch's future a StorageError

    @translated
    def log_position(self, after_seq: int = 0) -> LogPosition:
        return self._log.position(after_seq)

    @translated
    def read_log(self, after_seq: int, limit: int) -> LogChunk | None:
        return self._log.read(after_seq, limit)

    @translated
    def log_entries(self, after_seq: int, limit: int) -> list[LoggedEvent]:
        return self._log.entries(after_seq, limit)

    @translated
    def fold(self, chunk: LogChunk) -> bool:
        self._models.fold(chunk)
        return True  # one process owns the data dir: nobody else folds

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
    def close(self) -> None:
        self._log.close()
        self._models.close()


def _private_dir(data_dir: Path) -> None:
    """Every org's events live here: owner only (0700), also for a data dir an older version made 0755."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)


def _private_files(data_dir: Path) -> None:
    # The drivers create their files (and WAL/SHM siblings) with the process umask: tighten what exists now.
    for path in (*data_dir.glob("events.sqlite*"), *data_dir.glob("read_models.duckdb*")):
        path.chmod(0o600)
