"""The storage interface: an append-only event log and the read models folded from it, and the errors it raises."""

from __future__ import annotations

import functools
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from agentdash.events import Event
from agentdash.storage.dead_letters import DeadLetterStore

# Columns of a log chunk handed to the projector, in this order.
LOG_COLUMNS = (
    "seq", "id", "type", "org_id", "user_id", "session_id", "run_id", "team_id", "occurred_us",
    "status", "failure_category", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
    "cost_usd", "model", "repo", "branch", "pr_number", "agent_mark",
    "attributes",  # a PR's title and url (fold_pr_texts)
    "lines_added", "lines_removed", "commits", "series",  # code.changed (fold_code)
    "agent",  # attributes.agent (OTLP: service.name): runs, usage, code changes and PRs carry it
)  # fmt: skip


class StorageError(RuntimeError):
    """A database operation failed. Backends raise this family only; the driver's exception is the __cause__."""


class StorageInUse(StorageError):
    """Another process holds the data (embedded only: DuckDB allows one writing process per file)."""


class Overloaded(StorageError):
    """The log cannot take more right now (its queue is full, or its database is unreachable): retry (HTTP 503)."""


class Unavailable(StorageError):
    """The database cannot be reached or the connection was lost; the same call may work on a retry."""


class WriteRejected(StorageError):
    """The database refused the data itself (a NOT NULL, unique or other constraint); a retry fails alike."""


class Poisoned(WriteRejected):
    """A fold refused an entry because the `poison` test hook names it (see poison_check)."""


class ArchiveError(StorageError):
    """An archive cannot be written, verified or restored (a corrupted or foreign file), or a rebuild would lose what
    only the archive holds."""


class ArchivedPart(msgspec.Struct, frozen=True):
    """One Parquet file of the archive (storage/archive.py), as its manifest lists it."""

    month: str  # YYYY-MM of the entries' arrival (received_us, UTC)
    part: int
    file: str  # its name inside the archive directory
    rows: int
    first_seq: int
    last_seq: int
    sha256: str  # archive.Checksum of its rows
    archived_at: str  # UTC, RFC 3339


@dataclass(frozen=True)
class ArchiveReport:
    """What one archive run wrote, verified and then deleted from the live log."""

    parts: tuple[ArchivedPart, ...]
    directory: Path

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)


@dataclass(frozen=True)
class RestoreReport:
    """What a restore put back into the live log, and how many of the archive's entries it held already."""

    parts: tuple[ArchivedPart, ...]
    restored: int
    already_there: int


@dataclass(frozen=True)
class LogPosition:
    last_seq: int  # sequence numbers are dense, so this is also the number of events logged
    oldest_unfolded_received_us: int | None = None


@dataclass(frozen=True)
class LogFootprint:
    """How big the log is, for /metrics: its entries, its bytes on disk, and its dedupe index."""

    events: int
    bytes: int  # embedded: the log's SQLite files; PostgreSQL: the events table with its indexes and TOAST
    dedupe_entries: int  # keys the dedupe holds (embedded: the in-memory index; PostgreSQL: the unique index)
    dedupe_bytes: int  # embedded: 16 B per key in the index's arrays (approximate); PostgreSQL: the unique index


@dataclass(frozen=True)
class LogChunk:
    """Log entries after a checkpoint, with the last sequence number they cover.

    `table` holds the entries as columns when the read models live elsewhere than the log (embedded);
    it is None when the backend folds the seq range inside its own database (Postgres).
    """

    table: pa.Table | None
    last_seq: int

    def within(self, after_seq: int, last_seq: int) -> LogChunk:
        """The part of this chunk in (after_seq, last_seq]: how the projector bisects a chunk that fails to fold."""
        if self.table is None:
            return LogChunk(table=None, last_seq=last_seq)
        seq = self.table["seq"]
        return LogChunk(self.table.filter(pc.and_(pc.greater(seq, after_seq), pc.less_equal(seq, last_seq))), last_seq)


@dataclass(frozen=True)
class LoggedEvent:
    """One log entry as stored: its place in the log, when it arrived, and the event."""

    seq: int
    received_us: int
    event: Event


@dataclass(frozen=True)
class FoldState:
    seq: int  # every log entry up to and including this one is folded
    folded_at_us: int | None


