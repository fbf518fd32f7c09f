"""Who sees what (SPEC §5): every role × every read endpoint and dashboard page × own team / other team / other
person / other org, over real HTTP and in a real browser. Fails on any figure or name the role may not see."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from browser import browser_page, chromium_path

from agentdash.testing import ServerProcess

# Each person runs once, on a model and in a repo named after them, at a price nobody else pays:
# a leaked row, name, model, repo or sum shows up as a name in the body or a total that does not add up.
PEOPLE = {"olga": ("acme", "ops", 1.17), "oscar": ("acme", "ops", 2.29), "wendy": ("acme", "web", 3.41),
          "will": ("acme", "web", 4.53), "gus": ("globex", "ops", 5.67)}  # fmt: skip
ACME = {name for name, (org, _, _) in PEOPLE.items() if org == "acme"}


@dataclass(frozen=True)
class Role:
    name: str
    org: str
    role: str
    user: str
    teams: str
    sees: frozenset[str]  # the people whose figures this role may see with no filter


ROLES = [
    Role("org_admin", "acme", "org_admin", "ada", "", frozenset(ACME)),
    Role("manager of ops", "acme", "manager", "boss", "ops", frozenset({"olga", "oscar"})),
    Role("manager of ops+web", "acme", "manager", "chief", "ops,web", frozenset(ACME)),
    Role("member olga", "acme", "member", "olga", "", frozenset({"olga"})),
]


@dataclass(frozen=True)
class Target:
    """What a request asks for beyond the role's own scope."""

    name: str
    params: dict
    org: str = "acme"


TARGETS = [
    Target("own scope", {}),
    Target("own team", {"team_id": "ops"}),
    Target("other team", {"team_id": "web"}),
    Target("other person", {"user_id": "wendy"}),
    Target("other org", {}, org="globex"),
]


def expected(role: Role, target: Target) -> int | frozenset[str]:
    """The status a refused request answers, or the people whose figures the answer holds."""
    if target.org != role.org:
        return 404
    team, user = target.params.get("team_id"), target.params.get("user_id")
    if role.role == "manager" and team and team not in role.teams.split(","):
        return 403
    if role.role == "member" and user and user != role.user:
        return 403
    return frozenset(p for p in role.sees if (not team or PEOPLE[p][1] == team) and (not user or p == user))


def _events() -> list[dict]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    events = []
    for n, (person, (org, team, cost)) in enumerate(PEOPLE.items()):
        base = {"org_id": org, "user_id": person, "team_id": team, "session_id": f"s-{person}"}
        at = start - timedelta(days=n)
        events += [
            {**base, "id": f"m-{person}", "type": "message.sent", "occurred_at": at.isoformat()},
            {**base, "id": f"q-{person}", "type": "run.queued", "run_id": f"r-{person}",
             "attributes": {"model": f"model-{person}", "repo": f"repo-{person}"}, "occurred_at": (at + timedelta(seconds=5)).isoformat()},
            {**base, "id": f"s-{person}", "type": "run.started", "run_id": f"r-{person}", "occurred_at": (at + timedelta(seconds=9)).isoformat()},
            {**base, "id": f"f-{person}", "type": "run.finished", "run_id": f"r-{person}", "status": "succeeded",
             "cost_usd": cost, "occurred_at": (at + timedelta(seconds=99)).isoformat()},
        ]  # fmt: skip
    return events


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("matrix") / "data").start()
    try:
        answer = httpx.post(f"{server.ingest_url}/v1/events", json={"events": _events()}, headers=server.ingest_headers)
        assert answer.json()["accepted"] == 4 * len(PEOPLE), answer.text
        server.wait_projected()
        tokens = {r.name: server.token(r.org, role=r.role, user=r.user, teams=r.teams) for r in ROLES}
        yield server, tokens
    finally:
        server.stop()


ENDPOINTS = [
    "metrics",
    "metrics.csv",
    *(f"breakdown/{d}{ext}" for d in ("team", "user", "model", "repo") for ext in ("", ".csv")),
]


def _leaks(body: str, allowed: frozenset[str], asked_for: str | None = None) -> list[str]:
    """Names, models and repos of people outside `allowed` in the body; a name the request itself gave (echoed
    back as the filter, or as a person page's heading) is not a leak, their figures would be."""
    hidden = set(PEOPLE) - allowed
    return [word for p in hidden for word in (p, f"model-{p}", f"repo-{p}") if word in body and word != asked_for]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
