"""What each agent has sent, per org, version and record name: so an admin sees at once that an agent is connected,
or misconfigured (every record rejected with "no user"). Counted in memory on the ingest path; `drain` hands the
counts gathered since the last call to whoever keeps them."""

from __future__ import annotations

import threading

from agentdash.sources.translate import SourceKey, Tally, Translation
from agentdash.storage import SourceCount


class SourceStats:
    """Running totals since start, and the part not yet drained; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[SourceKey, Tally] = {}
        self._undrained: dict[SourceKey, Tally] = {}
        self._users: dict[tuple[str, str, str], int] = {}

    def add(self, translation: Translation) -> None:
        with self._lock:
            for key, tally in translation.tallies.items():
                self._totals.setdefault(key, Tally()).add(tally)
                self._undrained.setdefault(key, Tally()).add(tally)
            for user, seen in translation.users.items():
                self._users[user] = max(self._users.get(user, 0), seen)

    def drain(self) -> tuple[list[SourceCount], dict[tuple[str, str, str], int]]:
        """The counts and users gathered since the last drain (then forgotten here, kept in the totals)."""
        with self._lock:
            counts, users = _counts(self._undrained), self._users
            self._undrained, self._users = {}, {}
        return counts, users

    def report(self) -> list[SourceCount]:
        """Totals since this process started."""
        with self._lock:
            return _counts(self._totals)


def _counts(tallies: dict[SourceKey, Tally]) -> list[SourceCount]:
    return [SourceCount(k.org_id, k.agent, k.agent_version, k.record, t.records, t.mapped, t.ignored, t.rejected,
                         t.events_accepted, t.events_duplicate, dict(t.reasons), t.last_seen_us)
            for k, t in sorted(tallies.items())]  # fmt: skip
