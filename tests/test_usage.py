"""`usage` events (SPEC §1, §3) on each backend, against the oracle: where a call's consumption counts.

- a run's usage is part of the run: it adds to the run.finished amounts (both count), it can be the run's
  earliest event (then it sets the run's day, user, team and session), and it may arrive before or after the
  run's other events, or for a run that never gets any;
- a usage without a run counts on its session's anchor day, team and user;
- the model breakdown and the model filter count each call under its own model (else its run's);
- a log written before the cache token columns existed opens, and its events read back with 0 cache tokens.
"""

from __future__ import annotations

import itertools
import sqlite3
from datetime import timedelta

import msgspec
import pytest
from reference_metrics import reference_metrics
from support import D0, D0_US, HOUR, MINUTE, ORG, assert_same, oracle, parsed, product, render_time, submit

from agentdash.metrics import MetricsQuery, breakdown, filter_values, org_metrics
from agentdash.projector import Projector
from agentdash.storage.embedded.event_log import SQL as SQLITE_SQL

try:  # psycopg is optional: without it the postgres params skip (support.NEEDS_POSTGRES)
    import psycopg
except ImportError:  # pragma: no cover
    psycopg = None  # type: ignore[assignment]

D1 = D0 + timedelta(days=1)
T = D0_US + 22 * HOUR  # late on D0: an hour's shift moves an event to D1


def event(id_: str, type_: str, at: int, run: str | None = None, session: str = "s1", user: str = "u1",
          team: str | None = "t1", **extra) -> dict:  # fmt: skip
    e = {"id": id_, "type": type_, "org_id": ORG, "user_id": user, "session_id": session,
         "occurred_at": render_time(at, 0), **extra}  # fmt: skip
    if run is not None:
        e["run_id"] = run
    if team is not None:
        e["team_id"] = team
    return e