class Storage(ABC):
    """What the rest of agentdash may ask of a database. One backend per module.

    Every method raises StorageError (or a subclass) for a failure of the database, never a driver's exception.
    """

    @abstractmethod
    def submit(self, events: list[Event]) -> Future[list[bool]]:
        """Queue events for the log; the future gives, per event, True if stored or False if a duplicate.

        The future resolves only after the events are durably committed. Raises Overloaded when full.
        """

    @abstractmethod
    def log_position(self, after_seq: int = 0) -> LogPosition:
        """The end of the log, and when the oldest entry after `after_seq` arrived."""

    @abstractmethod
    def footprint(self) -> LogFootprint:
        """The log's size and its dedupe index's, read at a metrics scrape."""

    @abstractmethod
    def read_log(self, after_seq: int, limit: int) -> LogChunk | None:
        """Up to `limit` entries with seq > after_seq, oldest first, for `fold`; None when there are none."""

    @abstractmethod
    def log_entries(self, after_seq: int, limit: int) -> list[LoggedEvent]:
        """Up to `limit` stored entries with seq > after_seq, oldest first, read back alike on every backend."""

    @abstractmethod
    def fold(self, chunk: LogChunk) -> bool:
        """Fold a chunk into the read models and move the checkpoint to chunk.last_seq, atomically.

        Returns False, folding nothing, when another process is folding or already folded past the chunk.
        """

    @abstractmethod
    def bury(self, seq: int, error: str) -> None:
        """Make log entry `seq` a dead letter: every fold, and a rebuild, leaves it out until it is retried."""

    @abstractmethod
    def refold(self, seqs: list[int]) -> bool:
        """Fold those of these dead letters that are marked for retry, leaving the checkpoint; folded, they stop being
        dead letters. Raises like `fold` when one fails. False, folding nothing, when another process is folding."""

    @property
    @abstractmethod
    def dead_letters(self) -> DeadLetterStore:
        """The dead letters this storage's folds leave out."""

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

    def archive(self, before_us: int, directory: Path, stop: threading.Event | None = None) -> ArchiveReport:
        """Move the log entries received before `before_us` that are folded and not dead letters into monthly Parquet
        parts in `directory` (storage/archive.py), each verified before its rows leave the live log. The read models
        keep their facts, and the entries' ids stay duplicates for ever. `stop` set: the run ends after the batch in
        hand (its part written, verified and moved; the rest waits for the next run), so a shutdown need not wait."""
        raise ArchiveError(f"{type(self).__name__} does not archive its log")

    def restore_archive(self, directory: Path) -> RestoreReport:
        """Put the archived entries of `directory` back into the live log under their seqs (every file verified
        first; those already there are skipped), so that a rebuild folds them again."""
        raise ArchiveError(f"{type(self).__name__} does not archive its log")

    def archived_entries(self) -> int:
        """How many entries are archived and not in the live log: a rebuild from the log alone would miss them."""
        return 0


def poison_check(
    poison: Callable[[LoggedEvent], bool] | None, log_entries: Callable[[int, int], list[LoggedEvent]]
) -> Callable[[list[int]], None] | None:
    """For tests only: a check a fold runs on its entries' seqs just before its COMMIT, failing it as a database
    would when `poison` names one of them. None (no check, nothing read) without a hook, as in every real run."""
    if poison is None:
        return None

    def check(seqs: list[int]) -> None:
        wanted = set(seqs)
        if not wanted:
            return
        first, last = min(wanted), max(wanted)
        for entry in log_entries(first - 1, last - first + 1):
            if entry.seq in wanted and poison(entry):
                raise Poisoned(f"the test hook refuses event {entry.event.id!r} (seq {entry.seq})")

    return check


P = ParamSpec("P")
R = TypeVar("R")
E = TypeVar("E", bound=BaseException)


def caused_by(error: E, cause: BaseException) -> E:
    """`error` chained to `cause`, as `raise error from cause` would, for an error handed over rather than raised."""
    error.__cause__ = cause
    return error


def translating(domain_error: Callable[[Exception], Exception]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A decorator for a backend's public methods: an exception that `domain_error` maps to another is raised as
    that one, chained to the original; everything else passes through unchanged."""

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def translated(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(*args, **kwargs)
            except Exception as exc:
                domain = domain_error(exc)
                if domain is exc:
                    raise
                raise domain from exc

        return translated

    return decorate
