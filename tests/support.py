"""What the tests share: realistic generated events, the storage backends they run on, and comparisons.

Test modules import from here (never from each other); conftest.py holds the fixtures built on it.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from random import Random

import msgspec
import pytest
from hypothesis import strategies as st
from reference_metrics import METRIC_KEYS, reference_metrics

from agentdash.config import load_settings
from agentdash.events import Event, parse_event
from agentdash.metrics import BreakdownRow, MetricsQuery, breakdown, org_metrics
from agentdash.storage import Storage, open_storage
from agentdash.testing import postgres_bin_dir

# ---------------------------------------------------------------- the backends a storage test runs on


def postgres_missing() -> str | None:
    """Why the Postgres backend cannot be tested here, or None when it can."""
    if postgres_bin_dir() is None:
        return ("PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin): "
                "apt-get install postgresql, as .ci/run does")  # fmt: skip
    if importlib.util.find_spec("psycopg") is None:
        return "psycopg is not installed: pip install -e '.[postgres]'"
    return None


_MISSING = postgres_missing()
NEEDS_POSTGRES = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")
EMBEDDED = pytest.param("embedded", id="embedded")
POSTGRES = pytest.param("postgres", id="postgres", marks=NEEDS_POSTGRES)
BACKENDS = (EMBEDDED, POSTGRES)


@dataclass(frozen=True)
class Backend:
    """Where a test's storage lives; each `open` is a new Storage on the same data (a reopen, or a second process)."""

    name: str
    data_dir: Path
    database_url: str = ""  # empty: the embedded files in data_dir

    def open(self, **flags: object) -> Storage:
        return open_storage(load_settings(data_dir=self.data_dir, database_url=self.database_url, **flags))


class HeldWriter:
    """Holds a storage's log writer on the group holding an event with id 'block' until `release` is set.

    White box, alike on both backends: each log writes through a GroupCommitWriter at `_log._writer`.
    """

    def __init__(self, storage: Storage) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        writer = storage._log._writer  # type: ignore[attr-defined]
        real = writer._try_write

        def try_write(pending):
            if not self.release.is_set() and any(e.id == "block" for events, _ in pending for e in events):
                self.entered.set()
                assert self.release.wait(30), "test never released the writer"
            return real(pending)

        writer._try_write = try_write


# ---------------------------------------------------------------- single events, by hand


def wire(id_: str, org: str = "o1", type_: str = "message.sent", at: str = "2026-03-02T10:00:00Z", **extra) -> dict:
    event = {"id": id_, "type": type_, "org_id": org, "user_id": "u1", "session_id": "s1", "occurred_at": at}
    event.update(extra)
    return event


def parsed(*events: dict) -> list[Event]:
    return [parse_event(msgspec.json.encode(e)) for e in events]


def logged(storage: Storage) -> list[tuple]:
    """(seq, org_id, id, type, occurred_us) of every log entry, in order."""
    rows = [
        (e.seq, e.event.org_id, e.event.id, e.event.type, e.event.occurred_us)
        for e in storage.log_entries(0, 1_000_000)
    ]
    chunk = storage.read_log(0, 1_000_000)
    assert (chunk.last_seq if chunk else 0) == (rows[-1][0] if rows else 0)
    return rows


def identities(storage: Storage) -> list[tuple[str, str]]:
    return [(org, id_) for _, org, id_, _, _ in logged(storage)]


# ---------------------------------------------------------------- generated events
#
# One builder, two sources of choices: hypothesis draws (property test, shrinks) and a seeded
# Random (deterministic tests that need a larger data set).

