"""What each agent has sent this process, per record name, for /status: so an admin sees at once that an agent is
connected, or misconfigured (every record rejected with "no user")."""

from __future__ import annotations

import threading

import msgspec

from agentdash.sources.translate import Tally


class RecordCounts(msgspec.Struct):
    agent: str
    record: str
    records: int
    mapped: int
    ignored: int
    rejected: int
    events_accepted: int
    events_duplicate: int
    rejected_because: dict[str, int]


class SourceStats:
    """Running totals since start; thread-safe (the ingest app may run handlers in threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tallies: dict[tuple[str, str], Tally] = {}

    def add(self, tallies: dict[tuple[str, str], Tally]) -> None:
        with self._lock:
            for key, tally in tallies.items():
                self._tallies.setdefault(key, Tally()).add(tally)

    def report(self) -> list[RecordCounts]:
        with self._lock:
            return [RecordCounts(agent, record, t.records, t.mapped, t.ignored, t.rejected, t.events_accepted,
                                 t.events_duplicate, dict(t.reasons))
                    for (agent, record), t in sorted(self._tallies.items())]  # fmt: skip
