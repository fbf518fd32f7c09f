"""Pull requests and outcomes (SPEC §7, .ai/PR_OUTCOMES.md) on each backend, against the oracle.

- a PR that arrives before the runs of its branch is attributed (agent-authored, their user and team) once they do;
- a mark or an agent branch prefix makes a PR agent-authored without runs; any other PR is not counted;
- state: reopened, merged, closed unmerged by its latest event; merge rate null with nothing merged or closed;
- time to merge p50 (interpolated), cost per merged PR;
- members and managers see the PRs of their user and teams, over real HTTP, JSON and CSV;
- a log written before pr.* events opens, and its runs' branches (then in attributes only) still link.
"""

from __future__ import annotations

import csv
import io
import itertools
import sqlite3
from datetime import timedelta

import httpx
import msgspec
import pytest
from support import D0, D0_US, HOUR, MINUTE, ORG, assert_same, oracle, parsed, product, render_time, submit

from agentdash.metrics import MetricsQuery, breakdown, org_metrics
from agentdash.projector import Projector
from agentdash.storage.embedded.event_log import SQL as SQLITE_SQL

try:  # psycopg is optional: without it the postgres params skip (support.NEEDS_POSTGRES)
    import psycopg
except ImportError:  # pragma: no cover
    psycopg = None  # type: ignore[assignment]

D1 = D0 + timedelta(days=1)
T = D0_US + 10 * HOUR


def pr(id_: str, type_: str, at: int, number: int = 1, branch: str = "feat-1", repo: str = "Acme/Web",
       **extra) -> dict:  # fmt: skip
    return {"id": id_, "type": type_, "org_id": ORG, "occurred_at": render_time(at, 0), "repo": repo,
            "pr_number": number, "head_branch": branch, **extra}  # fmt: skip


def run_event(id_: str, type_: str, at: int, run: str, user: str = "u1", team: str | None = "t1",
              branch: str | None = "feat-1", repo: str = "acme/web", **extra) -> dict:  # fmt: skip
    e = {"id": id_, "type": type_, "org_id": ORG, "user_id": user, "session_id": f"s-{run}", "run_id": run,
         "occurred_at": render_time(at, 0), **extra}  # fmt: skip
    if team is not None:
        e["team_id"] = team
    if branch is not None:
        e["attributes"] = {"repo": repo, "branch": branch}
    return e


def fold_each(storage, events: list[dict]) -> None:
    """Each event in its own submit and fold: every later event meets an already folded one."""
    projector = Projector(storage, chunk_size=1)
    for e in events:
        submit(storage, [e])
        projector.catch_up()


def check(storage, events: list[dict], org: str = ORG, team: str | None = None, user: str | None = None) -> dict:
    got = product(storage, org, D0, D1, team, user)
    assert_same(got, oracle(events, org, D0, D1, team, user))
    return got


PR_EVENTS = [pr("p1", "pr.opened", T), pr("p2", "pr.merged", T + 2 * HOUR)]
RUN = [
    run_event("r1", "run.started", T - HOUR, "run-a", cost_usd=None),
    run_event("r2", "run.finished", T - 30 * MINUTE, "run-a", status="succeeded", cost_usd=3.0),
]


def test_a_pr_before_its_runs_is_attributed_once_they_arrive_in_every_order(storage):
    orders = list(itertools.permutations([*PR_EVENTS, *RUN]))
    for k, order in enumerate(orders):  # one org per order, so one storage holds them all
        fold_each(storage, [{**e, "org_id": f"p{k}"} for e in order])
    for k in range(len(orders)):
        events = [{**e, "org_id": f"p{k}"} for e in [*PR_EVENTS, *RUN]]
        got = check(storage, events, f"p{k}")
        assert (got["agent_prs_opened"], got["agent_prs_merged"], got["agent_pr_merge_rate"]) == (1, 1, 1.0)
        assert got["cost_per_merged_pr_usd"] == 3.0
        assert check(storage, events, f"p{k}", team="t1", user="u1")["agent_prs_merged"] == 1  # the run's user
    fold_each(storage, PR_EVENTS)
    alone = check(storage, PR_EVENTS)
    assert (alone["agent_prs_opened"], alone["agent_prs_merged"]) == (0, 0)  # no run yet, no mark: not an agent's
    fold_each(storage, RUN)
    assert check(storage, [*PR_EVENTS, *RUN], user="u1")["agent_prs_merged"] == 1


