"""Page logic with NiceGUI's `user` fixture (in-process, no browser): sign-in redirect, overview figures, filter bar."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from dashboard_events import run_events
from litestar.testing import TestClient
from nicegui import ui
from user_fixture import SECRET, drawn, figure, prepare_user_app, sign_in

from agentdash.auth import HmacKey, TokenVerifier, issue_token
from agentdash.config import load_settings
from agentdash.storage import open_storage
from agentdash.ui import format as fmt
from agentdash.ui.cards import QUESTIONS
from agentdash.web.read_api import create_read_api

pytest_plugins = ["nicegui.testing.user_plugin"]
pytestmark = pytest.mark.nicegui_main_file("tests/dashboard_user_app.py")

ORG = "acme"
# (days ago, team, user, status, cost, run seconds, model)
PLAN = [(1, "web", "u0", "succeeded", 2.0, 200, "opus"), (2, "web", "u1", "failed", 4.0, 400, "haiku"),
        (3, "ops", "u2", "succeeded", 1.5, 90, "opus"), (12, "ops", "u2", "succeeded", 3.0, 300, "haiku"),
        (2, "ops", "ops/bot", "succeeded", 0.5, 60, "haiku")]  # fmt: skip
# Pull requests: (number, head branch, user, team, opened days ago at noon UTC, hours to its outcome, outcome).
# No user: run r0 reported the branch, so the PR is u0's; "feature/human" is nobody's agent's and never counts.
PRS = [(1, "claude/r0", None, None, 3, 5, "pr.merged"), (2, "claude/a", "u1", "web", 2, 2, "pr.closed"),
       (3, "codex/b", "u2", "ops", 4, 20, "pr.merged"), (4, "copilot/c", "u2", "ops", 9, 30, "pr.merged"),
       (5, "claude/d", "u1", "web", 1, 0, None), (6, "feature/human", "u0", "web", 2, 1, "pr.merged")]  # fmt: skip
SHIPPING = next(q for q in QUESTIONS if q.path == "/shipping")


def _events() -> list[dict]:
    events = []
    for n, (*run, model) in enumerate(PLAN):
        attributes = {"model": model, "repo": "app", "branch": f"claude/r{n}"}
        for e in run_events(ORG, n, *run):
            events.append({**e, "attributes": attributes} if e["type"] == "run.queued" else e)
    return events + _pull_requests()


def _pull_requests() -> list[dict]:
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    events = []
    for number, branch, user, team, ago, hours, outcome in PRS:
        pr = {"org_id": ORG, "repo": "app", "pr_number": number, "head_branch": branch}
        pr |= {"user_id": user, "team_id": team} if user else {}
        opened = noon - timedelta(days=ago)
        events.append({**pr, "id": f"pr{number}o", "type": "pr.opened", "occurred_at": opened.isoformat()})
        if outcome:
            at = opened + timedelta(hours=hours)
            events.append({**pr, "id": f"pr{number}e", "type": outcome, "occurred_at": at.isoformat()})
    return events


# The read API's answers the pages are checked against: (role, sub, teams, path, days, extra params) -> JSON.
API_ASKS = [
    ("org_admin", "tester", (), "metrics", 7, ()), ("org_admin", "tester", (), "metrics", 30, ()),
    ("org_admin", "tester", (), "breakdown/user", 7, ()), ("manager", "boss", ("ops",), "metrics", 30, ()),
    ("member", "u1", (), "metrics", 30, ()),
]  # fmt: skip


@pytest.fixture
def user_app(tmp_path, monkeypatch) -> dict:
    """The data dir for the app, and the read API's answers over the same data (asked before the app opens it)."""
    prepare_user_app(_events(), tmp_path / "data", monkeypatch)
    storage = open_storage(load_settings(data_dir=tmp_path / "data"))
    answers = {}
    try:
        with TestClient(create_read_api(storage, TokenVerifier([HmacKey(SECRET.encode())]))) as client:
            for role, sub, teams, path, days, extra in API_ASKS:
                to = datetime.now(UTC).date()
                params = {"from": str(to - timedelta(days=days - 1)), "to": str(to), **dict(extra)}
                token = issue_token(SECRET, ORG, role, sub, teams)
                answer = client.get(f"/api/v1/orgs/{ORG}/{path}", params=params,
                                    headers={"Authorization": f"Bearer {token}"})  # fmt: skip
                assert answer.status_code == 200, answer.text
                answers[role, path, days] = answer.json()
    finally:
        storage.close()
    return answers


