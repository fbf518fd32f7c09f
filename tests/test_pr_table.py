"""The PR table (`agent_prs`, GET /prs, /prs.csv) and the time-to-merge histogram on each backend, against the oracle.

- each agent PR with an opened, merged or closed-unmerged day in range, newest first, with the runs of its branch
  (any case of the repo, any day): their count, SPEC §3 cost (run.finished plus usage), failed and handed-off runs;
- the same rows whatever the arrival order: PRs before or after their runs, duplicated, shuffled, folded one by one
  or in batches; titles and urls of the latest event naming them;
- filters and role scopes narrow the PRs and the runs behind them; the limit keeps the newest, total counts all;
- over real HTTP: members see their own PRs, managers their teams', JSON and CSV, in the OpenAPI schema.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from random import Random

import httpx
import msgspec
import pytest
from reference_metrics import reference_agent_prs, reference_time_to_merge_histogram
from support import D0, D0_US, DAY, HOUR, MINUTE, ORG, assert_same, render_time, submit

from agentdash.metrics import (
    TIME_TO_MERGE_EDGES_S,
    MergeTimeBucket,
    MetricsQuery,
    agent_prs,
    time_to_merge_histogram,
)
from agentdash.projector import Projector
from agentdash.ui import charts

D1 = D0 + timedelta(days=1)
T = D0_US + 10 * HOUR


def pr(id_: str, type_: str, at: int, number: int, branch: str, repo: str = "Acme/Web", **extra) -> dict:
    return {"id": id_, "type": type_, "org_id": ORG, "occurred_at": render_time(at, 0), "repo": repo,
            "pr_number": number, "head_branch": branch, **extra}  # fmt: skip


def run(run_id: str, at: int, user: str, team: str, branch: str | None, status: str = "succeeded", cost: float = 1.0,
        repo: str = "acme/web", model: str = "m-a", handoff: bool = False) -> list[dict]:  # fmt: skip
    """A run on `branch`: started, optionally handed off, finished with `cost`, and one usage call of $0.25."""
    base = {"org_id": ORG, "user_id": user, "team_id": team, "session_id": f"s-{run_id}", "run_id": run_id}
    attributes = {"model": model, **({"repo": repo, "branch": branch} if branch else {})}
    events = [
        {**base, "id": f"{run_id}-s", "type": "run.started", "occurred_at": render_time(at, 0), "attributes": attributes},
        {**base, "id": f"{run_id}-u", "type": "usage", "occurred_at": render_time(at + MINUTE, 0), "cost_usd": 0.25,
         "input_tokens": 10, "attributes": {"model": "m-b"}},
        {**base, "id": f"{run_id}-f", "type": "run.finished", "occurred_at": render_time(at + 20 * MINUTE, 0),
         "status": status, "cost_usd": cost, **({"failure_category": "timeout"} if status == "failed" else {})},
    ]  # fmt: skip
    if handoff:
        events.append({**base, "id": f"{run_id}-h", "type": "handoff", "occurred_at": render_time(at + 5 * MINUTE, 0)})
    return events


SESSION_USAGE = {"id": "su", "type": "usage", "org_id": ORG, "user_id": "u1", "team_id": "t1", "session_id": "s-x",
                 "occurred_at": render_time(T, 0), "cost_usd": 9.0}  # fmt: skip
EVENTS = [
    # 1: two runs on its branch (the repo in two spellings), a title edited by its merge, a url
    pr("a1", "pr.opened", T, 1, "feat-1", attributes={"title": "Fix login", "url": "https://git.example/1"}),
    pr("a2", "pr.merged", T + 2 * HOUR, 1, "feat-1", attributes={"title": "Fix login redirect"}),
    *run("ra", T - 3 * DAY, "u1", "t1", "feat-1", status="failed", cost=3.0, handoff=True),  # before the range
    *run("rb", T - HOUR, "u2", "t2", "feat-1", cost=1.5, repo="ACME/web", model="m-b"),
    # 2: an agent prefix, no runs; its url is not a web address (the page must not link it)
    pr("b1", "pr.opened", T + HOUR, 2, "claude/x", attributes={"url": "javascript:alert(1)"}),
    # 3: opened before the range, closed unmerged in it
    pr("c1", "pr.opened", T - 3 * DAY, 3, "codex/y", repo="acme/api", user_id="u3", team_id="t2"),
    pr("c2", "pr.closed", T + DAY, 3, "codex/y", repo="acme/api"),
    # 4: a person's PR (no mark, no run, no prefix): never listed
    pr("d1", "pr.opened", T, 4, "feature/z", repo="acme/api", user_id="u1"),
    # 5: an agent's, but every fact before the range
    pr("e1", "pr.opened", T - 10 * DAY, 5, "feature/m", repo="acme/api", attributes={"agent_mark": "claude-code"}),
    pr("e2", "pr.merged", T - 9 * DAY, 5, "feature/m", repo="acme/api"),
    # 6: merged with no pr.opened: listed, no time to merge
    pr("f1", "pr.merged", T + DAY + HOUR, 6, "copilot/q", repo="acme/api"),
    # 7: a mark, merged the next day, a run of u3 in t2 with a handoff
    pr("g1", "pr.opened", T + 30 * MINUTE, 7, "feature/k", attributes={"agent_mark": "codex", "title": "Add k"}),
    pr("g2", "pr.merged", T + 30 * HOUR, 7, "feature/k"),
    *run("rc", T + 10 * MINUTE, "u3", "t2", "feature/k", cost=0.5, handoff=True),
    *run("rd", T, "u1", "t1", None, cost=7.0),  # a run on no branch: nobody's PR
    SESSION_USAGE,
]
# (team, user, model, repo, teams): what the filters and role scopes may ask for
FILTERS = [
    {}, {"team_id": "t1"}, {"team_id": "t2"}, {"user_id": "u1"}, {"user_id": "u3"}, {"teams": ("t1",)},
    {"teams": ("t2", "t9")}, {"model": "m-a"}, {"model": "m-b"}, {"repo": "acme/web"}, {"repo": "acme/api"},
]  # fmt: skip


def query(org: str, date_from=D0, date_to=D1, **f) -> MetricsQuery:
    return MetricsQuery(org, date_from, date_to, team_id=f.get("team_id"), user_id=f.get("user_id"),
                        model=f.get("model"), repo=f.get("repo"), teams=f.get("teams"))  # fmt: skip


def assert_table(storage, events: list[dict], org: str, limit: int = 200, date_from=D0, date_to=D1, **f) -> dict:
    got = msgspec.to_builtins(agent_prs(storage, query(org, date_from, date_to, **f), limit))
    want = reference_agent_prs(events, org, date_from, date_to, limit=limit, **f)
    assert_same(got, want, f"{org} {f}")
    buckets = time_to_merge_histogram(storage, query(org, date_from, date_to, **f))
    histogram = reference_time_to_merge_histogram(events, org, date_from, date_to, TIME_TO_MERGE_EDGES_S, **f)
    assert [b.prs for b in buckets] == histogram, f"{org} {f}"
    return got


def as_org(events: list[dict], org: str) -> list[dict]:
    return [{**e, "org_id": org} for e in events]


def test_the_table_is_the_oracles_in_any_arrival_order_duplicated_and_batched(storage):
    runs = [e for e in EVENTS if "run_id" in e or "session_id" in e]
    prs = [e for e in EVENTS if e not in runs]
    rng = Random(11)
    orders = {"prs-first": prs + runs, "runs-first": runs + prs}
    for k in range(3):
        shuffled = EVENTS + rng.sample(EVENTS, 8)  # duplicates: dropped at ingest
        rng.shuffle(shuffled)
        orders[f"shuffled-{k}"] = shuffled
    for name, order in orders.items():
        one_by_one = name != "shuffled-2"
        events = as_org(order, name)
        if one_by_one:  # every later event meets an already folded one
            projector = Projector(storage, chunk_size=1)
            for e in events:
                submit(storage, [e])
                projector.catch_up()
        else:
            for start in range(0, len(events), 7):
                submit(storage, events[start : start + 7])
            Projector(storage, chunk_size=5).catch_up()
    for name in orders:
        got = assert_table(storage, as_org(EVENTS, name), name)
        assert got["total"] == 5 and [(p["pr_number"], p["state"]) for p in got["prs"]] == [
            (6, "merged"), (2, "open"), (7, "merged"), (1, "merged"), (3, "closed"),
        ]  # fmt: skip
        first = next(p for p in got["prs"] if p["pr_number"] == 1)
        assert (first["title"], first["url"], first["repo"]) == ("Fix login redirect", "https://git.example/1",
                                                                 "acme/web")  # fmt: skip
        assert (first["user_id"], first["team_id"], first["runs"], first["runs_failed"]) == ("u1", "t1", 2, 1)
        assert first["cost_usd"] == pytest.approx(3.0 + 1.5 + 2 * 0.25) and first["runs_handed_off"] == 1
        assert first["time_to_merge_s"] == 2 * 3600.0
        for f in FILTERS[1:]:
            assert_table(storage, as_org(EVENTS, name), name, **f)


def test_the_limit_keeps_the_newest_and_total_counts_them_all(storage):
    submit(storage, EVENTS)
    Projector(storage).catch_up()
    got = assert_table(storage, EVENTS, ORG, limit=2)
    assert got["total"] == 5 and len(got["prs"]) == 2 and got["limit"] == 2
    wide = assert_table(storage, EVENTS, ORG, date_from=D0 - timedelta(days=30), date_to=D1)
    assert wide["total"] == 6  # PR 5, merged nine days before D0, too
    empty = assert_table(storage, EVENTS, ORG, date_from=D0 + timedelta(days=5), date_to=D0 + timedelta(days=6))
    assert (empty["total"], empty["prs"]) == (0, [])
    buckets = time_to_merge_histogram(storage, query(ORG))
    assert [b.prs for b in buckets] == [0, 1, 0, 0, 1, 0, 0, 0]  # 2 h; 29.5 h
    assert (buckets[0].low_s, buckets[-1].high_s) == (None, None)


def test_a_run_that_arrives_later_on_the_branch_joins_its_pr(storage):
    first = [pr("x1", "pr.opened", T, 9, "feat-9"), pr("x2", "pr.merged", T + HOUR, 9, "feat-9")]
    submit(storage, first)
    Projector(storage).catch_up()
    assert assert_table(storage, first, ORG)["total"] == 0  # no mark, no prefix, no run: not an agent's
    later = run("rx", T - HOUR, "u2", "t2", "feat-9", status="failed", cost=2.0, handoff=True)
    submit(storage, later)
    Projector(storage).catch_up()
    (row,) = assert_table(storage, first + later, ORG)["prs"]
    assert (row["user_id"], row["runs"], row["runs_failed"], row["runs_handed_off"]) == ("u2", 1, 1, 1)
    assert row["cost_usd"] == pytest.approx(2.25)
    assert assert_table(storage, first + later, ORG, team_id="t1")["prs"] == []


# ---------------------------------------------------------------- over HTTP, with roles


@pytest.fixture
def ingest_orgs() -> tuple[str, ...]:
    return (ORG, "other")


def test_members_see_their_prs_and_managers_their_teams_in_json_and_csv(server):
    answer = httpx.post(f"{server.ingest_url}/v1/events", json={"events": EVENTS}, headers=server.ingest_headers,
                        timeout=30).json()  # fmt: skip
    assert (answer["accepted"], answer["rejected"]) == (len(EVENTS), [])
    server.wait_projected()
    params = {"from": str(D0), "to": str(D1)}

    def get(path: str, token: str, **extra) -> httpx.Response:
        return httpx.get(f"{server.url}/api/v1/orgs/{ORG}/{path}", params={**params, **extra},
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip

    admin = get("prs", server.token(ORG)).json()
    assert_same(admin, reference_agent_prs(EVENTS, ORG, D0, D1))
    assert admin["total"] == 5
    assert_same(get("prs", server.token(ORG), limit="1", repo="acme/api").json(),
                reference_agent_prs(EVENTS, ORG, D0, D1, repo="acme/api", limit=1))  # fmt: skip
    for user in ("u1", "u2", "u3"):
        mine = get("prs", server.token(ORG, role="member", user=user)).json()
        assert_same(mine, reference_agent_prs(EVENTS, ORG, D0, D1, user_id=user), f"member {user}")
        assert all(p["user_id"] == user for p in mine["prs"])
    assert [p["pr_number"] for p in get("prs", server.token(ORG, role="member", user="u3")).json()["prs"]] == [7, 3]
    assert get("prs", server.token(ORG, role="member", user="u1"), user_id="u3").status_code == 403
    t1 = get("prs", server.token(ORG, role="manager", teams="t1")).json()
    assert_same(t1, reference_agent_prs(EVENTS, ORG, D0, D1, teams=("t1",)))
    assert [p["pr_number"] for p in t1["prs"]] == [1] and t1["prs"][0]["runs"] == 1  # not t2's run on its branch
    assert get("prs", server.token(ORG, role="manager", teams="t1"), team_id="t2").status_code == 403
    assert get("prs", server.token("other")).status_code == 404
    assert get("prs", server.token(ORG), limit="0").status_code == 400

    table = get("prs.csv", server.token(ORG, role="manager", teams="t2"))
    assert table.headers["content-type"].startswith("text/csv")
    assert 'filename="agentdash-o1-prs-' in table.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(table.text)))
    want = reference_agent_prs(EVENTS, ORG, D0, D1, teams=("t2",))["prs"]
    assert [(r["pr_number"], r["state"], r["team_id"], r["runs"], r["merged_at"]) for r in rows] == [
        (str(p["pr_number"]), p["state"], p["team_id"], str(p["runs"]), p["merged_at"] or "") for p in want
    ]  # fmt: skip
    assert [float(r["cost_usd"]) for r in rows] == pytest.approx([p["cost_usd"] for p in want])

    schema = httpx.get(f"{server.url}/api/schema/openapi.json", timeout=30).json()
    assert {"/api/v1/orgs/{org_id}/prs", "/api/v1/orgs/{org_id}/prs.csv"} <= set(schema["paths"])
    prs_schema = schema["paths"]["/api/v1/orgs/{org_id}/prs"]["get"]
    assert {p["name"] for p in prs_schema["parameters"]} >= {"from", "to", "team_id", "user_id", "model", "repo",
                                                              "limit"}  # fmt: skip


def test_the_chart_draws_every_bucket_and_marks_the_median_where_it_falls():
    counts = [0, 2, 1, 0, 0, 0, 0, 3]
    lows, highs = (None, *TIME_TO_MERGE_EDGES_S), (*TIME_TO_MERGE_EDGES_S, None)
    buckets = [MergeTimeBucket(low, high, n) for low, high, n in zip(lows, highs, counts, strict=True)]
    option = charts.time_to_merge_histogram(buckets, 5 * 3600.0)
    assert option["series"][0]["data"] == counts and option["title"] == []
    assert option["xAxis"]["data"] == ["<1h", "1–4h", "4–8h", "8h–1d", "1–3d", "3–7d", "7–14d", "≥14d"]
    (mark,) = option["series"][0]["markLine"]["data"]
    assert (mark["xAxis"], mark["label"]["formatter"]) == ("4–8h", "median 5h 00m")
    empty = charts.time_to_merge_histogram([MergeTimeBucket(b.low_s, b.high_s, 0) for b in buckets], None)
    assert empty["series"][0]["markLine"]["data"] == []
    assert empty["title"][0]["text"] == "No agent pull requests merged in this range"