def test_the_earliest_run_of_the_branch_gives_the_pr_its_user_and_team(storage):
    later = [run_event("x1", "run.started", T - 10 * MINUTE, "run-b", user="u2", team="t2")]
    earlier = [run_event("x2", "run.queued", T - 5 * HOUR, "run-c", user="u3", team="t3")]
    fold_each(storage, [*PR_EVENTS, *later])
    assert check(storage, [*PR_EVENTS, *later], team="t2")["agent_prs_merged"] == 1
    fold_each(storage, earlier)  # now the PR is u3's, in t3
    events = [*PR_EVENTS, *later, *earlier]
    assert check(storage, events, team="t2")["agent_prs_merged"] == 0
    assert check(storage, events, team="t3", user="u3")["agent_prs_merged"] == 1
    # a run whose branch moves away (an earlier event of it names another branch) no longer links its old branch
    moved = [run_event("x3", "run.queued", T - 6 * HOUR, "run-c", user="u3", team="t3", branch="other")]
    fold_each(storage, moved)
    assert check(storage, events + moved, team="t2")["agent_prs_merged"] == 1


def test_a_mark_or_an_agent_prefix_makes_a_pr_an_agents_and_nothing_else_does(storage):
    events = [
        pr("a1", "pr.opened", T, 1, branch="codex/fix-login"),
        pr("a2", "pr.opened", T, 2, branch="copilot/docs"),
        pr("a3", "pr.opened", T, 3, branch="feature/x", attributes={"agent_mark": "claude-code"}),
        pr("a4", "pr.opened", T, 4, branch="feature/y", author="octocat", user_id="u1"),  # a person's PR
        pr("a5", "pr.opened", T, 5, branch="fix/codex/z"),  # the prefix must start the branch
        pr("a6", "pr.closed", T + HOUR, 3, branch="feature/x"),  # the mark on one event marks the PR
    ]
    fold_each(storage, events)
    got = check(storage, events)
    assert (got["agent_prs_opened"], got["agent_prs_closed_unmerged"]) == (3, 1)
    assert got["agent_pr_merge_rate"] == 0.0
    assert got["active_users"] == 0 and got["sessions"] == 0  # a forge's events are no one's activity


def test_merge_rate_is_null_until_something_is_merged_or_closed_and_a_reopen_counts(storage):
    opened = [pr("o1", "pr.opened", T, branch="claude/a")]
    fold_each(storage, opened)
    got = check(storage, opened)
    assert (got["agent_prs_opened"], got["agent_pr_merge_rate"], got["agent_pr_time_to_merge_p50_s"]) == (1, None, None)
    assert got["cost_per_merged_pr_usd"] is None
    closed = [pr("o2", "pr.closed", T + HOUR, branch="claude/a")]
    reopened = [pr("o3", "pr.opened", T + 2 * HOUR, branch="claude/a")]  # the latest event is no close: open again
    fold_each(storage, reopened + closed)
    got = check(storage, opened + closed + reopened)
    assert (got["agent_prs_opened"], got["agent_prs_closed_unmerged"], got["agent_pr_merge_rate"]) == (1, 0, None)
    closed_again = [pr("o4", "pr.closed", T + 26 * HOUR, branch="claude/a")]  # on D1: counted on its latest close
    fold_each(storage, closed_again)
    got = check(storage, opened + closed + reopened + closed_again)
    assert [day["agent_prs_closed_unmerged"] for day in got["series"]] == [0, 1]
    assert got["agent_pr_merge_rate"] == 0.0


