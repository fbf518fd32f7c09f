"""/shipping in a real browser: the PR table and the time-to-merge histogram show the read API's numbers, a PR's
user and team open their pages, a member sees only their PRs, and an empty range says so in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from browser import browser_page, chromium_path, screenshot

from agentdash.metrics import TIME_TO_MERGE_EDGES_S
from agentdash.ui import format as fmt
from agentdash.ui.questions import STATE_TEXT

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="Debian chromium is not installed (.ci/run installs it)"
)
ORG = "acme"
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
CHART_DATA = """(title) => getElement(document.querySelector(`[data-chart='${title}'] [_echarts_instance_]`))
    .chart.getOption().series[0].data"""


def _at(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat()


def _run(n: int, user: str, team: str, branch: str, hours_ago: float, status: str, cost: float) -> list[dict]:
    base = {"org_id": ORG, "user_id": user, "team_id": team, "session_id": f"s{n}", "run_id": f"r{n}"}
    finished = {**base, "id": f"f{n}", "type": "run.finished", "occurred_at": _at(hours_ago - 0.5), "status": status,
                "cost_usd": cost, **({"failure_category": "tool_error"} if status == "failed" else {})}  # fmt: skip
    return [
        {**base, "id": f"st{n}", "type": "run.started", "occurred_at": _at(hours_ago),
         "attributes": {"repo": "acme/app", "branch": branch, "model": "m1"}},
        {**base, "id": f"h{n}", "type": "handoff", "occurred_at": _at(hours_ago - 0.25)},
        finished,
    ]  # fmt: skip


def _pr(n: int, branch: str, opened_ago: float, outcome: str | None, hours: float, title: str) -> list[dict]:
    pr = {"org_id": ORG, "repo": "acme/app", "pr_number": n, "head_branch": branch,
          "attributes": {"title": title, "url": f"https://git.example/acme/app/pull/{n}"}}  # fmt: skip
    events = [{**pr, "id": f"p{n}o", "type": "pr.opened", "occurred_at": _at(opened_ago)}]
    if outcome:
        events.append({**pr, "id": f"p{n}e", "type": outcome, "occurred_at": _at(opened_ago - hours)})
    return events


EVENTS = [
    *_run(1, "ana", "web", "claude/login", 80, "failed", 2.0), *_run(2, "ana", "web", "claude/login", 78, "succeeded", 1.5),
    *_run(3, "bo", "ops", "codex/deploy", 60, "succeeded", 0.75),
    *_pr(1, "claude/login", 77, "pr.merged", 5, "Fix the login redirect"),
    *_pr(2, "codex/deploy", 58, "pr.merged", 30, "Deploy on tag"),
    *_pr(3, "copilot/docs", 20, "pr.closed", 2, "Docs <b>bold</b>"),  # no runs; markup shown as text
    *_pr(4, "claude/wip", 3, None, 0, "Work in progress"),
]  # fmt: skip


def _rows(page) -> list[list[str]]:
    return page.eval_on_selector_all(
        "[data-testid=pr-table] tbody tr",
        "rows => rows.map(r => [...r.querySelectorAll('td')].map(td => td.innerText))",
    )


def _buckets(prs: list[dict], since: str) -> list[int]:
    counts = [0] * (len(TIME_TO_MERGE_EDGES_S) + 1)
    for p in prs:
        if p["merged_at"] and p["merged_at"][:10] >= since and p["time_to_merge_s"] is not None:
            counts[sum(1 for edge in TIME_TO_MERGE_EDGES_S if edge <= p["time_to_merge_s"])] += 1
    return counts


def test_the_pr_table_and_the_time_to_merge_histogram_show_the_apis_numbers(server):
    answer = httpx.post(f"{server.ingest_url}/v1/events", headers=server.ingest_headers, json={"events": EVENTS})
    assert answer.json()["rejected"] == [], answer.text
    server.wait_projected()
    token = server.token(ORG)
    to = datetime.now(UTC).date()
    params = {"from": str(to - timedelta(days=29)), "to": str(to)}
    auth = {"Authorization": f"Bearer {token}"}
    api = httpx.get(f"{server.url}/api/v1/orgs/{ORG}/prs", params=params, headers=auth).json()
    metrics = httpx.get(f"{server.url}/api/v1/orgs/{ORG}/metrics", params=params, headers=auth).json()
    assert [p["pr_number"] for p in api["prs"]] == [4, 3, 2, 1] and api["prs"][3]["runs"] == 2
    with browser_page(height=1400) as page:
        page.goto(f"{server.url}/login?token={token}")
        page.goto(f"{server.url}/shipping?days=30")
        page.wait_for_selector("[data-testid=pr-table] tbody tr")
        want = [
            [f"acme/app#{p['pr_number']}\n{p['title']}", STATE_TEXT[p["state"]], _minute(p["opened_at"]),
             _minute(p["merged_at"]), fmt.duration(p["time_to_merge_s"]), p["user_id"] or "(none)",
             p["team_id"] or "(none)", str(p["runs"]), fmt.money(p["cost_usd"]), str(p["runs_failed"]),
             str(p["runs_handed_off"])]
            for p in api["prs"]
        ]  # fmt: skip
        assert _rows(page) == want
        assert page.locator("[data-testid=pr-link]").first.get_attribute("href") == api["prs"][0]["url"]
        page.wait_for_function(
            "[...document.querySelectorAll('.nicegui-echart')].every(e => e.querySelector('canvas'))"
        )
        assert page.evaluate(CHART_DATA, "Time to merge") == _buckets(api["prs"], params["from"])
        assert sum(_buckets(api["prs"], params["from"])) == metrics["agent_prs_merged"] == 2
        screenshot(page, "shipping-prs")

        # A PR's user opens their page, its team the team's page; the range stays.
        page.locator("[data-testid=pr-table] [data-testid=open-user]", has_text="bo").click()
        page.wait_for_url("**/people/bo?days=30")
        page.wait_for_selector("[data-testid=subject]")
        page.go_back()
        page.wait_for_selector("[data-testid=pr-table] tbody tr")
        page.locator("[data-testid=pr-table] [data-testid=open-team]", has_text="web").click()
        page.wait_for_url("**/teams/web?days=30")
        page.wait_for_selector("[data-testid=subject]")

        # An admin's range with no PRs: the page says so in words.
        page.goto(f"{server.url}/shipping?from=2020-01-01&to=2020-01-31")
        page.wait_for_selector("[data-testid=empty]")
        assert "No agent pull requests in this range" in page.inner_text("[data-testid=empty]")

    # A member sees only their own PRs.
    member = server.token(ORG, role="member", user="bo")
    mine = httpx.get(f"{server.url}/api/v1/orgs/{ORG}/prs", params=params,
                     headers={"Authorization": f"Bearer {member}"}).json()  # fmt: skip
    assert [p["pr_number"] for p in mine["prs"]] == [2]
    with browser_page() as page:
        page.goto(f"{server.url}/login?token={member}")
        page.goto(f"{server.url}/shipping?days=30")
        page.wait_for_selector("[data-testid=pr-table] tbody tr")
        assert [row[0].split("\n")[0] for row in _rows(page)] == ["acme/app#2"]


CHART_TITLES = """(title) => getElement(document.querySelector(`[data-chart='${title}'] [_echarts_instance_]`))
    .chart.getOption().title.map(t => t.text).join(' ')"""


def test_empty_states_say_so_in_words(server):
    events = _run(9, "ana", "web", "feature/x", 30, "succeeded", 1.0) + _pr(9, "claude/open", 24 * 20, None, 0, "Open")
    assert httpx.post(f"{server.ingest_url}/v1/events", headers=server.ingest_headers,
                      json={"events": events}).json()["rejected"] == []  # fmt: skip
    server.wait_projected()
    with browser_page(height=1400) as page:
        page.goto(f"{server.url}/login?token={server.token(ORG)}")
        page.goto(f"{server.url}/shipping?days=30")  # one open PR: a table row, nothing merged to chart
        page.wait_for_selector("[data-testid=pr-table] tbody tr")
        page.wait_for_function(
            "[...document.querySelectorAll('.nicegui-echart')].every(e => e.querySelector('canvas'))"
        )
        assert page.evaluate(CHART_TITLES, "Time to merge") == "No agent pull requests merged in this range"
        assert "all with an opening, merge or close (unmerged) in range" in page.inner_text("[data-testid=prs-caption]")
        page.goto(f"{server.url}/shipping?days=7")  # a run, but no pull request in range
        page.wait_for_selector("[data-testid=empty]")
        assert "No agent pull requests in this range" in page.inner_text("[data-testid=empty]")
        assert page.locator("[data-testid=pr-table]").count() == 0


def _minute(moment: str | None) -> str:
    return "" if moment is None else moment[:16].replace("T", " ")
