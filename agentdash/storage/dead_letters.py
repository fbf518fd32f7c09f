"""The dead-letter store interface: log entries the fold failed on, set aside so projection goes on without them.

A dead letter is named by its log entry's seq. Every fold (and a rebuild) skips the seqs this store holds, in
whatever state: `dead` (failed, waiting), `retry` (asked to be folded again) or `dropped` (forgotten for good, kept
as a record). One backend per module: embedded/dead_letters.py, postgres/dead_letters.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

LetterState = Literal["dead", "retry", "dropped"]


class DeadLetterError(ValueError):
    """A dead-letter operation that cannot be done: naming a seq that is no dead letter."""


@dataclass(frozen=True)
class DeadLetter:
    """One log entry the fold failed on, with the error of its last attempt."""

    seq: int  # its log entry; also its id in `agentdash dlq`
    org_id: str
    event_id: str
    type: str
    error: str
    failed_at: datetime  # UTC, the last failure
    attempts: int  # folds that failed on it alone: the first, then one per failed retry
    state: LetterState


@dataclass(frozen=True)
class Burial:
    """What the projector knows of an entry it could not fold."""

    seq: int
    org_id: str
    event_id: str
    type: str
    error: str


class DeadLetterStore(ABC):
    """Dead letters; the server and `agentdash dlq` share them (no lock held between calls).

    A failure of the database raises StorageError (storage.base), never a driver's exception.
    """

    @abstractmethod
    def bury(self, burial: Burial) -> None:
        """Record a failed entry as dead; one marked for retry becomes dead again with the new error, one attempt more."""

    @abstractmethod
    def unbury(self, seq: int) -> None:
        """Undo a burial just made: the entry was not at fault (its fold failed without it too)."""

    @abstractmethod
    def list_letters(self, include_dropped: bool = False) -> list[DeadLetter]:
        """The dead letters waiting (and the dropped ones when asked), by seq."""

    @abstractmethod
    def skipped(self, after_seq: int, last_seq: int) -> set[int]:
        """The seqs in (after_seq, last_seq] that a fold must leave out: every entry held here, in any state."""

    @abstractmethod
    def request_retry(self, seqs: list[int] | None = None) -> list[DeadLetter]:
        """Mark dead letters to be folded again (None: all of them). Raises DeadLetterError for a seq not waiting."""

    @abstractmethod
    def to_retry(self) -> list[int]:
        """The seqs marked for retry, ascending."""

    @abstractmethod
    def forget(self, seqs: list[int]) -> None:
        """Remove entries that were folded on retry: they are ordinary log entries again."""

    @abstractmethod
    def drop(self, seqs: list[int]) -> list[DeadLetter]:
        """Give dead letters up for good: never folded, kept as a dropped record. Raises DeadLetterError for a seq
        that is no dead letter (nothing is dropped then)."""

    @abstractmethod
    def count(self, org_id: str | None = None) -> int:
        """How many dead letters wait (dead or marked for retry), of one org or all."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""
