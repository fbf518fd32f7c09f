"""The storage interface: an append-only event log and the read models folded from it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from agentdash.events import Event

# Columns of a log chunk handed to the projector, in this order.
LOG_COLUMNS = (
    "seq", "id", "type", "org_id", "user_id", "session_id", "run_id", "team_id", "occurred_us",
    "status", "failure_category", "input_tokens", "output_tokens", "cost_usd", "model", "repo",
)  # fmt: skip


class StorageInUse(RuntimeError):
    """Another process holds the data (embedded only: DuckDB allows one writing process per file)."""


class Overloaded(RuntimeError):
    """The log cannot take more right now; the producer should retry (HTTP 503)."""


@dataclass(frozen=True)
class LogPosition:
    last_seq: int  # sequence numbers are dense, so this is also the number of events logged
    oldest_unfolded_received_us: int | None = None


@dataclass(frozen=True)
class LogChunk:
    """Log entries after a checkpoint, with the last sequence number they cover.

    `table` holds the entries as columns when the read models live elsewhere than the log (embedded);
    it is None when the backend folds the seq range inside its own database (Postgres).
    """

    table: pa.Table | None
    last_seq: int


@dataclass(frozen=True)
class FoldState:
    seq: int  # every log entry up to and including this one is folded
    folded_at_us: int | None


class Storage(ABC):
    """What the rest of agentdash may ask of a database. One backend per module."""

    @abstractmethod
    def submit(self, events: list[Event]) -> Future[list[bool]]:
        """Queue events for the log; the future gives, per event, True if stored or False if a duplicate.

        The future resolves only after the events are durably committed. Raises Overloaded when full.
        """

    @abstractmethod
    def log_position(self, after_seq: int = 0) -> LogPosition:
        """The end of the log, and when the oldest entry after `after_seq` arrived."""

    @abstractmethod
    def read_log(self, after_seq: int, limit: int) -> LogChunk | None:
        """Up to `limit` entries with seq > after_seq, oldest first; None when there are none."""

    @abstractmethod
    def fold(self, chunk: LogChunk) -> bool:
        """Fold a chunk into the read models and move the checkpoint to chunk.last_seq, atomically.

        Returns False, folding nothing, when another process is folding or already folded past the chunk.
        """

    @abstractmethod
    def fold_state(self) -> FoldState:
        """Where the projector's checkpoint stands."""

    @abstractmethod
    def reset_read_models(self) -> None:
        """Drop every read model and the checkpoint, so the next folds rebuild them from the log."""

    @abstractmethod
    def query(self, name: str, params: dict[str, Any]) -> list[tuple]:
        """Run a named read query (see storage/sql/) and return its rows as named tuples."""

    @abstractmethod
    def close(self) -> None:
        """Finish pending writes and release files and connections."""