def _by_testid(user, testid: str) -> ui.element:
    return next(e for e in user.client.elements.values() if e.props.get("data-testid") == testid)


async def _navigated(user) -> str:
    """Where the page sent the user (navigation happens on the event loop, just after the change)."""
    before = list(user.back_history)
    for _ in range(100):
        if user.back_history != before:
            break
        await asyncio.sleep(0.02)
    return user.back_history[-1]


def _expected(days: int, **only) -> tuple[int, float]:
    """Runs and cost of PLAN in the last `days` days, keeping only runs whose fields match `only`."""
    fields = ("ago", "team", "user", "status", "cost", "seconds", "model")
    runs = [dict(zip(fields, p, strict=True)) for p in PLAN]
    kept = [r for r in runs if r["ago"] < days and all(r[k] == v for k, v in only.items())]
    return len(kept), sum(r["cost"] for r in kept)


async def test_signed_out_visitors_are_sent_to_sign_in(user_app, user):
    await user.open("/cost?days=7")
    await user.should_see("Sign in to see your organisation's agent usage")
    await user.should_not_see(marker="dev-issuer")  # this app runs without dev mode


async def test_the_overview_shows_the_periods_figures(user_app, user):
    sign_in(user, ORG)
    await user.open("/?days=7")
    await drawn(user, "overview-ready")
    runs, cost = _expected(7)
    assert (figure(user, "Runs"), figure(user, "Total")) == (fmt.count(runs), fmt.money(cost))
    await user.open("/?days=30")
    await drawn(user, "overview-ready")
    assert figure(user, "Runs") == fmt.count(_expected(30)[0])


async def test_picking_in_the_filter_bar_changes_the_address(user_app, user):
    sign_in(user, ORG)
    await user.open("/?days=30")
    await drawn(user, "overview-ready")
    model = _by_testid(user, "model")
    await user.should_see("All models")
    model.value = "haiku"
    assert await _navigated(user) == "/?days=30&model=haiku"
    await drawn(user, "overview-ready")
    assert figure(user, "Runs") == fmt.count(_expected(30, model="haiku")[0])

    team = _by_testid(user, "team")
    team.value = "ops"
    assert await _navigated(user) == "/?days=30&team_id=ops&model=haiku"
    await drawn(user, "overview-ready")  # let the new page's queries finish before the app shuts down
    assert figure(user, "Runs") == fmt.count(_expected(30, team="ops", model="haiku")[0])


async def test_a_manager_picks_among_their_own_teams_only(user_app, user):
    sign_in(user, ORG, role="manager", sub="boss", teams=("ops",))
    await user.open("/?days=30")
    await drawn(user, "overview-ready")
    assert _by_testid(user, "team").options == {"": "All my teams", "ops": "ops"}
    assert figure(user, "Runs") == fmt.count(_expected(30, team="ops")[0])


async def test_a_person_whose_id_holds_a_slash_has_a_page(user_app, user):
    sign_in(user, ORG)
    await user.open("/people/ops%2Fbot?days=30")
    await drawn(user, "subject")
    await user.should_see("ops/bot", marker="subject")
    assert figure(user, "Runs") == fmt.count(_expected(30, user="ops/bot")[0])


def _shipping_figures(user) -> dict[str, str]:
    return {f.name: figure(user, f.name) for f in SHIPPING.figures}


def _expected_figures(api: dict) -> dict[str, str]:
    """The shipping card's figures, formatted from a read API answer."""
    return {"Merge rate": fmt.percent(api["agent_pr_merge_rate"]), "PRs opened": fmt.count(api["agent_prs_opened"]),
            "PRs merged": fmt.count(api["agent_prs_merged"]),
            "Closed unmerged": fmt.count(api["agent_prs_closed_unmerged"]),
            "Median time to merge": fmt.duration(api["agent_pr_time_to_merge_p50_s"]),
            "Per merged PR": fmt.money(api["cost_per_merged_pr_usd"]),
            "Lines added / removed": f"{fmt.count(api['lines_added'])} / {fmt.count(api['lines_removed'])}",
            "Commits": fmt.count(api["commits"])}  # fmt: skip