def test_time_to_merge_p50_is_the_interpolated_median_and_a_resent_pr_counts_once(storage):
    hours = [1, 2, 4, 16]
    events = []
    for n, h in enumerate(hours, start=1):
        events += [pr(f"m{n}o", "pr.opened", T, n, branch=f"claude/{n}"),
                   pr(f"m{n}m", "pr.merged", T + h * HOUR, n, branch=f"claude/{n}")]  # fmt: skip
    assert submit(storage, events + events[:3]) == [True] * len(events) + [False] * 3
    Projector(storage).catch_up()
    got = check(storage, events)
    assert got["agent_pr_time_to_merge_p50_s"] == 3 * 3600.0  # between 2 h and 4 h
    assert got["agent_prs_merged"] == 4 and got["agent_pr_merge_rate"] == 1.0
    three = msgspec.to_builtins(org_metrics(storage, MetricsQuery(ORG, D0, D0)))
    assert (three["agent_prs_merged"], three["agent_pr_time_to_merge_p50_s"]) == (3, 2 * 3600.0)  # 16 h: on D1


def test_cost_per_merged_pr_is_the_ranges_cost_over_its_merged_prs(storage):
    other_run = [run_event("c1", "run.finished", T, "run-z", branch=None, status="failed", failure_category="timeout",
                           cost_usd=1.5)]  # fmt: skip
    second = [pr("c2", "pr.opened", T, 2, branch="codex/b"), pr("c3", "pr.merged", T + HOUR, 2, branch="codex/b")]
    events = [*PR_EVENTS, *RUN, *other_run, *second]
    fold_each(storage, events)
    got = check(storage, events)
    assert got["cost_per_merged_pr_usd"] == pytest.approx((3.0 + 1.5) / 2)
    rows = {row.key: row for row in breakdown(storage, MetricsQuery(ORG, D0, D1), "repo")}
    assert rows["acme/web"].agent_prs_merged == 1  # the linked run's repo, so the repo filter matches runs'
    assert rows["Acme/Web"].agent_prs_merged == 1  # an unlinked PR keeps its own spelling
    assert rows["acme/web"].cost_per_merged_pr_usd == 3.0


# ---------------------------------------------------------------- who sees which PRs, over HTTP


SCOPED = [
    *(
        run_event(f"s{u}", "run.started", T - HOUR, f"run-{u}", user=u, team=t, branch=f"b-{u}")
        for u, t in (("u1", "t1"), ("u2", "t2"), ("u3", "t1"))
    ),  # fmt: skip
    *(
        e
        for u in ("u1", "u2", "u3")
        for e in (
            pr(f"o{u}", "pr.opened", T, int(u[1]), branch=f"b-{u}"),
            pr(f"m{u}", "pr.merged", T + HOUR, int(u[1]), branch=f"b-{u}"),
        )
    ),  # fmt: skip
    pr("ox", "pr.opened", T, 9, branch="claude/nobody", user_id="u2", team_id="t2"),  # no run: the events' user
]


@pytest.fixture
def ingest_orgs() -> tuple[str, ...]:
    return (ORG,)