ORG = "o1"
OTHER_ORG = "o2"  # gets copies of some o1 events under the same ids: (org_id, id) is the dedupe key
USERS = ("u1", "u2", "u3")
TEAMS = ("t1", "t2")
SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
FOUR_HOURS = 4 * HOUR
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
D0 = date(2026, 2, 27)  # the generated days run across the end of February into March
N_DAYS = 4
D0_US = (datetime(D0.year, D0.month, D0.day, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)
OFFSETS = tuple(
    timezone(timedelta(minutes=m)) for m in (0, 0, 330, -480, 840, -720, 45, -150)
)  # UTC twice as often; +05:30, -08:00, +14:00, -12:00, +00:45, -02:30

# (date_from, date_to, team_id, user_id) queried for every scenario
QUERIES = (
    (D0 - timedelta(days=1), D0 + timedelta(days=N_DAYS + 1), None, None),
    (D0 + timedelta(days=1), D0 + timedelta(days=2), None, None),
    (D0 - timedelta(days=1), D0 + timedelta(days=N_DAYS + 1), "t1", None),
    (D0 - timedelta(days=1), D0 + timedelta(days=N_DAYS + 1), None, "u1"),
    (D0, D0 + timedelta(days=2), "t2", "u2"),
)


class HypothesisPicker:
    def __init__(self, draw) -> None:
        self.draw = draw

    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def choice(self, options):
        return self.draw(st.sampled_from(list(options)))

    def chance(self, in_four: int) -> bool:
        """True with a weight of in_four out of 4 (hypothesis shrinks towards the first option)."""
        return self.draw(st.sampled_from([False] * (4 - in_four) + [True] * in_four))

    def cost(self) -> float | None:
        return self.draw(st.one_of(st.none(), st.sampled_from([0.0, 0.1, 0.25, 1.5]),
                                   st.floats(0, 50, allow_nan=False, allow_infinity=False)))  # fmt: skip


class RandomPicker:
    def __init__(self, seed: int) -> None:
        self.rng = Random(seed)

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, options):
        return self.rng.choice(list(options))

    def chance(self, in_four: int) -> bool:
        return self.rng.random() < in_four / 4

    def cost(self) -> float | None:
        return None if self.rng.random() < 0.2 else round(self.rng.uniform(0, 50), 6)


