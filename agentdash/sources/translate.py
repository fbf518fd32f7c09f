"""OTLP records into agentdash events (SPEC §6): the agent's mapping says what a record means, the rules every
agent shares say who and where — org, user, team, session, repo, branch, agent — and give deterministic ids."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import NamedTuple

import msgspec

from agentdash.events import MAX_FUTURE_US, Event
from agentdash.sources.agents import claude_code, codex, gemini_cli, genai
from agentdash.sources.drafts import Draft, Unmappable
from agentdash.sources.records import Record

AGENTS: dict[str, ModuleType] = {name: m for m in (claude_code, gemini_cli, codex) for name in m.SERVICE_NAMES}
USER_KEYS = ("user.email", "user.account_uuid", "user.id")
_USER_KEYS = {m: USER_KEYS + m.USER_KEYS for m in (claude_code, gemini_cli, codex, genai)}  # SPEC's, then the agent's
ORG_KEY = "agentdash.org_id"
_MAX_TEXT = 128


class SourceKey(NamedTuple):
    """What the counts of a source are kept by. `org_id` is "" when a record named no org its key may write."""

    org_id: str
    agent: str
    agent_version: str
    record: str


@dataclass
class Tally:
    """Per source key: how many records came, became events, were ignored or rejected, and why."""

    records: int = 0
    mapped: int = 0
    ignored: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    events_accepted: int = 0  # filled in once the log has stored the events
    events_duplicate: int = 0
    last_seen_us: int = 0  # the newest record's own time

    def add(self, other: Tally) -> None:
        self.records += other.records
        self.mapped += other.mapped
        self.ignored += other.ignored
        self.rejected += other.rejected
        self.events_accepted += other.events_accepted
        self.events_duplicate += other.events_duplicate
        self.last_seen_us = max(self.last_seen_us, other.last_seen_us)
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n


@dataclass
class Translation:
    events: list[Event] = field(default_factory=list)
    owners: list[Tally] = field(default_factory=list)  # the tally of each event's record
    tallies: dict[SourceKey, Tally] = field(default_factory=dict)
    users: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (org, agent, user) -> last seen
    rejected: int = 0  # records dropped, for the export answer's partial_success
    first_reason: str = ""

    def stored(self, stored: list[bool]) -> None:
        """Count what the log made of each event: new, or a duplicate of one it had."""
        for owner, new in zip(self.owners, stored, strict=True):
            if new:
                owner.events_accepted += 1
            else:
                owner.events_duplicate += 1

    def tally(self, record: Record, org_guess: str, agent: str) -> Tally:
        key = SourceKey(org_guess, agent, record.text("service.version") or "", record.name)
        found = self.tallies.get(key)
        if found is None:
            found = self.tallies[key] = Tally()
        found.last_seen_us = max(found.last_seen_us, record.time_us)
        return found

    def saw_user(self, event: Event, agent: str) -> None:
        if event.user_id is None:  # never from the agents' mappings (they reject records without a user)
            return
        key = (event.org_id, agent, event.user_id)
        self.users[key] = max(self.users.get(key, 0), event.occurred_us)


def translate(records: Iterable[Record], orgs: frozenset[str] | None, now_us: int) -> Translation:
    """Every record's events; a record that cannot be placed is counted with its reason, never an error.

    `orgs` are the ingest key's orgs (None: insecure ingest, any org named by `agentdash.org_id`).
    """
    out = Translation()
    for record in records:
        agent = record.agent
        org_guess = _org_guess(record, orgs)
        tally = out.tally(record, org_guess, agent)
        tally.records += 1
        mapping = AGENTS.get(agent, genai)
        try:
            drafts = mapping.drafts(record)
            if not drafts:
                tally.ignored += 1
                continue
            events = _events(record, drafts, mapping, _org(record, org_guess, orgs), now_us)
            out.events += events
            out.owners += [tally] * len(events)
            out.saw_user(events[0], agent)
            tally.mapped += 1
        except Unmappable as exc:
            reason = str(exc)
            tally.rejected += 1
            tally.reasons[reason] = tally.reasons.get(reason, 0) + 1
            out.rejected += 1
            out.first_reason = out.first_reason or f"{record.name}: {reason}"
    return out


def _events(record: Record, drafts: list[Draft], mapping: ModuleType, org: str, now_us: int) -> list[Event]:
    session_keys: tuple[str, ...] = mapping.SESSION_KEYS
    user = _first(record, _USER_KEYS[mapping], "no user: set user.email (OTEL_RESOURCE_ATTRIBUTES=user.email=...)")
    session = _first(record, session_keys, "no session: the record has none of " + ", ".join(session_keys))
    team = _checked(record.text("team.id"), "team.id")
    # One name per agent: Codex sends codex_exec or codex_cli_rs, and its PRs' mark says codex.
    agent, version = mapping.AGENT or record.agent, record.text("service.version")
    repo, branch = record.text("vcs.repository.name"), record.text("vcs.ref.head.name")
    events = []
    for draft in drafts:
        if draft.occurred_us - now_us > MAX_FUTURE_US:
            raise Unmappable("its time is more than 24 h in the future")
        events.append(Event(
            f"otlp-{record.fingerprint}-{draft.key}", draft.type, org, user, session,
            _checked(draft.run_id, "the run id"), team, draft.occurred_us, draft.status, draft.failure_category,
            draft.input_tokens or 0, draft.output_tokens or 0, draft.cache_read_tokens or 0,
            draft.cache_write_tokens or 0, draft.cost_usd or 0.0, draft.model, repo,
            _attributes_json(agent, version, record.name, draft.model, repo, branch), branch,
            lines_added=draft.lines_added or 0, lines_removed=draft.lines_removed or 0, commits=draft.commits or 0,
            series=draft.series, agent=agent,
        ))  # fmt: skip
    return events


@functools.lru_cache(maxsize=4096)
def _attributes_json(agent: str, version: str | None, record_name: str, model: str | None, repo: str | None,
                     branch: str | None) -> str:  # fmt: skip
    """The event's attributes as JSON; cached, as a few agents, versions and models make nearly every event's."""
    found = {"agent": agent, "otlp_record": record_name}
    for name, value in (("agent_version", version), ("model", model), ("repo", repo), ("branch", branch)):
        if value is not None:
            found[name] = value
    return _encode(found).decode()


def _org(record: Record, org_guess: str, orgs: frozenset[str] | None) -> str:
    """The record's org by SPEC §6 (`org_guess` is _org_guess's); Unmappable naming what to set when there is none
    the key may write."""
    if org := org_guess:
        return _checked(org, ORG_KEY) or org
    if (named := record.text(ORG_KEY)) is not None:
        raise Unmappable(f"{ORG_KEY} {named!r} is outside the ingest key's orgs ({', '.join(sorted(orgs or ()))})")
    raise Unmappable(f"no org: the ingest key writes several orgs, so set {ORG_KEY} (OTEL_RESOURCE_ATTRIBUTES)"
                     if orgs else f"no org: set {ORG_KEY} (OTEL_RESOURCE_ATTRIBUTES)")  # fmt: skip


def _org_guess(record: Record, orgs: frozenset[str] | None) -> str:
    """The org a record's counts belong to, without judging it: "" when it names none its key may write."""
    named = record.text(ORG_KEY)
    if named is not None:
        return named if orgs is None or named in orgs else ""
    return next(iter(orgs)) if orgs is not None and len(orgs) == 1 else ""


def _first(record: Record, keys: tuple[str, ...], missing: str) -> str:
    for key in keys:
        if (value := record.text(key)) is not None:
            return _checked(value, key) or value
    raise Unmappable(missing)


def _checked(value: str | None, name: str) -> str | None:
    if value is not None and (len(value) > _MAX_TEXT or "\x00" in value):
        raise Unmappable(f"{name} is longer than {_MAX_TEXT} characters or holds a NUL")
    return value


_encode: Callable[[object], bytes] = msgspec.json.encode
