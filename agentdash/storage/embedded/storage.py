"""The embedded backend: the event log in SQLite, the read models in DuckDB, both files in the data dir."""

from __future__ import annotations

from concurrent.futures import Future

import duckdb
from typing import Any

from agentdash.config import Settings
from agentdash.events import Event
from agentdash.storage.base import FoldState, LogChunk, LogPosition, Storage, StorageInUse
from agentdash.storage.embedded.read_models import DuckdbReadModels
from agentdash.storage.embedded.event_log import SqliteEventLog


class EmbeddedStorage(Storage):
    def __init__(self, settings: Settings) -> None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Read models first: their file lock is what tells us another process already serves this dir.
        try:
            self._models = DuckdbReadModels(settings.read_models_path)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            raise StorageInUse(f"{settings.data_dir} is in use by another agentdash process") from None
        self._log = SqliteEventLog(settings.log_path, queue_limit=settings.ingest_queue_limit)

    def submit(self, events: list[Event]) -> Future[list[bool]]:
        return self._log.submit(events)

    def log_position(self, after_seq: int = 0) -> LogPosition:
        return self._log.position(after_seq)

    def read_log(self, after_seq: int, limit: int) -> LogChunk | None:
        return self._log.read(after_seq, limit)

    def fold(self, chunk: LogChunk) -> bool:
        self._models.fold(chunk)
        return True  # one process owns the data dir: nobody else folds

    def fold_state(self) -> FoldState:
        return self._models.fold_state()

    def reset_read_models(self) -> None:
        self._models.reset()

    def query(self, name: str, params: dict[str, Any]) -> list[tuple]:
        return self._models.query(name, params)

    def close(self) -> None:
        self._log.close()
        self._models.close()