def usage(id_: str, at: int, run: str | None, model: str | None, cost: float, tokens: int, **extra) -> dict:
    attributes = {"model": model} if model else None
    return event(id_, "usage", at, run, cost_usd=cost, input_tokens=tokens, output_tokens=tokens // 10,
                 cache_read_tokens=3 * tokens, cache_write_tokens=tokens // 2, attributes=attributes, **extra)  # fmt: skip


def fold_each(storage, events: list[dict]) -> None:
    """Each event in its own submit and its own fold: every later event meets an already folded one."""
    projector = Projector(storage, chunk_size=1)
    for e in events:
        submit(storage, [e])
        projector.catch_up()


def check(storage, events: list[dict], org: str = ORG, **filters) -> dict:
    """The product's metrics over D0..D1 equal the oracle's; returns the product's answer."""
    got = product(storage, org, D0, D1, filters.get("team"), filters.get("user"))
    want = oracle(events, org, D0, D1, filters.get("team"), filters.get("user"))
    assert_same(got, want)
    return got


# ---------------------------------------------------------------- a run's usage


RUN = [
    event("f1", "run.queued", T, "r1", attributes={"model": "big"}),
    event("f2", "run.started", T + MINUTE, "r1"),
    event(
        "f3",
        "run.finished",
        T + 30 * MINUTE,
        "r1",
        status="succeeded",
        cost_usd=1.0,
        input_tokens=100,
        cache_read_tokens=7,
    ),
]
CALLS = [
    usage("u1", T + 5 * MINUTE, "r1", "big", 0.25, 1000),
    usage("u2", T + 10 * MINUTE, "r1", "small", 0.125, 400),
    usage("u3", T + 3 * HOUR, "r1", None, 0.5, 2000),  # on D1, late, no model of its own: the run's
]


def test_a_runs_usage_adds_to_its_run_finished_amounts_in_every_arrival_order(storage):
    orders = list(itertools.permutations([*CALLS, RUN[2]]))
    for k, order in enumerate(orders):  # one org per order, so one storage holds them all
        fold_each(storage, [{**e, "org_id": f"p{k}"} for e in [*RUN[:2], *order]])
    for k in range(len(orders)):
        events = [{**e, "org_id": f"p{k}"} for e in [*RUN, *CALLS]]
        got = check(storage, events, f"p{k}")
        assert got["cost_usd"] == pytest.approx(1.0 + 0.25 + 0.125 + 0.5)  # both count
        assert (got["input_tokens"], got["cache_read_tokens"], got["cache_write_tokens"]) == (3500, 7 + 10200, 1700)
        assert got["cost_per_run_usd"] == pytest.approx(1.875)
        day0, day1 = got["series"]
        assert day0["cost_usd"] == pytest.approx(1.875) and day1["cost_usd"] == 0.0  # the run's day, not the call's


def test_a_usage_can_be_the_runs_earliest_event(storage):
    # the call is logged an hour before the run was queued, by u2 of team t2 in session s2: the run is theirs, on D0
    early = usage("u0", T - 2 * HOUR, "r1", "small", 0.5, 10, session="s2", user="u2", team="t2")
    events = [*RUN, early]
    fold_each(storage, RUN)
    before = check(storage, RUN, team="t1")
    fold_each(storage, [early])
    assert check(storage, events, team="t1")["runs"] == 0 == before["runs"] - 1
    moved = check(storage, events, team="t2", user="u2")
    assert (moved["runs"], moved["cost_usd"]) == (1, pytest.approx(1.5))
    assert check(storage, events)["runs_per_session"] == 1.0


def test_a_usage_for_a_run_that_never_gets_other_events_is_an_unfinished_run(storage):
    events = [usage("u1", T, "lonely", "big", 0.75, 300)]
    fold_each(storage, events)
    got = check(storage, events)
    assert (got["runs"], got["runs_finished"], got["cost_usd"]) == (1, 0, 0.75)
    assert got["cost_per_run_usd"] is None  # cost / runs_finished, nothing finished
    assert got["active_users"] == 1  # a call is an event of its user's


def test_a_usage_of_a_run_anchored_outside_the_range_does_not_count(storage):
    events = [*RUN, usage("u9", T + 3 * HOUR, "r1", "big", 0.5, 10)]
    fold_each(storage, events)
    m = msgspec.to_builtins(org_metrics(storage, MetricsQuery(ORG, D1, D1)))
    assert (m["runs"], m["cost_usd"], m["active_users"]) == (0, 0.0, 1)  # active on D1 through the call


def test_a_resent_usage_counts_once(storage):
    events = [*RUN, *CALLS]
    assert submit(storage, events + CALLS) == [True] * len(events) + [False] * len(CALLS)
    Projector(storage).catch_up()
    assert check(storage, events)["cost_usd"] == pytest.approx(1.875)


# ---------------------------------------------------------------- a session's own usage


def test_a_usage_without_a_run_counts_on_its_sessions_anchor(storage):
    title = usage("t1", T + 3 * HOUR, None, "small", 0.01, 50)  # on D1
    started = event("s0", "session.started", T)  # D0, team t1
    earlier = event("m0", "message.sent", T - 30 * HOUR, user="u3", team="t3")  # a day before D0: the anchor moves
    fold_each(storage, [title])
    alone = check(storage, [title])
    assert (alone["sessions"], alone["cost_usd"], alone["series"][1]["cost_usd"]) == (1, 0.01, 0.01)
    fold_each(storage, [started])
    got = check(storage, [title, started], team="t1")
    assert (got["series"][0]["cost_usd"], got["series"][1]["cost_usd"], got["runs"]) == (0.01, 0.0, 0)
    assert got["cost_per_run_usd"] is None
    fold_each(storage, [earlier])
    assert check(storage, [title, started, earlier])["cost_usd"] == 0.0  # the session is now of the day before
    wide = msgspec.to_builtins(org_metrics(storage, MetricsQuery(ORG, D0 - timedelta(days=1), D1, team_id="t3")))
    assert (wide["sessions"], wide["cost_usd"]) == (1, 0.01)


# ---------------------------------------------------------------- breakdowns and filters by model


def test_each_call_counts_under_its_own_model(storage):
    title = usage("t1", T, None, "small", 0.01, 50, session="s5")
    other = [
        event("g1", "run.started", T, "r2", session="s5", attributes={"model": "small", "repo": "api"}),
        event(
            "g2",
            "run.finished",
            T + HOUR,
            "r2",
            session="s5",
            status="failed",
            failure_category="timeout",
            cost_usd=2.0,
        ),
    ]
    events = [*RUN, *CALLS, title, *other]
    submit(storage, events)
    Projector(storage).catch_up()
    query = MetricsQuery(ORG, D0, D1)
    rows = {row.key: row for row in breakdown(storage, query, "model")}
    assert set(rows) == {"big", "small"}
    # big: r1's run.finished and its calls on big or on no model; small: r1's call on it, the title and r2
    assert rows["big"].cost_usd == pytest.approx(1.0 + 0.25 + 0.5)
    assert rows["small"].cost_usd == pytest.approx(0.125 + 0.01 + 2.0)
    assert (rows["big"].runs, rows["small"].runs) == (1, 1)  # runs stay under the run's model
    assert rows["small"].input_tokens == 400 + 50
    total = org_metrics(storage, query)
    assert sum(row.cost_usd for row in rows.values()) == pytest.approx(total.cost_usd)
    for model, row in rows.items():  # a filter by model gives that model's row
        filtered = msgspec.to_builtins(org_metrics(storage, MetricsQuery(ORG, D0, D1, model=model)))
        assert filtered["cost_usd"] == pytest.approx(row.cost_usd)
        assert_same(filtered, reference_metrics(events, ORG, D0, D1, model=model))
    repos = {row.key: row for row in breakdown(storage, query, "repo")}
    assert repos["api"].cost_usd == 2.0  # a session's own call has no repo
    assert filter_values(storage, query, "model") == ["big", "small"]
    assert filter_values(storage, MetricsQuery(ORG, D0, D1, repo="api"), "model") == ["small"]


# ---------------------------------------------------------------- a log from before the cache columns


OLD_SQLITE_LOG = """CREATE TABLE events (
    seq INTEGER PRIMARY KEY, dedupe_key INTEGER NOT NULL, received_us INTEGER NOT NULL,
    id TEXT NOT NULL, type TEXT NOT NULL, org_id TEXT NOT NULL, user_id TEXT NOT NULL,
    session_id TEXT NOT NULL, run_id TEXT, team_id TEXT, occurred_us INTEGER NOT NULL,
    status TEXT, failure_category TEXT, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL, model TEXT, repo TEXT, attributes TEXT)"""


def test_a_log_written_before_the_cache_columns_opens_and_folds(backend):
    old = [*RUN[:2], event("f9", "run.finished", T + HOUR, "r1", status="cancelled", cost_usd=0.5)]
    new = CALLS
    storage = backend.open()
    try:
        submit(storage, old)
    finally:
        storage.close()
    _drop_cache_columns(backend)
    storage = backend.open()
    try:
        assert [e.event for e in storage.log_entries(0, 10)] == parsed(*old)  # cache tokens 0, as when sent
        assert submit(storage, new + old[:1]) == [True] * len(new) + [False]
        Projector(storage).catch_up()
        assert [e.event for e in storage.log_entries(0, 10)] == parsed(*old, *new)
        assert check(storage, old + new)["cache_read_tokens"] == 10200
    finally:
        storage.close()


def _drop_cache_columns(backend) -> None:
    """Make the log look as an older version left it: the same rows, no cache token columns."""
    if backend.name == "embedded":
        db = sqlite3.connect(backend.data_dir / "events.sqlite")
        with db:
            db.execute("ALTER TABLE events RENAME TO newer")
            db.execute(OLD_SQLITE_LOG)
            db.execute(f"INSERT INTO events SELECT {', '.join(_old_columns(db))} FROM newer")
            db.execute("DROP TABLE newer")
        db.close()
    else:
        with psycopg.connect(backend.database_url, autocommit=True) as db:
            db.execute("ALTER TABLE events DROP COLUMN cache_read_tokens, DROP COLUMN cache_write_tokens")


def _old_columns(db: sqlite3.Connection) -> list[str]:
    return [name for (name,) in db.execute(SQLITE_SQL.statement("columns")) if not name.startswith("cache_")]
