"""`code.changed` events (SPEC §7 lines_added, lines_removed, commits) on each backend, against the oracle.

- a run's code counts with its run (day, team, user, repo; its own model, else the run's), any other with its
  session (its own model and repo);
- a series of running totals counts each event's increase over the series' previous one, whatever the arrival
  order and chunking; a total below the previous one counts 0;
- metrics, series, breakdowns, filters and filter values; over HTTP the contract, the metrics and the CSV;
- a log written before the code columns existed opens and folds.
"""

from __future__ import annotations

import csv
import io
import itertools
import sqlite3
from datetime import timedelta

import httpx
import msgspec
from reference_metrics import reference_metrics
from support import D0, D0_US, HOUR, MINUTE, ORG, assert_same, parsed, product, render_time, submit

from agentdash.metrics import MetricsQuery, breakdown, filter_values
from agentdash.projector import Projector
from agentdash.storage.embedded.event_log import SQL as SQLITE_SQL

try:  # psycopg is optional: without it the postgres params skip (support.NEEDS_POSTGRES)
    import psycopg
except ImportError:  # pragma: no cover
    psycopg = None  # type: ignore[assignment]

D1 = D0 + timedelta(days=1)
T = D0_US + 22 * HOUR  # late on D0: an hour's shift moves an event to D1
CODE_KEYS = ("lines_added", "lines_removed", "commits")


def event(id_: str, type_: str, at: int, run: str | None = None, session: str = "s1", user: str = "u1",
          team: str | None = "t1", **extra) -> dict:  # fmt: skip
    e = {"id": id_, "type": type_, "org_id": ORG, "user_id": user, "session_id": session,
         "occurred_at": render_time(at, 0), **{k: v for k, v in extra.items() if v is not None}}  # fmt: skip
    if run is not None:
        e["run_id"] = run
    if team is not None:
        e["team_id"] = team
    return e


def code(id_: str, at: int, run: str | None = None, series: str | None = None, model: str | None = None,
         repo: str | None = None, **counts) -> dict:  # fmt: skip
    attributes = {k: v for k, v in (("model", model), ("repo", repo)) if v is not None} or None
    return event(id_, "code.changed", at, run, series=series, attributes=attributes, **counts)


def check(storage, events: list[dict], org: str = ORG, **filters) -> dict:
    """The product's metrics over D0..D1 equal the oracle's; returns the product's answer."""
    got = product(storage, org, D0, D1, filters.get("team"), filters.get("user"))
    assert_same(got, reference_metrics(events, org, D0, D1, team_id=filters.get("team"), user_id=filters.get("user")))
    return got


def in_org(events: list[dict], org: str) -> list[dict]:
    return [{**e, "org_id": org} for e in events]


def counts(metrics) -> tuple[int, int, int]:
    return tuple(metrics[k] if isinstance(metrics, dict) else getattr(metrics, k) for k in CODE_KEYS)  # type: ignore[return-value]


# ---------------------------------------------------------------- where code counts

RUN = [
    event("a1", "run.started", T, "r1", attributes={"model": "big", "repo": "acme/web"}),
    code("a2", T + 10 * MINUTE, "r1", lines_added=120, lines_removed=30),
    code("a3", T + 3 * HOUR, "r1", commits=2, model="small"),  # the next day, but the run's
    event("a4", "run.finished", T + 3 * HOUR, "r1", status="succeeded"),
]
SESSION = [  # another session, its code of no run (Claude Code's counters carry no prompt)
    event("b1", "message.sent", T + 4 * HOUR, session="s2", user="u2", team="t2"),
    code("b2", T + 5 * HOUR, session="s2", user="u2", team="t2", lines_added=7, repo="acme/api"),
]


