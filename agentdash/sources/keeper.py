"""The source keeper: moves the counts SourceStats gathers in memory into the source store, every few seconds and
once at shutdown, so that the ingest path never waits for them."""

from __future__ import annotations

import logging
import threading

import msgspec
from apscheduler.schedulers.background import BackgroundScheduler

from agentdash.sources.stats import SourceStats
from agentdash.storage import SourceCount, SourceStore

log = logging.getLogger(__name__)

KEEP_INTERVAL_S = 2.0  # a kill -9 loses at most this much of the counts (never an event)


class SourceKeeper:
    """Drains `stats` into `store` on an APScheduler interval; what a failed add held is kept and added next tick."""

    def __init__(self, stats: SourceStats, store: SourceStore, interval_seconds: float = KEEP_INTERVAL_S) -> None:
        self.stats = stats
        self.store = store
        self._lock = threading.Lock()  # the scheduled tick and the last one at shutdown never overlap
        self._counts: dict[tuple[str, str, str, str], SourceCount] = {}  # drained, not yet stored
        self._users: dict[tuple[str, str, str], int] = {}
        self._scheduler = BackgroundScheduler(daemon=True)
        self._scheduler.add_job(
            self._run, "interval", seconds=interval_seconds, id="keep-sources", max_instances=1, coalesce=True
        )

    def keep(self) -> int:
        """Drain and store; returns how many count rows were stored. A StorageError leaves them pending here."""
        with self._lock:
            counts, users = self.stats.drain()
            for c in counts:
                key = (c.org_id, c.agent, c.agent_version, c.record)
                self._counts[key] = _merged(self._counts.get(key), c)
            for user, seen in users.items():
                self._users[user] = max(self._users.get(user, 0), seen)
            if not self._counts and not self._users:
                return 0
            self.store.add(list(self._counts.values()), self._users)
            stored = len(self._counts)
            self._counts, self._users = {}, {}
            return stored

    def _run(self) -> None:
        try:
            self.keep()
        except Exception:  # the store rolled back; the counts stay pending and go with the next tick
            log.exception("storing source counts failed; will retry")

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        """Stop the schedule and keep one last time (call it after ingest has stopped)."""
        self._scheduler.shutdown(wait=True)
        self._run()


def _merged(pending: SourceCount | None, new: SourceCount) -> SourceCount:
    if pending is None:
        return new
    because = dict(pending.rejected_because)
    for reason, n in new.rejected_because.items():
        because[reason] = because.get(reason, 0) + n
    return msgspec.structs.replace(
        pending,
        records=pending.records + new.records,
        mapped=pending.mapped + new.mapped,
        ignored=pending.ignored + new.ignored,
        rejected=pending.rejected + new.rejected,
        events_accepted=pending.events_accepted + new.events_accepted,
        events_duplicate=pending.events_duplicate + new.events_duplicate,
        rejected_because=because,
        last_seen_us=max(pending.last_seen_us, new.last_seen_us),
    )
