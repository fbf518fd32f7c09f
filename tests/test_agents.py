"""The agent (attributes.agent; OTLP service.name) as a filter and a breakdown, on each backend, against the oracle.

- a run's agent is its earliest event's, in any arrival order; a usage counts under its own agent, else its run's;
- a PR's agent is its earliest linked run's, else its earliest agent mark, whether it arrives before or after its runs;
- sessions and active users under an agent filter are those of its runs, as under a model filter;
- a log written before the agent column opens, and its events' agents (then in attributes only) are filled in.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import timedelta
from random import Random

import msgspec
from reference_metrics import reference_metrics
from support import BREAKDOWN_KEYS, D0, D0_US, HOUR, MINUTE, ORG, assert_same, parsed, render_time, submit

from agentdash.metrics import BreakdownRow, MetricsQuery, breakdown, filter_values, org_metrics
from agentdash.projector import Projector
from agentdash.storage.embedded.event_log import SQL as SQLITE_SQL

try:  # psycopg is optional: without it the postgres params skip (support.NEEDS_POSTGRES)
    import psycopg
except ImportError:  # pragma: no cover
    psycopg = None  # type: ignore[assignment]

D1 = D0 + timedelta(days=1)
T = D0_US + 10 * HOUR
AGENTS = ("claude-code", "codex", "copilot", "gemini-cli")


def event(id_: str, type_: str, at: int, run: str | None = None, user: str = "u1", **extra) -> dict:
    e = {"id": id_, "type": type_, "org_id": ORG, "user_id": user, "session_id": f"s-{user}",
         "occurred_at": render_time(at, 0), **extra}  # fmt: skip
    return {**e, "run_id": run} if run is not None else e


def pr(id_: str, type_: str, at: int, number: int, branch: str, mark: str | None = None) -> dict:
    e = {"id": id_, "type": type_, "org_id": ORG, "occurred_at": render_time(at, 0), "repo": "acme/web",
         "pr_number": number, "head_branch": branch}  # fmt: skip
    return {**e, "attributes": {"agent_mark": mark}} if mark else e


EVENTS = [
    # r1: its earliest event names claude-code; later ones name others (ignored for the run)
    event("a1", "run.queued", T, "r1", attributes={"agent": "claude-code", "repo": "acme/web", "branch": "feat-1"}),
    event("a2", "run.started", T + MINUTE, "r1", attributes={"agent": "codex"}),
    event("a3", "run.finished", T + HOUR, "r1", status="succeeded", cost_usd=2.0, attributes={"agent": "gemini-cli"}),
    event("a4", "usage", T + 2 * MINUTE, "r1", cost_usd=0.5),  # its run's agent
    event("a5", "usage", T + 3 * MINUTE, "r1", cost_usd=0.25, attributes={"agent": "codex"}),  # its own
    # r2: codex, failed, another user
    event("b1", "run.started", T + HOUR, "r2", user="u2", attributes={"agent": "codex"}),
    event("b2", "run.finished", T + 2 * HOUR, "r2", user="u2", status="failed", failure_category="tool_error",
          cost_usd=1.0),
    event("c1", "message.sent", T, user="u3"),  # active, no runs: under no agent
    # PR 1 on r1's branch: the run's agent, not its mark; PR 2 without runs: its earliest mark
    pr("p1", "pr.opened", T + 3 * HOUR, 1, "feat-1", mark="copilot"),
    pr("p2", "pr.merged", T + 5 * HOUR, 1, "feat-1"),
    pr("p3", "pr.opened", T + 4 * HOUR, 2, "feat-9", mark="copilot"),
    pr("p4", "pr.closed", T + 6 * HOUR, 2, "feat-9", mark="codex"),
]  # fmt: skip


def figures(storage, org: str) -> dict:
    """The agent filter and the agent breakdown, as the API gives them."""
    query = MetricsQuery(org, D0, D1)
    got = {agent: msgspec.to_builtins(org_metrics(storage, replace(query, agent=agent))) for agent in AGENTS}
    rows = {row.key: msgspec.to_builtins(row) for row in breakdown(storage, query, "agent")}
    empty = msgspec.to_builtins(BreakdownRow(key=None))
    got["by agent"] = {agent: {k: rows.get(agent, empty)[k] for k in BREAKDOWN_KEYS} for agent in AGENTS}
    return got


def expected(events: list[dict], org: str) -> dict:
    want = {agent: reference_metrics(events, org, D0, D1, agent=agent) for agent in AGENTS}
    want["by agent"] = {agent: {k: want[agent][k] for k in BREAKDOWN_KEYS} for agent in AGENTS}
    return want


def test_agent_filter_and_breakdown_equal_the_oracle_in_any_arrival_order(storage):
    rng = Random(5)
    orders = [EVENTS, EVENTS[::-1], *(rng.sample(EVENTS, len(EVENTS)) for _ in range(3))]
    for k, order in enumerate(orders):  # one org per order, each event folded on its own
        projector = Projector(storage, chunk_size=1)
        for e in order:
            submit(storage, [{**e, "org_id": f"o{k}"}])
            projector.catch_up()
    for k, order in enumerate(orders):
        events = [{**e, "org_id": f"o{k}"} for e in order]
        got, want = figures(storage, f"o{k}"), expected(events, f"o{k}")
        assert_same(got, want, f"order {[e['id'] for e in order]}")
    claude, codex, copilot = (want[a] for a in ("claude-code", "codex", "copilot"))
    assert (claude["runs"], claude["cost_usd"], claude["agent_prs_merged"], claude["sessions"]) == (1, 2.5, 1, 1)
    assert (codex["runs"], codex["cost_usd"], codex["success_rate"], codex["active_users"]) == (1, 1.25, 0.0, 1)
    assert (copilot["runs"], copilot["agent_prs_opened"], copilot["agent_prs_closed_unmerged"]) == (0, 1, 1)
    assert filter_values(storage, MetricsQuery("o0", D0, D1), "agent") == ["claude-code", "codex", "copilot"]


OLD_LOG = [EVENTS[0], EVENTS[4], EVENTS[2]]


def test_a_log_written_before_the_agent_column_opens_and_fills_it_from_the_attributes(backend):
    storage = backend.open()
    try:
        submit(storage, OLD_LOG)
    finally:
        storage.close()
    _drop_agent_column(backend)
    storage = backend.open()
    try:
        assert [e.event.agent for e in storage.log_entries(0, 10)] == ["claude-code", "codex", "gemini-cli"]
        assert [e.event for e in storage.log_entries(0, 10)] == parsed(*OLD_LOG)
        Projector(storage).catch_up()
        got = msgspec.to_builtins(org_metrics(storage, MetricsQuery(ORG, D0, D1, agent="claude-code")))
        assert_same(got, reference_metrics(OLD_LOG, ORG, D0, D1, agent="claude-code"))
        assert (got["runs"], got["cost_usd"]) == (1, 2.0)
    finally:
        storage.close()


def _drop_agent_column(backend) -> None:
    """Make the log look as an older version left it: the same rows, no agent column."""
    if backend.name == "embedded":
        db = sqlite3.connect(backend.data_dir / "events.sqlite")
        with db:
            db.execute("ALTER TABLE events DROP COLUMN agent")
            assert "agent" not in {name for (name,) in db.execute(SQLITE_SQL.statement("columns"))}
        db.close()
    else:
        with psycopg.connect(backend.database_url, autocommit=True) as db:
            db.execute("ALTER TABLE events DROP COLUMN agent")
