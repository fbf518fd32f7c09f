"""The source store interface: what each agent has sent per org, kept across restarts. One backend per module."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import msgspec

# (org_id, agent, user_id) -> the newest time that person was seen, as SourceStats.drain hands it over
SeenUsers = Mapping[tuple[str, str, str], int]
MAX_PEOPLE_LISTED = 100  # per agent; the count is always exact


class SourceCount(msgspec.Struct, frozen=True):
    """Counts for one (org, agent, version, record name): what SourceStats.drain hands over and the store adds."""

    org_id: str  # "" when the record named no org its key may write: kept, shown to nobody
    agent: str
    agent_version: str
    record: str
    records: int
    mapped: int
    ignored: int
    rejected: int
    events_accepted: int
    events_duplicate: int
    rejected_because: dict[str, int]
    last_seen_us: int


class RecordSummary(msgspec.Struct, frozen=True):
    """One record name of an agent, every version together."""

    record: str
    records: int
    mapped: int
    ignored: int
    rejected: int
    rejected_because: dict[str, int]  # reason -> records, most frequent first
    events_accepted: int
    events_duplicate: int
    last_seen: datetime | None


class PersonSeen(msgspec.Struct, frozen=True):
    user_id: str
    last_seen: datetime | None


class AgentSummary(msgspec.Struct, frozen=True):
    """One agent of an org: its versions (newest seen first), the people seen using it, and its records."""

    agent: str
    versions: list[str]
    people_count: int
    people: list[PersonSeen]  # the most recently seen first, at most MAX_PEOPLE_LISTED
    last_seen: datetime | None
    records: int
    rejected: int
    record_names: list[RecordSummary]  # most records first


class SourcesReport(msgspec.Struct, frozen=True):
    org_id: str
    agents: list[AgentSummary]  # most recently seen first


class SourceStore(ABC):
    """Source counts (embedded/source_store.py, postgres/source_store.py); adding is commutative, so several
    workers may add to one database. A failure of the database raises StorageError, never a driver's exception."""

    @abstractmethod
    def add(self, counts: Iterable[SourceCount], users: SeenUsers) -> None:
        """Add counts and people in one transaction: counts and reasons summed, last seen the maximum."""

    @abstractmethod
    def sources(self, org_id: str) -> SourcesReport:
        """What the org's agents have sent; never another org's rows (nor those of org "")."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""


# Both backends read the same four row shapes (their SQL files' `records`, `versions`, `reasons`, `people`).
RecordRow = tuple[str, str, int, int, int, int, int, int, int]  # agent, record, counts..., last_seen_us
VersionRow = tuple[str, str]  # agent, version (newest seen first)
ReasonRow = tuple[str, str, str, int]  # agent, record, reason, records
PeopleRow = tuple[str, str, int, int]  # agent, user_id, last_seen_us, people of the agent (most recent first)


def sources_report(org_id: str, records: Iterable[RecordRow], versions: Iterable[VersionRow],
                   reasons: Iterable[ReasonRow], people: Iterable[PeopleRow]) -> SourcesReport:  # fmt: skip
    """The report from the rows of one org, the same on every backend."""
    because: dict[tuple[str, str], dict[str, int]] = {}
    for agent, record, reason, n in sorted(reasons, key=lambda r: (r[0], r[1], -r[3], r[2])):
        because.setdefault((agent, record), {})[reason] = n
    names: dict[str, list[RecordSummary]] = {}
    last_seen: dict[str, int] = {}
    for agent, record, n, mapped, ignored, rejected, accepted, duplicate, seen_us in records:
        names.setdefault(agent, []).append(RecordSummary(record, n, mapped, ignored, rejected,
                                                         because.get((agent, record), {}), accepted, duplicate,
                                                         utc(seen_us)))  # fmt: skip
        last_seen[agent] = max(last_seen.get(agent, 0), seen_us)
    agent_versions: dict[str, list[str]] = {}
    for agent, version in versions:
        agent_versions.setdefault(agent, []).append(version)
    listed: dict[str, list[PersonSeen]] = {}
    counted: dict[str, int] = {}
    for agent, user_id, seen_us, total in people:
        listed.setdefault(agent, []).append(PersonSeen(user_id, utc(seen_us)))
        counted[agent] = total
    agents = [AgentSummary(agent, agent_versions.get(agent, []), counted.get(agent, 0), listed.get(agent, []),
                           utc(last_seen[agent]), sum(r.records for r in rows), sum(r.rejected for r in rows),
                           sorted(rows, key=lambda r: (-r.records, r.record)))
              for agent, rows in names.items()]  # fmt: skip
    agents.sort(key=lambda a: (-(a.last_seen.timestamp() if a.last_seen else 0), a.agent))
    return SourcesReport(org_id, agents)


def utc(us: int) -> datetime | None:
    return datetime.fromtimestamp(us / 1e6, tz=UTC) if us else None


def add_params(counts: Iterable[SourceCount], users: SeenUsers) -> tuple[list[dict], list[dict], list[dict]]:
    """The parameters of the `add_record`, `add_reason` and `add_person` statements, in key order (so that two
    workers adding at once lock rows in the same order and never deadlock)."""
    records, reasons = [], []
    for c in sorted(counts, key=lambda c: (c.org_id, c.agent, c.agent_version, c.record)):
        key = {"org_id": c.org_id, "agent": c.agent, "agent_version": c.agent_version, "record": c.record}
        records.append({**key, "records": c.records, "mapped": c.mapped, "ignored": c.ignored, "rejected": c.rejected,
                        "events_accepted": c.events_accepted, "events_duplicate": c.events_duplicate,
                        "last_seen_us": c.last_seen_us})  # fmt: skip
        reasons += [{**key, "reason": reason, "records": n} for reason, n in sorted(c.rejected_because.items())]
    people = [{"org_id": org_id, "agent": agent, "user_id": user_id, "last_seen_us": seen_us}
              for (org_id, agent, user_id), seen_us in sorted(users.items())]  # fmt: skip
    return records, reasons, people
