"""The projector: folds new event-log entries into the read models, from a checkpoint, on a schedule."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from agentdash.isolation import FOLD_ATTEMPTS, Isolation
from agentdash.storage import Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProjectionStatus:
    events_logged: int
    events_projected: int
    lag_events: int
    lag_seconds: float
    last_fold_at_us: int | None


class Projector:
    """Folds the log in chunks; each chunk and its checkpoint commit together, so a crash loses nothing."""

    def __init__(
        self,
        storage: Storage,
        chunk_size: int = 250_000,
        after_fold: Callable[[], object] | None = None,
        on_chunk: Callable[[int, float], object] | None = None,
        fold_attempts: int = FOLD_ATTEMPTS,
    ) -> None:
        self.storage = storage
        self.chunk_size = chunk_size
        self.after_fold = after_fold  # called after each catch-up, folded or not (alerts: evaluation, period ends)
        self.on_chunk = on_chunk  # (entries, seconds) of each folded chunk: the fold-duration histogram
        # When a chunk or a catch-up last finished (Unix µs): /readyz's sign that the job still runs. From the
        # start, so that a server is not unready before its first scheduled pass.
        self.heartbeat_us = time.time_ns() // 1000
        self._lock = threading.Lock()  # the scheduled job and a final fold at shutdown never overlap
        self._isolation = Isolation(storage, fold_attempts)

    def fold_once(self) -> int:
        """Fold at most one chunk; returns how many log entries it covered."""
        with self._lock:
            checkpoint = self.storage.fold_state().seq
            chunk = self.storage.read_log(checkpoint, self.chunk_size)
            if chunk is None or not self._isolation.fold(chunk, checkpoint):  # nothing new, or another worker folds it
                return 0
            return chunk.last_seq - checkpoint

    def retry_dead_letters(self) -> None:
        """Fold the dead letters marked for retry (`agentdash dlq retry`); those that fail again stay dead."""
        with self._lock:
            seqs = self.storage.dead_letters.to_retry()
            if seqs:
                self._isolation.refold(seqs)

    def catch_up(self) -> int:
        """Fold until a chunk comes back short (it met the log's end); returns the number of entries folded.

        What arrives during that last fold waits for the next tick: chasing the tail under a burst folds in small
        chunks, each paying the fold's fixed cost, and takes the CPU from ingest."""
        self.retry_dead_letters()
        total = 0
        while True:
            started = time.perf_counter()
            folded = self.fold_once()
            self.heartbeat_us = time.time_ns() // 1000
            if not folded:
                break
            if self.on_chunk is not None:
                self.on_chunk(folded, time.perf_counter() - started)
            total += folded
            if folded < self.chunk_size:
                break
        if self.after_fold is not None:
            self.after_fold()
        return total

    def status(self) -> ProjectionStatus:
        state = self.storage.fold_state()
        position = self.storage.log_position(after_seq=state.seq)
        oldest = position.oldest_unfolded_received_us
        lag_seconds = max(0.0, (time.time_ns() // 1000 - oldest) / 1e6) if oldest is not None else 0.0
        return ProjectionStatus(
            events_logged=position.last_seq,
            events_projected=state.seq,
            lag_events=position.last_seq - state.seq,
            lag_seconds=round(lag_seconds, 3),
            last_fold_at_us=state.folded_at_us,
        )


class ProjectorJob:
    """Runs Projector.catch_up on an APScheduler interval; stop() folds one last time."""

    def __init__(
        self,
        projector: Projector,
        interval_seconds: float,
        archive: Callable[[threading.Event], object] | None = None,
    ) -> None:
        """`archive(stop)`: run at start and then daily beside the folds (--retention-days; see Storage.archive);
        stop() sets `stop` and waits only for the batch in hand."""
        self.projector = projector
        self._stopping = threading.Event()
        self._scheduler = BackgroundScheduler(daemon=True)
        self._scheduler.add_job(
            self._run, "interval", seconds=interval_seconds, id="fold", max_instances=1, coalesce=True
        )
        if archive is not None:
            # At start (however long the server takes to get there: no misfire grace), then daily.
            self._scheduler.add_job(_logged(archive, self._stopping), "interval", days=1, id="archive", max_instances=1, coalesce=True,
                                    next_run_time=datetime.now(UTC), misfire_grace_time=None)  # fmt: skip

    def _run(self) -> None:
        try:
            self.projector.catch_up()
        except Exception:  # a failed fold rolls back; the next tick retries from the same checkpoint
            log.exception("projector fold failed; will retry")

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        self._stopping.set()
        self._scheduler.shutdown(wait=True)
        self._run()


def _logged(archive: Callable[[threading.Event], object], stop: threading.Event) -> Callable[[], None]:
    def run() -> None:
        try:
            archive(stop)
        except Exception:  # nothing is deleted before its file is verified: the next day's run tries again
            log.exception("archiving the event log failed; will retry tomorrow")

    return run
