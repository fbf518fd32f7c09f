"""The projector folds the event log into read models whose metrics equal those of the distinct events.

Properties checked here (SPEC §1 last paragraph, §2–§3):
- any arrival order, duplication, batching, fold chunk size and fold timing gives the metrics of
  one in-order fold of the distinct events, and those equal the reference oracle's;
- a rebuild from the log (reset + catch_up) gives the incremental path's numbers;
- a fold that fails midway (exception or SIGKILL) leaves the checkpoint where it was, and the
  next fold counts every event exactly once; checkpoint and numbers survive a reopen;
- ProjectionStatus counts what is logged, folded and still to fold.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from random import Random

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentdash.config import load_settings
from agentdash.events import parse_event
from agentdash.metrics import MetricsQuery, org_metrics
from agentdash.projector import Projector
from agentdash.storage import open_storage
from agentdash.storage.embedded import read_models as duckdb_models

try:  # tests/ as a plain directory (conftest puts it on sys.path) or as a package
    from reference_metrics import reference_metrics
except ImportError:  # pragma: no cover
    from tests.reference_metrics import reference_metrics

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


# ---------------------------------------------------------------- scenario builder
#
# One builder, two sources of choices: hypothesis draws (property test, shrinks) and a seeded
# Random (deterministic tests that need a larger data set).


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
        for r in range(self.pick.int(0, 3)):
            self.run(f"{sid}-r{r}", sid, user, team, start + self.gap(6 * HOUR))

    def run(self, rid: str, sid: str, user: str, team: str | None, t0: int, follow_ups: int = 1) -> None:
        emitted = False
        queued = t0
        if follow_ups == 0 and self.pick.chance(1):
            # a follow-up whose earliest event is in another session: its run is anchored there,
            # while its run.queued in this session still counts for the handed-off run (SPEC §3)
            early = queued - self.pick.choice([1, MINUTE, HOUR, 5 * HOUR])
            self.emit("run.queued", early, self.drift(user, team), "s9", rid)
        started = queued + self.gap(20 * MINUTE)
        if self.pick.chance(3):  # sometimes no run.queued
            self.emit("run.queued", queued, self.drift(user, team), self.run_session(sid), rid)
            emitted = True
        if self.pick.chance(3):  # sometimes no run.started
            self.emit("run.started", started, self.drift(user, team), self.run_session(sid), rid)
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
                cost_usd=self.pick.cost(),
                attributes={"model": self.pick.choice(["m1", "m2"]), "repo": "r"} if self.pick.chance(1) else None,
            )  # fmt: skip
            emitted = True
        if n_finished or self.pick.chance(1):  # a handoff, occasionally on an unfinished run
            handoff = finished + self.gap(HOUR)
            for h in range(self.pick.choice([0, 1, 1, 2])):
                self.emit("handoff", handoff + h * self.gap(5 * HOUR), self.drift(user, team), self.run_session(sid), rid)
                emitted = True
                if h == 0 and follow_ups and self.pick.chance(3):
                    # a queued follow-up near the edges of (handoff, handoff + 4 h], sometimes by another user
                    delta = self.pick.choice([-1, 0, 1, FOUR_HOURS - 1, FOUR_HOURS, FOUR_HOURS + 1,
                                              self.pick.int(0, 5 * HOUR)])  # fmt: skip
                    other_user = self.pick.choice([user, user, self.pick.choice(USERS)])
                    self.run(f"{rid}-f", sid, other_user, team, handoff + delta, follow_ups - 1)
        if not emitted:  # a run has at least one event
            self.emit("run.started", started, (user, team), sid, rid)


def render_time(at_us: int, offset_index: int) -> str:
    moment = (EPOCH + timedelta(microseconds=at_us)).astimezone(OFFSETS[offset_index])
    text = moment.isoformat()
    return text.replace("+00:00", "Z") if offset_index == 0 else text


def build_events(pick, n_sessions: int, other_org_every: int) -> list[dict]:
    builder = Builder(pick)
    for index in range(n_sessions):
        builder.session(index)
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


# ---------------------------------------------------------------- helpers


def open_at(data_dir: Path, **flags):
    return open_storage(load_settings(data_dir=data_dir, **flags))


def submit(storage, events: list[dict]) -> list[bool]:
    return storage.submit([parse_event(msgspec.json.encode(e)) for e in events]).result(timeout=30)


def product(storage, org: str, date_from: date, date_to: date, team: str | None = None, user: str | None = None):
    return msgspec.to_builtins(org_metrics(storage, MetricsQuery(org, date_from, date_to, team, user)))


def oracle(events, org: str, date_from: date, date_to: date, team: str | None = None, user: str | None = None):
    return reference_metrics(events, org, date_from, date_to, team_id=team, user_id=user)


def all_metrics(storage) -> dict:
    answers = {(ORG, *q): product(storage, ORG, *q) for q in QUERIES}
    answers[(OTHER_ORG, *QUERIES[0])] = product(storage, OTHER_ORG, *QUERIES[0])
    return answers


def all_oracle(events) -> dict:
    answers = {(ORG, *q): oracle(events, ORG, *q) for q in QUERIES}
    answers[(OTHER_ORG, *QUERIES[0])] = oracle(events, OTHER_ORG, *QUERIES[0])
    return answers


def assert_same(got, want, path: str = "$") -> None:
    """Equal JSON values; floats within rel/abs 1e-9; ints must be ints; null must be null."""
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{path}: got {got!r}, want an object"
        assert set(got) == set(want), f"{path}: keys differ: extra {set(got) - set(want)}, missing {set(want) - set(got)}"
        for key in want:
            assert_same(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{path}: got {got!r}, want {want!r}"
        for i, (g, w) in enumerate(zip(got, want)):
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


def distinct(events: list[dict]) -> list[dict]:
    seen, out = set(), []
    for e in events:
        if (e["org_id"], e["id"]) not in seen:
            seen.add((e["org_id"], e["id"]))
            out.append(e)
    return out


def in_order_metrics(events: list[dict], data_dir: Path) -> dict:
    """Metrics of one in-order delivery and one fold of the distinct events."""
    storage = open_at(data_dir)
    try:
        if events:
            assert all(submit(storage, events))
        Projector(storage).catch_up()
        return all_metrics(storage)
    finally:
        storage.close()


# ---------------------------------------------------------------- property: any delivery, same metrics


@st.composite
def deliveries(draw, n: int):
    """A random permutation with random extra copies, cut into batches, with folds between them."""
    order = draw(st.permutations(range(n)))
    copies = draw(st.lists(st.integers(0, n - 1), max_size=n // 2 + 2)) if n else []
    sequence = list(order)
    for c in copies:
        sequence.insert(draw(st.integers(0, len(sequence))), c)
    cuts = sorted(draw(st.lists(st.integers(0, len(sequence)), max_size=6)))
    batches = [sequence[a:b] for a, b in zip([0, *cuts], [*cuts, len(sequence)])]
    steps = []
    for batch in batches:
        together = draw(st.booleans())  # submit the batch in parts without waiting: one group commit
        fold = draw(st.sampled_from(["none", "once", "twice", "catch_up"]))
        steps.append((batch, together, fold))
    return draw(st.integers(1, 12)), steps


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(events=scenarios(), data=st.data())
def test_any_delivery_gives_the_metrics_of_the_distinct_events(events, data):
    chunk_size, steps = data.draw(deliveries(len(events)), label="delivery")
    with tempfile.TemporaryDirectory() as tmp:
        storage = open_at(Path(tmp) / "shuffled")
        projector = Projector(storage, chunk_size=chunk_size)
        try:
            stored = 0
            for batch, together, fold in steps:
                batch_events = [events[i] for i in batch]
                if together and len(batch_events) > 1:
                    half = len(batch_events) // 2
                    futures = [storage.submit([parse_event(msgspec.json.encode(e)) for e in part])
                               for part in (batch_events[:half], batch_events[half:])]  # fmt: skip
                    results = [r for f in futures for r in f.result(timeout=30)]
                elif batch_events:
                    results = submit(storage, batch_events)
                else:
                    results = []
                stored += sum(results)
                if fold == "once":
                    projector.fold_once()
                elif fold == "twice":
                    projector.fold_once()
                    projector.fold_once()
                elif fold == "catch_up":
                    projector.catch_up()
            assert stored == len(events)  # every distinct event stored once, every copy refused
            projector.catch_up()
            status = projector.status()
            assert (status.events_logged, status.events_projected, status.lag_events) == (len(events),) * 2 + (0,)
            shuffled = all_metrics(storage)
        finally:
            storage.close()
        once = in_order_metrics(events, Path(tmp) / "in-order")
    assert_all_same(shuffled, once)
    assert_all_same(shuffled, all_oracle(events))


def test_follow_up_in_another_chunk_than_the_handoff_in_every_order(tmp_path):
    """The follow-up flag depends on events of two runs; each arrival order, one event per fold."""
    t = D0_US + 10 * HOUR

    def event(id_, type_, at, run, session="s1", user="u1", **extra):
        return {"id": id_, "type": type_, "org_id": ORG, "user_id": user, "session_id": session,
                "run_id": run, "occurred_at": render_time(at, 0), **extra}  # fmt: skip

    base = [
        event("a1", "run.queued", t, "r1"),
        event("a2", "run.started", t + MINUTE, "r1"),
        event("a3", "run.finished", t + 2 * MINUTE, "r1", status="succeeded"),
    ]
    moving = [
        event("b1", "handoff", t + HOUR, "r1"),
        # r2 is anchored in session s9 by its earliest event; its run.queued in s1 is the follow-up
        event("b2", "run.queued", t - HOUR, "r2", session="s9"),
        event("b3", "run.queued", t + HOUR + FOUR_HOURS, "r2"),  # exactly 4 h after the handoff
        event("b4", "handoff", t + 90 * MINUTE, "r1"),  # a later handoff does not move the window
    ]
    orders = list(itertools.permutations(moving))
    storage = open_at(tmp_path / "d")
    try:
        for k, order in enumerate(orders):  # one org per order, so one storage holds them all
            submit(storage, [{**e, "org_id": f"p{k}"} for e in [*base, *order]])
        Projector(storage, chunk_size=1).catch_up()
        for k, order in enumerate(orders):
            events = [{**e, "org_id": f"p{k}"} for e in [*base, *order]]
            got = product(storage, f"p{k}", D0, D0)
            want = oracle(events, f"p{k}", D0, D0)
            assert want["post_handoff_iteration_rate"] == 1.0
            assert_same(got, want, f"order {[e['id'] for e in order]}")
    finally:
        storage.close()


# ---------------------------------------------------------------- rebuild


def test_rebuild_gives_the_incremental_numbers(tmp_path):
    events = random_events(seed=7, n_sessions=40)
    rng = Random(8)
    delivery = events + rng.sample(events, 30)
    rng.shuffle(delivery)
    storage = open_at(tmp_path / "d")
    try:
        projector = Projector(storage, chunk_size=3)
        for start in range(0, len(delivery), 17):
            submit(storage, delivery[start : start + 17])
            projector.fold_once()  # folds lag behind arrivals: many small chunks
        assert projector.catch_up() > 0
        incremental = all_metrics(storage)
        assert_all_same(incremental, all_oracle(events))
        assert incremental[(ORG, *QUERIES[0])]["runs"] > 20  # the data set is not trivial

        storage.reset_read_models()
        assert storage.fold_state().seq == 0
        assert product(storage, ORG, *QUERIES[0][:2])["runs"] == 0  # the read models really are empty
        assert Projector(storage).catch_up() == len(events)
        assert_all_same(all_metrics(storage), incremental)
    finally:
        storage.close()


# ---------------------------------------------------------------- crash safety


class FailingConnection:
    """Wraps the read models' DuckDB connection; raises instead of running the n-th fold statement."""

    def __init__(self, inner, fail_at: int) -> None:
        self.inner = inner
        self.fail_at = fail_at
        self.statements: list[str] = []

    def execute(self, sql, *args, **kwargs):
        if sql.strip().upper() != "ROLLBACK":
            self.statements.append(sql)
            if len(self.statements) == self.fail_at:
                raise RuntimeError(f"injected failure at statement {self.fail_at}")
        return self.inner.execute(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


# statements of one fold: BEGIN, the fold steps, save_checkpoint, COMMIT
FOLD_STATEMENTS = 1 + len(duckdb_models.FOLD_STEPS) + 2


@pytest.mark.parametrize("fail_at", range(2, FOLD_STATEMENTS + 1))
def test_a_fold_that_fails_midway_moves_nothing(tmp_path, fail_at):
    events = random_events(seed=11, n_sessions=12)
    first, second = events[: len(events) // 2], events[len(events) // 2 :]
    storage = open_at(tmp_path / "d")
    try:
        projector = Projector(storage, chunk_size=len(events))
        submit(storage, first)
        projector.catch_up()
        before_state = storage.fold_state()
        before = all_metrics(storage)
        assert before_state.seq == len(first)
        assert_all_same(before, all_oracle(first))

        submit(storage, second + first[:5])  # new events and some copies
        models = storage._models  # white box: the fold's DuckDB connection
        real = models._db
        models._db = failing = FailingConnection(real, fail_at)
        try:
            with pytest.raises(RuntimeError, match="injected failure"):
                projector.fold_once()
        finally:
            models._db = real
        assert len(failing.statements) == fail_at  # it did fail where asked, after fail_at - 1 statements ran

        assert storage.fold_state() == before_state  # the checkpoint did not move
        assert projector.status().lag_events == len(second)
        assert_all_same(all_metrics(storage), before)  # no half-folded chunk is visible

        assert projector.catch_up() == len(second)  # the retry folds the same entries
        assert_all_same(all_metrics(storage), all_oracle(events))  # nothing lost, nothing counted twice
    finally:
        storage.close()


KILL_MIDWAY = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import msgspec
    from agentdash.config import load_settings
    from agentdash.events import parse_event
    from agentdash.projector import Projector
    from agentdash.storage import open_storage

    data_dir, kill_at = Path(sys.argv[1]), int(sys.argv[2])
    events = msgspec.json.decode(Path(sys.argv[3]).read_bytes())
    storage = open_storage(load_settings(data_dir=data_dir))
    stored = storage.submit([parse_event(msgspec.json.encode(e)) for e in events]).result()
    print(sum(stored), flush=True)
    models = storage._models
    real = models._db

    class Killer:
        count = 0
        def execute(self, sql, *args, **kwargs):
            Killer.count += 1
            result = real.execute(sql, *args, **kwargs)
            if Killer.count == kill_at:  # this statement ran; the process dies before the next
                sys.stdout.write("killing\\n"); sys.stdout.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        def __getattr__(self, name):
            return getattr(real, name)

    models._db = Killer()
    Projector(storage, chunk_size=int(sys.argv[4])).catch_up()
    print("not killed")
    """
)


@pytest.mark.parametrize("kill_at", [2, FOLD_STATEMENTS - 1, FOLD_STATEMENTS + 3])
def test_sigkill_during_a_fold_loses_and_doubles_nothing(tmp_path, kill_at):
    events = random_events(seed=12, n_sessions=10)
    first, second = events[:40], events[40:]
    data_dir = tmp_path / "d"
    storage = open_at(data_dir)
    try:
        submit(storage, first)
        Projector(storage).catch_up()
    finally:
        storage.close()
    batch = tmp_path / "second.json"
    batch.write_bytes(msgspec.json.encode(second + first[:5]))
    chunk = len(second) // 2  # two chunks: kill_at past one fold's statements dies in the second
    done = subprocess.run(
        [sys.executable, "-c", KILL_MIDWAY, str(data_dir), str(kill_at), str(batch), str(chunk)],
        check=False, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    assert done.returncode == -9, done.stderr
    assert done.stdout == f"{len(second)}\nkilling\n"  # the copies were refused; it died mid-fold

    storage = open_at(data_dir)
    try:
        projector = Projector(storage)
        state = storage.fold_state().seq
        expected_seq = len(first) if kill_at <= FOLD_STATEMENTS - 1 else len(first) + chunk
        assert state == expected_seq  # the interrupted chunk's checkpoint never committed
        assert projector.status().events_logged == len(events)  # acknowledged events survived the kill
        assert projector.catch_up() == len(events) - state
        assert_all_same(all_metrics(storage), all_oracle(events))
    finally:
        storage.close()


def test_checkpoint_and_numbers_persist_across_reopen(tmp_path):
    events = random_events(seed=13, n_sessions=20)
    first, second = events[:60], events[60:]
    data_dir = tmp_path / "d"
    storage = open_at(data_dir)
    try:
        submit(storage, first)
        Projector(storage, chunk_size=7).catch_up()
        state, numbers = storage.fold_state(), all_metrics(storage)
    finally:
        storage.close()
    assert state.seq == len(first) and state.folded_at_us is not None

    storage = open_at(data_dir)
    try:
        assert storage.fold_state() == state
        assert_all_same(all_metrics(storage), numbers)
        assert_all_same(numbers, all_oracle(first))
        assert Projector(storage).catch_up() == 0  # nothing is folded a second time
        # after the reopen, old copies are refused (the dedupe index is rebuilt) and new events fold on
        assert submit(storage, first[:10] + second) == [False] * 10 + [True] * len(second)
        assert Projector(storage, chunk_size=5).catch_up() == len(second)
        assert_all_same(all_metrics(storage), all_oracle(events))
        final_state = storage.fold_state()
    finally:
        storage.close()

    storage = open_at(data_dir)
    try:
        assert storage.fold_state() == final_state
        assert final_state.seq == len(events)
        assert_all_same(all_metrics(storage), all_oracle(events))
    finally:
        storage.close()


# ---------------------------------------------------------------- ProjectionStatus


def test_projection_status_counts_logged_folded_and_lagging(tmp_path):
    events = random_events(seed=14, n_sessions=6)
    n = len(events)
    assert n >= 10
    storage = open_at(tmp_path / "d")
    try:
        projector = Projector(storage, chunk_size=4)
        empty = projector.status()
        assert (empty.events_logged, empty.events_projected, empty.lag_events) == (0, 0, 0)
        assert empty.lag_seconds == 0.0 and empty.last_fold_at_us is None

        before_submit = time.time_ns() // 1000
        submit(storage, events + events[:3])  # copies are not logged
        status = projector.status()
        assert (status.events_logged, status.events_projected, status.lag_events) == (n, 0, n)
        assert status.last_fold_at_us is None
        assert 0.0 <= status.lag_seconds <= (time.time_ns() // 1000 - before_submit) / 1e6 + 0.001

        assert projector.fold_once() == 4
        status = projector.status()
        assert (status.events_logged, status.events_projected, status.lag_events) == (n, 4, n - 4)
        assert status.last_fold_at_us is not None and status.last_fold_at_us >= before_submit

        assert projector.catch_up() == n - 4
        status = projector.status()
        assert (status.events_logged, status.events_projected, status.lag_events) == (n, n, 0)
        assert status.lag_seconds == 0.0
        assert projector.fold_once() == 0

        submit(storage, events[:2])  # only copies: nothing new to fold
        assert projector.status().lag_events == 0
        extra = {**events[0], "id": "zz-new"}
        assert submit(storage, [extra]) == [True]
        status = projector.status()
        assert (status.events_logged, status.events_projected, status.lag_events) == (n + 1, n, 1)
    finally:
        storage.close()