async def test_the_shipping_page_shows_the_read_apis_pull_request_figures(user_app, user):
    sign_in(user, ORG)
    await user.open("/shipping?days=7")
    await drawn(user, "breakdown-team")
    api = user_app["org_admin", "metrics", 7]
    # Opened: PRs 1, 2, 3, 5 (6 is a person's); merged: 1 (5 h) and 3 (20 h), 4 merged 8 days ago; closed: 2.
    assert (api["agent_prs_opened"], api["agent_prs_merged"], api["agent_prs_closed_unmerged"]) == (4, 2, 1)
    assert api["agent_pr_time_to_merge_p50_s"] == 12.5 * 3600
    assert _shipping_figures(user) == _expected_figures(api)
    await user.should_see("Does the work ship?")
    await user.should_see(marker="note")
    charts = {e.props.get("data-chart") for e in user.client.elements.values()} - {None}
    assert {"Agent pull requests", "Median time to merge, by day merged", "Time to merge",
            "Median time to merge by repo"} <= charts  # fmt: skip

    # The user breakdown holds the API's rows, and each person's row opens their own page with the filters.
    table = _by_testid(user, "breakdown-user")
    rows = {r["key"]: r for r in table.rows}
    for row in user_app["org_admin", "breakdown/user", 7]:
        assert rows[row["key"]]["agent_prs_merged"] == row["agent_prs_merged"]
        assert rows[row["key"]]["href"] == f"/people/{row['key'].replace('/', '%2F')}?days=7"
    assert rows["u0"]["agent_prs_merged"] == 1  # PR 1, through run r0's branch
    teams = {r["key"]: r["href"] for r in _by_testid(user, "breakdown-team").rows}
    assert teams == {"web": "/teams/web?days=7", "ops": "/teams/ops?days=7"}

    await user.open("/shipping?days=30")
    await drawn(user, "breakdown-team")
    assert _shipping_figures(user) == _expected_figures(user_app["org_admin", "metrics", 30])


async def test_the_overview_has_a_shipping_card_linking_to_its_page(user_app, user):
    sign_in(user, ORG)
    await user.open("/?days=30")
    await drawn(user, "overview-ready")
    await user.should_see("Does the work ship?")
    link = next(e for e in user.client.elements.values() if isinstance(e, ui.link) and e.text == SHIPPING.question)
    assert link.props["href"] == "/shipping?days=30"
    api = user_app["org_admin", "metrics", 30]
    assert {f.name: figure(user, f.name) for f in SHIPPING.figures} == _expected_figures(api)
    nav = next(e for e in user.client.elements.values() if e.props.get("data-nav") == "Shipping")
    assert nav.props["href"] == "/shipping?days=30"


@pytest.mark.parametrize(("role", "sub", "teams"), [("manager", "boss", ("ops",)), ("member", "u1", ())])
async def test_managers_and_members_see_the_shipping_figures_of_their_scope(user_app, user, role, sub, teams):
    sign_in(user, ORG, role=role, sub=sub, teams=teams)
    await user.open("/shipping?days=30")
    await drawn(user, "breakdown-team")
    api = user_app[role, "metrics", 30]
    assert _shipping_figures(user) == _expected_figures(api)
    # ops: PRs 3 and 4, both merged; u1: PR 2 closed, PR 5 still open.
    mine = (api["agent_prs_opened"], api["agent_prs_merged"], api["agent_prs_closed_unmerged"])
    assert mine == ((2, 2, 0) if role == "manager" else (2, 0, 1))


async def test_the_shipping_page_says_so_when_there_are_no_pull_requests(user_app, user):
    sign_in(user, ORG)
    today = datetime.now(UTC).date()
    # Run 3 ran 12 days ago, the PRs are all younger: runs but no pull requests.
    await user.open(f"/shipping?from={today - timedelta(days=13)}&to={today - timedelta(days=11)}")
    await user.should_see("No agent pull requests in this range", retries=100)  # drawn after the queries
    assert not any(e.props.get("data-metric") == "Merge rate" for e in user.client.elements.values())