def test_a_run_s_code_counts_with_the_run_and_the_rest_with_its_session(storage):
    events = RUN + SESSION
    submit(storage, events)
    Projector(storage).catch_up()
    got = check(storage, events)
    assert counts(got) == (127, 30, 2)
    by_day = {d["date"]: counts(d) for d in got["series"]}
    assert by_day == {str(D0): (120, 30, 2), str(D1): (7, 0, 0)}  # the run's anchor day; the session's
    assert counts(check(storage, events, team="t1")) == (120, 30, 2)
    assert counts(check(storage, events, user="u2")) == (7, 0, 0)
    query = MetricsQuery(ORG, D0, D1)
    models = {row.key: counts(row) for row in breakdown(storage, query, "model")}
    assert models == {"big": (120, 30, 0), "small": (0, 0, 2), None: (7, 0, 0)}
    repos = {row.key: counts(row) for row in breakdown(storage, query, "repo")}
    assert repos == {"acme/web": (120, 30, 2), "acme/api": (7, 0, 0)}
    assert counts(msgspec.to_builtins(breakdown(storage, MetricsQuery(ORG, D0, D1, repo="acme/api"), "team")[0])) == (
        7, 0, 0,
    )  # fmt: skip
    assert "acme/api" in filter_values(storage, query, "repo")  # a repo only code changes name is a filter value


def test_code_can_be_a_run_s_earliest_event_and_arrive_in_any_order(storage):
    events = [code("c0", T - HOUR, "r1", session="s9", user="u3", lines_added=5), *RUN]
    orders = list(itertools.permutations(events))[::5]
    projector = Projector(storage, chunk_size=1)
    for k, order in enumerate(orders):  # one org per order, so one storage holds them all
        for e in in_org(list(order), f"p{k}"):
            submit(storage, [e])
            projector.catch_up()
    for k in range(len(orders)):
        got = check(storage, in_org(events, f"p{k}"), f"p{k}", user="u3")  # the run is u3's: its earliest event
        assert counts(got) == (125, 30, 2) and got["runs"] == 1


# ---------------------------------------------------------------- running totals of a series

SERIES = [  # one counter's running totals, sent as an exporter would (some again), and another series
    code("d1", T, series="p1", lines_added=10),
    code("d2", T + MINUTE, series="p1", lines_added=10),  # no change
    code("d3", T + 2 * MINUTE, series="p1", lines_added=25, commits=1),
    code("d4", T + 3 * MINUTE, series="p1", lines_added=40, commits=1),
    code("d5", T + 4 * MINUTE, series="p2", lines_added=3),  # a new process: a new series, from 0 again
    code("d6", T + 5 * MINUTE, series="p2", lines_added=9),
    code("d7", T + 6 * MINUTE, lines_added=1),  # a plain count beside them
]