@dataclass
class Builder:
    """Builds realistic sessions and runs; events get unique ids in an order unrelated to time."""

    pick: object
    events: list[dict] = field(default_factory=list)
    _n: int = 0

    def instant(self) -> int:
        """A time in the generated days, often right at a UTC day boundary."""
        if self.pick.chance(2):
            boundary = D0_US + self.pick.int(0, N_DAYS) * DAY
            return boundary + self.pick.choice([-1, 0, 1, -SECOND, -30 * MINUTE, 2 * MINUTE])
        return D0_US + self.pick.int(0, N_DAYS * DAY // SECOND) * SECOND  # whole seconds: ties happen

    def gap(self, most: int) -> int:
        return self.pick.choice([0, 1, SECOND, 30 * SECOND, 10 * MINUTE, most]) if self.pick.chance(2) \
            else self.pick.int(0, most // SECOND) * SECOND  # fmt: skip

    def emit(self, type_: str, at_us: int, who: tuple[str, str | None], session: str, run: str | None = None, **extra):
        user, team = who
        self._n += 1
        # ids: unique, but their sort order is unrelated to creation order (ties on time break by id)
        prefix = self.pick.choice("abcdefgh")
        event = {
            "id": f"{prefix}{self._n:04d}",
            "type": type_,
            "org_id": ORG,
            "user_id": user,
            "session_id": session,
            "occurred_at": render_time(at_us, self.pick.choice(range(len(OFFSETS)))),
        }
        if run is not None:
            event["run_id"] = run
        if team is not None:
            event["team_id"] = team
        event.update({k: v for k, v in extra.items() if v is not None})
        self.events.append(event)
        return event

    def drift(self, user: str, team: str | None) -> tuple[str, str | None]:
        """Mostly the session's user and team; sometimes the team changed, rarely another user."""
        if self.pick.chance(1):
            team = self.pick.choice([*TEAMS, None])
        if self.pick.chance(1) and self.pick.chance(2):
            user = self.pick.choice(USERS)
        return user, team

    def run_session(self, sid: str) -> str:
        """A run's events carry its session, rarely another one (the run's session is its earliest event's)."""
        return f"s{self.pick.int(0, 3)}" if self.pick.chance(1) and self.pick.chance(1) else sid

    def session(self, index: int) -> None:
        sid = f"s{index}"
        user = self.pick.choice(USERS)
        team = self.pick.choice([*TEAMS, None])
        start = self.instant()
        if self.pick.chance(3):
            self.emit("session.started", start, (user, team), sid)
        if self.pick.chance(1):  # another event at the very same instant: the smaller id is the anchor
            self.emit("message.sent", start, (self.pick.choice(USERS), self.pick.choice([*TEAMS, None])), sid)
        at = start
        for _ in range(self.pick.int(0, 3)):
            at += self.gap(3 * HOUR)
            self.emit("message.sent", at, self.drift(user, team), sid)
        if self.pick.chance(1):  # a call of the session's own (a title, a summary): usage without a run
            self.usage(start + self.gap(HOUR), self.drift(user, team), sid, None)
        for r in range(self.pick.int(0, 3)):
            self.run(f"{sid}-r{r}", sid, user, team, start + self.gap(6 * HOUR))
        if self.pick.chance(1):  # code counts of the session's own (Claude Code's counters carry no prompt)
            self.code(start + self.gap(HOUR), self.drift(user, team), sid, None)

    def code(self, at_us: int, who: tuple[str, str | None], session: str, run: str | None) -> None:
        """An agent's code counts: as counted, or running totals of a series (an OTLP cumulative counter)."""
        model = {"model": self.pick.choice(["m1", "m2"])} if self.pick.chance(2) else None
        if not self.pick.chance(1):
            self.emit("code.changed", at_us, who, session, run, lines_added=self.pick.int(0, 500),
                      lines_removed=self.pick.choice([None, self.pick.int(0, 200)]),
                      commits=self.pick.choice([None, 0, 1, 2]), attributes=model)  # fmt: skip
            return
        series = f"{session}/{run}/{self._n}"
        added, commits = 0, 0
        for _ in range(self.pick.int(1, 3)):  # later totals at any time: their order is the totals' own
            added, commits = added + self.pick.choice([0, self.pick.int(1, 300)]), commits + self.pick.choice([0, 1])
            self.emit("code.changed", at_us + self.gap(HOUR), who, session, run, series=series,
                      lines_added=added, commits=commits, attributes=model)  # fmt: skip

    def usage(self, at_us: int, who: tuple[str, str | None], session: str, run: str | None) -> None:
        """One model call's consumption; its model varies, so a run may call several."""
        self.emit(
            "usage", at_us, who, session, run,
            input_tokens=self.pick.choice([None, self.pick.int(0, 10_000)]),
            output_tokens=self.pick.choice([None, self.pick.int(0, 10_000)]),
            cache_read_tokens=self.pick.choice([None, 0, self.pick.int(1, 50_000)]),
            cache_write_tokens=self.pick.choice([None, self.pick.int(0, 5_000)]),
            cost_usd=self.pick.cost(),
            attributes=self.own_agent({"model": self.pick.choice(["m1", "m2", "m3"])} if self.pick.chance(3) else None),
        )  # fmt: skip

    def run(self, rid: str, sid: str, user: str, team: str | None, t0: int, follow_ups: int = 1) -> None:
        emitted = False
        agent = self.pick.choice(AGENTS)  # on some of its events; its earliest one's is the run's
        queued = t0
        if follow_ups == 0 and self.pick.chance(1):
            # a follow-up whose earliest event is in another session: its run is anchored there,
            # while its run.queued in this session still counts for the handed-off run (SPEC §3)
            early = queued - self.pick.choice([1, MINUTE, HOUR, 5 * HOUR])
            self.emit("run.queued", early, self.drift(user, team), "s9", rid)
        started = queued + self.gap(20 * MINUTE)
        if self.pick.chance(3):  # sometimes no run.queued
            self.emit("run.queued", queued, self.drift(user, team), self.run_session(sid), rid,
                      attributes=self.where(agent))  # fmt: skip
            emitted = True
        if self.pick.chance(3):  # sometimes no run.started
            self.emit("run.started", started, self.drift(user, team), self.run_session(sid), rid,
                      attributes=self.where(agent))  # fmt: skip
            emitted = True
        finished = started + self.gap(2 * HOUR)
        n_finished = self.pick.choice([0, 1, 1, 1, 2])  # finished twice: the latest wins
        for k in range(n_finished):
            at = finished if k == 0 else finished + self.pick.choice([-MINUTE, 0, 0, 1, MINUTE])
            status = self.pick.choice(["succeeded", "succeeded", "failed", "cancelled"])
            self.emit(
                "run.finished", at, self.drift(user, team), self.run_session(sid), rid, status=status,
                failure_category=self.pick.choice(["tool_error", "model_error", "timeout", "infra_error", "other"])
                if status == "failed" else None,
                input_tokens=self.pick.choice([None, 0, self.pick.int(1, 10_000)]),
                output_tokens=self.pick.choice([None, self.pick.int(0, 10_000)]),
                cache_read_tokens=self.pick.choice([None, self.pick.int(0, 50_000)]) if self.pick.chance(1) else None,
                cache_write_tokens=self.pick.choice([None, self.pick.int(0, 5_000)]) if self.pick.chance(1) else None,
                cost_usd=self.pick.cost(),
                attributes=self.own_agent({"model": self.pick.choice(["m1", "m2"]), "repo": "r"}
                                          if self.pick.chance(1) else None),
            )  # fmt: skip
            emitted = True
        for _ in range(self.pick.choice([0, 0, 1, 3])):  # its model calls, as they happen or late
            # before everything else at times: the usage is then the run's anchor (day, user, team, session)
            at = started + self.gap(2 * HOUR) if self.pick.chance(3) else queued - self.gap(HOUR)
            self.usage(at, self.drift(user, team), self.run_session(sid), rid)
            emitted = True
        if self.pick.chance(1):  # what it changed, maybe before its other events (then the code event anchors it)
            self.code(started + self.gap(2 * HOUR) if self.pick.chance(2) else queued - self.gap(HOUR),
                      self.drift(user, team), self.run_session(sid), rid)  # fmt: skip
            emitted = True
        if n_finished or self.pick.chance(1):  # a handoff, occasionally on an unfinished run
            handoff = finished + self.gap(HOUR)
            for h in range(self.pick.choice([0, 1, 1, 2])):
                self.emit(
                    "handoff", handoff + h * self.gap(5 * HOUR), self.drift(user, team), self.run_session(sid), rid
                )
                emitted = True
                if h == 0 and follow_ups and self.pick.chance(3):
                    # a queued follow-up near the edges of (handoff, handoff + 4 h], sometimes by another user
                    delta = self.pick.choice([-1, 0, 1, FOUR_HOURS - 1, FOUR_HOURS, FOUR_HOURS + 1,
                                              self.pick.int(0, 5 * HOUR)])  # fmt: skip
                    other_user = self.pick.choice([user, user, self.pick.choice(USERS)])
                    self.run(f"{rid}-f", sid, other_user, team, handoff + delta, follow_ups - 1)
        if not emitted:  # a run has at least one event
            self.emit("run.started", started, (user, team), sid, rid)

    def where(self, agent: str | None = None) -> dict | None:
        """Sometimes the repo (in either case) and branch a run reports; PRs of that repo and branch link to it. Often
        the run's agent."""
        found = {"agent": agent} if agent is not None and self.pick.chance(3) else {}
        if self.pick.chance(1):
            found |= {"repo": self.pick.choice(["acme/web", "Acme/Web", "acme/api"]),
                      "branch": self.pick.choice(BRANCHES)}  # fmt: skip
        return found or None

    def own_agent(self, attributes: dict | None) -> dict | None:
        """Sometimes an agent of the event's own (a call or a finish may name another agent than its run's)."""
        if not self.pick.chance(1):
            return attributes
        return {**(attributes or {}), "agent": self.pick.choice(AGENTS[1:])}

    def pull_request(self, number: int) -> None:
        """A PR's events: opened (maybe again: a reopen), then merged or closed, in any order of arrival."""
        repo = self.pick.choice(["acme/web", "ACME/web", "acme/api"])
        branch = self.pick.choice(BRANCHES)
        at = self.instant()
        who = self.pick.choice([(None, None), ("u1", None), ("u2", "t2"), (None, "t1")])
        mark = {"agent_mark": self.pick.choice(["claude-code", "copilot"])} if self.pick.chance(1) else None
        steps = [("pr.opened", at)]
        for _ in range(self.pick.int(0, 3)):
            at += self.gap(6 * HOUR)
            steps.append((self.pick.choice(["pr.opened", "pr.merged", "pr.closed", "pr.closed"]), at))
        for type_, when in steps:
            self._n += 1
            event = {"id": f"{self.pick.choice('abcdefgh')}{self._n:04d}", "type": type_, "org_id": ORG,
                     "occurred_at": render_time(when, self.pick.choice(range(len(OFFSETS)))), "repo": repo,
                     "pr_number": number, "head_branch": branch}  # fmt: skip
            user, team = who if self.pick.chance(3) else (None, None)
            if user is not None:
                event["user_id"] = user
            if team is not None:
                event["team_id"] = team
            if mark is not None and self.pick.chance(2):
                event["attributes"] = mark
            self.events.append(event)


BRANCHES = ("feat-1", "codex/fix-2", "feat-3")  # codex/: an agent's prefix
AGENTS = (None, "codex", "claude-code", "gemini-cli")  # attributes.agent of a run's events; None: none


def render_time(at_us: int, offset_index: int) -> str:
    moment = (EPOCH + timedelta(microseconds=at_us)).astimezone(OFFSETS[offset_index])
    text = moment.isoformat()
    return text.replace("+00:00", "Z") if offset_index == 0 else text


def build_events(pick, n_sessions: int, other_org_every: int) -> list[dict]:
    builder = Builder(pick)
    for index in range(n_sessions):
        builder.session(index)
    for number in range(pick.int(0, 3)):
        builder.pull_request(1 + number % 2)  # two PRs may share a number: then they are one PR (or another repo's)
    events = builder.events
    if other_org_every:  # the same ids in another org are other events
        events += [{**e, "org_id": OTHER_ORG} for e in events[::other_org_every]]
    return events


@st.composite
def scenarios(draw) -> list[dict]:
    pick = HypothesisPicker(draw)
    return build_events(pick, draw(st.integers(1, 4)), draw(st.sampled_from([0, 3])))


def random_events(seed: int, n_sessions: int) -> list[dict]:
    return build_events(RandomPicker(seed), n_sessions, other_org_every=4)


# ---------------------------------------------------------------- storage and metrics


def submit(storage, events: list[dict]) -> list[bool]:
    return storage.submit([parse_event(msgspec.json.encode(e)) for e in events]).result(timeout=30)


def product(storage, org: str, date_from: date, date_to: date, team: str | None = None, user: str | None = None):
    return msgspec.to_builtins(org_metrics(storage, MetricsQuery(org, date_from, date_to, team, user)))


def oracle(events, org: str, date_from: date, date_to: date, team: str | None = None, user: str | None = None):
    return reference_metrics(events, org, date_from, date_to, team_id=team, user_id=user)


def all_metrics(storage) -> dict:
    answers = {(ORG, *q): product(storage, ORG, *q) for q in QUERIES}
    answers[(OTHER_ORG, *QUERIES[0])] = product(storage, OTHER_ORG, *QUERIES[0])
    wide = MetricsQuery(ORG, *QUERIES[0][:2])
    for agent in FILTERED_AGENTS:
        answers[(ORG, "agent", agent)] = msgspec.to_builtins(org_metrics(storage, replace(wide, agent=agent)))
    rows = {row.key: msgspec.to_builtins(row) for row in breakdown(storage, wide, "agent")}
    empty = msgspec.to_builtins(BreakdownRow(key=None))  # an agent without a row: nothing in range
    answers[(ORG, "by agent")] = {agent: _pick(rows.get(agent, empty), BREAKDOWN_KEYS) for agent in FILTERED_AGENTS}
    return answers


def all_oracle(events) -> dict:
    answers = {(ORG, *q): oracle(events, ORG, *q) for q in QUERIES}
    answers[(OTHER_ORG, *QUERIES[0])] = oracle(events, OTHER_ORG, *QUERIES[0])
    for agent in FILTERED_AGENTS:
        answers[(ORG, "agent", agent)] = reference_metrics(events, ORG, *QUERIES[0][:2], agent=agent)
    # A breakdown row is the figures of its agent's filter (its users: the runs' users; no sessions per agent).
    answers[(ORG, "by agent")] = {agent: _pick(answers[(ORG, "agent", agent)], BREAKDOWN_KEYS)
                                  for agent in FILTERED_AGENTS}  # fmt: skip
    return answers


FILTERED_AGENTS = ("codex", "claude-code", "gemini-cli", "copilot")  # copilot: PR marks only
BREAKDOWN_KEYS = tuple(key for key in METRIC_KEYS if key not in ("active_users", "dau", "wau", "mau", "sessions",
                                                                 "runs_per_user", "sessions_per_user",
                                                                 "session_lifespan_avg_s"))  # fmt: skip


def _pick(answer: dict, keys: tuple[str, ...]) -> dict:
    return {key: answer[key] for key in keys}


def assert_same(got, want, path: str = "$") -> None:
    """Equal JSON values; floats within rel/abs 1e-9; ints must be ints; null must be null."""
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{path}: got {got!r}, want an object"
        assert set(got) == set(want), (
            f"{path}: keys differ: extra {set(got) - set(want)}, missing {set(want) - set(got)}"
        )
        for key in want:
            assert_same(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{path}: got {got!r}, want {want!r}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, bool) or want is None or isinstance(want, str):
        assert got == want and type(got) is type(want), f"{path}: got {got!r}, want {want!r}"
    elif isinstance(want, int):
        assert type(got) is int and got == want, f"{path}: got {got!r}, want {want!r}"
    elif isinstance(want, float):
        assert isinstance(got, (int, float)) and not isinstance(got, bool), f"{path}: got {got!r}, want {want!r}"
        assert got == pytest.approx(want, rel=1e-9, abs=1e-9), f"{path}: got {got!r}, want {want!r}"
    else:  # pragma: no cover
        raise AssertionError(f"{path}: unexpected value {want!r}")


def assert_all_same(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert_same(got[key], value, f"{key}")


def close(actual, expected, path="") -> None:
    """Equal, with floats compared to 1e-9 relative (sums may add in another order)."""
    if isinstance(expected, dict):
        assert set(actual) >= set(expected), f"{path}: missing {set(expected) - set(actual)}"
        for key, value in expected.items():
            close(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{path}: {len(actual)} items, expected {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            close(a, e, f"{path}[{i}]")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-9), path
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