def test_read_api(loaded, role, target, endpoint):
    server, tokens = loaded
    to = datetime.now(UTC).date()
    params = {"from": str(to - timedelta(days=29)), "to": str(to), **target.params}
    answer = httpx.get(f"{server.url}/api/v1/orgs/{target.org}/{endpoint}", params=params,
                       headers={"Authorization": f"Bearer {tokens[role.name]}"}, trust_env=False)  # fmt: skip
    outcome = expected(role, target)
    if isinstance(outcome, int):
        assert answer.status_code == outcome, answer.text
        assert set(answer.json()) == {"error"}
        assert not _leaks(answer.text, frozenset())
        return
    assert answer.status_code == 200, answer.text
    leaks = _leaks(answer.text, outcome | {role.user}, target.params.get("user_id"))
    assert not leaks, f"{role.name} sees {leaks} in {endpoint}"
    rows = list(csv.DictReader(io.StringIO(answer.text))) if endpoint.endswith(".csv") else answer.json()
    if endpoint.startswith("metrics"):
        total_runs = sum(int(r["runs"]) for r in rows) if endpoint.endswith(".csv") else rows["runs"]
        total_cost = sum(float(r["cost_usd"]) for r in rows) if endpoint.endswith(".csv") else rows["cost_usd"]
        assert total_runs == len(outcome)
        assert total_cost == pytest.approx(sum(PEOPLE[p][2] for p in outcome))
    else:
        dimension = endpoint.split("/")[1].removesuffix(".csv")
        shown = {r["key"] for r in rows}
        wanted = {"team": {PEOPLE[p][1] for p in outcome}, "user": set(outcome),
                  "model": {f"model-{p}" for p in outcome}, "repo": {f"repo-{p}" for p in outcome}}[dimension]  # fmt: skip
        assert shown == wanted


PAGES = [
    "/",
    "/adoption",
    "/reliability",
    "/speed",
    "/cost",
    "/human-intervention",
    "/iteration",
    "/shipping",
    "/people",
    "/teams",
]
PAGE_TARGETS = [
    ("?days=30", {}), ("?days=30&team_id=web", {"team_id": "web"}), ("?days=30&user_id=wendy", {"user_id": "wendy"}),
]  # fmt: skip
OWN_PAGES = [("/people/wendy?days=30", {"user_id": "wendy"}), ("/teams/web?days=30", {"team_id": "web"})]
SETTLED = (
    "[data-metric], [data-testid=empty], [data-testid=message], [data-testid=user-table], [data-testid=team-table]"
)
CHART_OPTIONS = """() => [...document.querySelectorAll('[_echarts_instance_]')]
    .map(el => JSON.stringify(getElement(el).chart.getOption())).join('\\n')"""


def _page_text(page) -> str:
    """Everything the page shows: its text and every chart's data (charts draw on canvas, not in the DOM)."""
    page.wait_for_selector(SETTLED)
    page.wait_for_selector("[data-testid=loading]", state="detached")
    return page.inner_text("body") + "\n" + page.evaluate(CHART_OPTIONS)


@pytest.mark.skipif(chromium_path() is None, reason="Debian chromium is not installed (.ci/run installs it)")
@pytest.mark.parametrize("role", [r for r in ROLES if r.name != "manager of ops+web"], ids=lambda r: r.name)
def test_dashboard_pages(loaded, role):
    server, tokens = loaded
    with browser_page() as page:
        page.goto(f"{server.url}/login?token={tokens[role.name]}")
        visits = [(f"{path}{query}", params) for path in PAGES for query, params in PAGE_TARGETS] + OWN_PAGES
        for url, params in visits:
            page.goto(f"{server.url}{url}")
            text = _page_text(page)
            outcome = expected(role, Target(url, params))
            allowed = frozenset({role.user}) | (frozenset() if isinstance(outcome, int) else outcome)
            leaks = _leaks(text, allowed, params.get("user_id"))
            assert not leaks, f"{role.name} sees {leaks} on {url}"
            if isinstance(outcome, int):
                assert page.locator("[data-testid=message]").count() == 1, f"{role.name} on {url} should be refused"
            elif url.startswith(("/people?", "/cost?")):  # and what they may see is really there, charts included
                shown = outcome if url.startswith("/people?") else {f"model-{p}" for p in outcome}
                assert all(word in text for word in shown), f"{role.name} misses some of {shown} on {url}"
            elif url.startswith("/?") and outcome:
                assert page.locator("[data-metric='Runs']").inner_text() == str(len(outcome)), url
            elif url.startswith("/?"):
                assert page.locator("[data-testid=empty]").count() == 1, url