def test_a_series_counts_its_increases_once_in_every_order_and_chunking(storage):
    orders = list(itertools.permutations(SERIES))
    orders = orders[:: len(orders) // 12]
    projector = Projector(storage, chunk_size=2)
    for k, order in enumerate(orders):
        events = in_org(list(order), f"p{k}")
        for start in range(0, len(events), 3):
            submit(storage, events[start : start + 3])
            projector.catch_up()
    for k in range(len(orders)):
        assert counts(check(storage, in_org(SERIES, f"p{k}"), f"p{k}")) == (40 + 9 + 1, 0, 1)


def test_a_total_that_went_down_counts_nothing_and_the_next_counts_from_it(storage):
    events = [code("e1", T, series="p", lines_added=50), code("e2", T + MINUTE, series="p", lines_added=20,
              commits=3), code("e3", T + 2 * MINUTE, series="p", lines_added=70, commits=3)]  # fmt: skip
    submit(storage, events)
    Projector(storage).catch_up()
    # Ordered by their sums (23, 50, 73): e2 counts (20, 3); e1 (30, 0), its commits absent, so a total of 0, which
    # is below 3; e3 (20, 3), counted from e1's 0. A series should send every total each time.
    assert counts(check(storage, events)) == (70, 0, 6)


# ---------------------------------------------------------------- over HTTP


def test_over_http_the_contract_the_metrics_and_the_csv(server):
    org = "acme"  # one of the orgs the server's ingest key writes
    events = in_org(RUN + SESSION + [SERIES[0], SERIES[2]], org)
    headers = {"Authorization": f"Bearer {server.ingest_key}"}
    bad = in_org([code("x1", T, lines_added=-1), event("x2", "message.sent", T, lines_added=3), code("x3", T),
           event("x4", "usage", T, commits=1), code("x5", T, lines_added=1, cost_usd=0.1)], org)  # fmt: skip
    answer = httpx.post(f"{server.ingest_url}/v1/events", json={"events": events + bad + events[:2]}, headers=headers,
                        timeout=30).json()  # fmt: skip
    assert (answer["accepted"], answer["duplicates"]) == (len(events), 2)
    reasons = {r["id"]: r["error"] for r in answer["rejected"]}
    assert "lines_added" in reasons["x1"]
    assert reasons["x2"] == "lines_added is only allowed on code.changed events"
    assert reasons["x3"] == "code.changed events need at least one of lines_added, lines_removed, commits"
    assert reasons["x4"] == "commits is only allowed on code.changed events"
    assert reasons["x5"] == "cost_usd is only allowed on run.finished and usage events"
    server.wait_projected()
    got = server.org_metrics(org, D0, D1)
    assert_same(got, reference_metrics(events, org, D0, D1))
    assert counts(got) == (127 + 25, 30, 2 + 1)
    token = server.token(org)
    text = httpx.get(f"{server.url}/api/v1/orgs/{org}/metrics.csv", params={"from": str(D0), "to": str(D1)},
                     headers={"Authorization": f"Bearer {token}"}, timeout=30).text  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(text)))
    # D0: the run's and session s1's series (10, then 25 with a commit); D1: session s2's
    assert [(r["lines_added"], r["lines_removed"], r["commits"]) for r in rows] == [("145", "30", "3"), ("7", "0", "0")]
    by_repo = httpx.get(f"{server.url}/api/v1/orgs/{org}/breakdown/repo", params={"from": str(D0), "to": str(D1)},
                        headers={"Authorization": f"Bearer {token}"}, timeout=30).json()  # fmt: skip
    assert {r["key"]: r["lines_added"] for r in by_repo} == {"acme/web": 120, "acme/api": 7, None: 25}


# ---------------------------------------------------------------- a log from before code.changed

CODE_COLUMNS = ("lines_added", "lines_removed", "commits", "series")


def test_a_log_written_before_code_changes_opens_and_folds(backend):
    storage = backend.open()
    try:
        submit(storage, RUN[:1])
    finally:
        storage.close()
    _drop_code_columns(backend)
    storage = backend.open()
    try:
        assert [e.event for e in storage.log_entries(0, 10)] == parsed(*RUN[:1])  # counts 0, no series
        assert submit(storage, RUN + SESSION) == [False] + [True] * (len(RUN) + len(SESSION) - 1)
        Projector(storage).catch_up()
        assert counts(check(storage, RUN + SESSION)) == (127, 30, 2)
    finally:
        storage.close()


def _drop_code_columns(backend) -> None:
    """Make the log look as an older version left it: the same rows, no code columns."""
    if backend.name == "embedded":
        db = sqlite3.connect(backend.data_dir / "events.sqlite")
        with db:
            kept = [name for (name,) in db.execute(SQLITE_SQL.statement("columns")) if name not in CODE_COLUMNS]
            for name in CODE_COLUMNS:
                db.execute(f"ALTER TABLE events DROP COLUMN {name}")
            assert [name for (name,) in db.execute(SQLITE_SQL.statement("columns"))] == kept
        db.close()
    else:
        with psycopg.connect(backend.database_url, autocommit=True) as db:
            db.execute("ALTER TABLE events " + ", ".join(f"DROP COLUMN {name}" for name in CODE_COLUMNS))
