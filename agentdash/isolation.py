"""Dead letters, the projector's side: a chunk that keeps failing to fold is bisected down to the entries that fail
alone, which become dead letters, so that the rest of the log folds on (issue 13)."""

from __future__ import annotations

import logging

from agentdash.storage import DeadLetter, LogChunk, Storage, Unavailable

log = logging.getLogger(__name__)

# Folds of a whole chunk before bisecting it: a failure that depends on nothing in the data (a lock, a full disk
# that frees up) gets these chances; one that does fails alike each time, and bisecting costs about two folds more.
FOLD_ATTEMPTS = 3


class Isolation:
    """Folds a chunk whole if it can, else its halves, down to single entries: those that fail alone are buried.

    A lost database (`Unavailable`) is no entry's fault: it is raised at once, nothing is buried, and the next tick
    starts again from the checkpoint.
    """

    def __init__(self, storage: Storage, fold_attempts: int = FOLD_ATTEMPTS) -> None:
        self.storage = storage
        self.fold_attempts = max(1, fold_attempts)

    def fold(self, chunk: LogChunk, after_seq: int) -> bool:
        """Fold (after_seq, chunk.last_seq]; False when another process folds (the Storage.fold contract)."""
        for attempt in range(1, self.fold_attempts + 1):
            try:
                return self.storage.fold(chunk)
            except Unavailable:
                raise
            except Exception as exc:
                log.warning("fold of entries %d..%d failed (attempt %d of %d): %s", after_seq + 1, chunk.last_seq,
                            attempt, self.fold_attempts, describe(exc))  # fmt: skip
                error = exc
        log.error("bisecting entries %d..%d to set the failing ones aside", after_seq + 1, chunk.last_seq)
        return self._split(chunk, after_seq, chunk.last_seq, error)

    def refold(self, seqs: list[int]) -> bool:
        """Fold dead letters marked for retry, bisecting the list alike; those failing alone are buried again."""
        try:
            return self.storage.refold(seqs)
        except Unavailable:
            raise
        except Exception as exc:
            if len(seqs) == 1:
                self._bury(seqs[0], exc)
                return True
            middle = len(seqs) // 2
            return self.refold(seqs[:middle]) and self.refold(seqs[middle:])

    def _fold_part(self, chunk: LogChunk, after_seq: int, last_seq: int) -> bool:
        try:
            return self.storage.fold(chunk.within(after_seq, last_seq))
        except Unavailable:
            raise
        except Exception as exc:
            return self._split(chunk, after_seq, last_seq, exc)

    def _split(self, chunk: LogChunk, after_seq: int, last_seq: int, error: Exception) -> bool:
        """(after_seq, last_seq] failed with `error`: fold its halves in seq order (each fold moves the checkpoint to
        its end), or bury it when it is one entry."""
        if last_seq - after_seq > 1:
            middle = (after_seq + last_seq) // 2
            return self._fold_part(chunk, after_seq, middle) and self._fold_part(chunk, middle, last_seq)
        self._bury(last_seq, error)
        try:
            return self.storage.fold(chunk.within(after_seq, last_seq))  # it is left out now: this moves the checkpoint
        except Exception:
            # Folding nothing fails too: the fault is not the entry's (a full disk, a broken database), and burying on
            # would bury every entry. Undo it and fail the tick; the next one starts again from the checkpoint.
            log.error("a fold without entry %d fails too: it is not at fault, and stays in the log", last_seq)
            self.storage.dead_letters.unbury(last_seq)
            raise

    def _bury(self, seq: int, exc: Exception) -> None:
        error = describe(exc)
        log.error("log entry %d fails to fold on its own: now a dead letter (agentdash dlq list): %s", seq, error)
        self.storage.bury(seq, error)


def describe(exc: BaseException) -> str:
    """The error as a dead letter keeps it: its type and message, and its cause's when that says more."""
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    if cause is not None and str(cause) not in text:
        text += f" (caused by {type(cause).__name__}: {cause})"
    return text


def letter_table(letters: list[DeadLetter]) -> str:
    """`agentdash dlq list`: one line per dead letter, the error last (it can be long)."""
    if not letters:
        return "no dead letters"
    lines = [
        f"{'id':>8}  {'org':<12} {'event':<24} {'type':<13} {'tries':>5}  {'failed (UTC)':<19}  {'state':<7}  error"
    ]
    for d in letters:
        lines.append(f"{d.seq:>8}  {d.org_id:<12} {d.event_id:<24} {d.type:<13} {d.attempts:>5}  "
                     f"{d.failed_at:%Y-%m-%d %H:%M:%S}  {d.state:<7}  {d.error}")  # fmt: skip
    return "\n".join(lines)