def test_members_see_their_prs_and_managers_those_of_their_teams(server):
    answer = httpx.post(f"{server.ingest_url}/v1/events", json={"events": SCOPED}, headers=server.ingest_headers,
                        timeout=30).json()  # fmt: skip
    assert (answer["accepted"], answer["rejected"]) == (len(SCOPED), [])
    server.wait_projected()
    params = {"from": str(D0), "to": str(D1)}

    def metrics(token: str, **extra) -> httpx.Response:
        return httpx.get(f"{server.url}/api/v1/orgs/{ORG}/metrics", params={**params, **extra},
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip

    admin = metrics(server.token(ORG)).json()
    assert (admin["agent_prs_opened"], admin["agent_prs_merged"]) == (4, 3)
    for user, opened in (("u1", 1), ("u2", 2), ("u3", 1)):
        mine = metrics(server.token(ORG, role="member", user=user)).json()
        assert_same(mine, oracle(SCOPED, ORG, D0, D1, user=user) | {"user_id": user}, f"member {user}")
        assert mine["agent_prs_opened"] == opened
    assert metrics(server.token(ORG, role="member", user="u1"), user_id="u2").status_code == 403
    t1 = metrics(server.token(ORG, role="manager", teams="t1")).json()
    assert (t1["agent_prs_opened"], t1["agent_prs_merged"]) == (2, 2)
    assert metrics(server.token(ORG, role="manager", teams="t1"), team_id="t2").status_code == 403
    rows = httpx.get(f"{server.url}/api/v1/orgs/{ORG}/breakdown/user", params=params, timeout=30,
                     headers={"Authorization": f"Bearer {server.token(ORG, role='manager', teams='t1')}"}).json()  # fmt: skip
    assert {r["key"]: r["agent_prs_merged"] for r in rows} == {"u1": 1, "u3": 1}
    table = httpx.get(f"{server.url}/api/v1/orgs/{ORG}/metrics.csv", params=params, timeout=30,
                      headers={"Authorization": f"Bearer {server.token(ORG, role='member', user='u2')}"}).text  # fmt: skip
    days = list(csv.DictReader(io.StringIO(table)))
    assert [(d["agent_prs_opened"], d["agent_prs_merged"], d["agent_pr_merge_rate"]) for d in days] == [
        ("2", "1", "1.0"), ("0", "0", ""),
    ]  # fmt: skip


# ---------------------------------------------------------------- a log from before pr.* events


OLD_SQLITE_LOG = """CREATE TABLE events (
    seq INTEGER PRIMARY KEY, dedupe_key INTEGER NOT NULL, received_us INTEGER NOT NULL,
    id TEXT NOT NULL, type TEXT NOT NULL, org_id TEXT NOT NULL, user_id TEXT NOT NULL,
    session_id TEXT NOT NULL, run_id TEXT, team_id TEXT, occurred_us INTEGER NOT NULL,
    status TEXT, failure_category TEXT, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL, model TEXT, repo TEXT, attributes TEXT,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0, cache_write_tokens INTEGER NOT NULL DEFAULT 0)"""
PR_COLUMNS = ("branch", "pr_number", "author", "agent_mark")


def test_a_log_written_before_pr_events_opens_and_its_runs_branches_link(backend):
    storage = backend.open()
    try:
        submit(storage, RUN)
    finally:
        storage.close()
    _as_before_pr_events(backend)
    storage = backend.open()
    try:
        assert [e.event for e in storage.log_entries(0, 10)] == parsed(*RUN)  # the branch read from attributes
        assert submit(storage, PR_EVENTS + RUN[:1]) == [True, True, False]
        Projector(storage).catch_up()
        assert [e.event for e in storage.log_entries(0, 10)] == parsed(*RUN, *PR_EVENTS)
        assert check(storage, [*RUN, *PR_EVENTS], user="u1")["agent_prs_merged"] == 1
    finally:
        storage.close()


def _as_before_pr_events(backend) -> None:
    """Make the log look as the previous version left it: the same rows, no PR columns, user and session NOT NULL."""
    if backend.name == "embedded":
        db = sqlite3.connect(backend.data_dir / "events.sqlite")
        with db:
            db.execute("ALTER TABLE events RENAME TO newer")
            db.execute(OLD_SQLITE_LOG)
            columns = [name for (name,) in db.execute(SQLITE_SQL.statement("columns")) if name not in PR_COLUMNS]
            db.execute(f"INSERT INTO events SELECT {', '.join(columns)} FROM newer")
            db.execute("DROP TABLE newer")
        db.close()
    else:
        with psycopg.connect(backend.database_url, autocommit=True) as db:
            db.execute("ALTER TABLE events DROP COLUMN branch, DROP COLUMN pr_number, DROP COLUMN author, "
                       "DROP COLUMN agent_mark, ALTER COLUMN user_id SET NOT NULL, ALTER COLUMN session_id SET NOT NULL")  # fmt: skip
