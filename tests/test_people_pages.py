"""People and team pages: sortable tables that match the read API, click-through to a person's or team's own page, scope.

The browser tests run a real server and headless chromium; the User tests drive the same pages in-process with
NiceGUI's `user` fixture (tests/dashboard_user_app.py registers them on a data dir the test fills).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from browser import browser_page, chromium_path, screenshot
from dashboard_events import run_events
from playwright.sync_api import expect
from user_fixture import drawn, figure, prepare_user_app, sign_in

from agentdash.testing import ServerProcess
from agentdash.ui import format as fmt
from agentdash.ui.cards import QUESTIONS
from agentdash.ui.people import PEOPLE, TEAMS
from agentdash.ui.signin import COOKIE

pytest_plugins = ["nicegui.testing.user_plugin"]

needs_chromium = pytest.mark.skipif(
    chromium_path() is None, reason="Debian chromium is not installed (.ci/run installs it)"
)

ORG = "acme"
# (days ago, team, user, status, cost in USD, run seconds): four people in two teams, every cost different.
PLAN = [(1, "web", "u0", "succeeded", 2.0, 200), (2, "web", "u0", "failed", 4.5, 400), (3, "web", "u0", "succeeded", 1.25, 90),
        (1, "web", "u1", "succeeded", 3.0, 300), (9, "web", "u1", "cancelled", 0.5, 30),
        (2, "ops", "u2", "failed", 7.0, 700), (4, "ops", "u3", "succeeded", 0.75, 60), (6, "ops", "u3", "succeeded", 1.1, 80)]  # fmt: skip
RUNS = len(PLAN) * 4

# The tables' metric columns, by the read API's key, formatted as the screen shows them.
SHOWN = {"runs": fmt.count, "sessions": fmt.count, "active_users": fmt.count, "success_rate": fmt.percent,
         "run_duration_avg_s": fmt.duration, "run_duration_p95_s": fmt.duration, "cost_usd": fmt.money,
         "handoff_rate": fmt.percent, "runs_per_session": fmt.count}  # fmt: skip


def _events() -> list[dict]:
    return [e for n, plan in enumerate(PLAN) for e in run_events(ORG, n, *plan)]


def _range(days: int = 30) -> dict:
    to = datetime.now(UTC).date()
    return {"from": str(to - timedelta(days=days - 1)), "to": str(to)}


# ---------------------------------------------------------------- in a real browser


@pytest.fixture(scope="module")
def filled(tmp_path_factory) -> Iterator[ServerProcess]:
    """The real server with PLAN's runs folded; one for the module's browser tests (per xdist worker): they only read."""
    server = ServerProcess(tmp_path_factory.mktemp("people") / "data").start()
    try:
        answer = httpx.post(f"{server.ingest_url}/v1/events", headers=server.ingest_headers, json={"events": _events()},
                            trust_env=False)  # fmt: skip
        assert answer.json()["accepted"] == RUNS, answer.text
        server.wait_projected()
        yield server
    finally:
        server.stop()


def _api(server, token: str, what: str, days: int = 30, **params) -> dict | list:
    url = f"{server.url}/api/v1/orgs/{ORG}/{what}"
    answer = httpx.get(url, params={**_range(days), **params}, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _sign_in(page, server, token: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{server.url}/login?token={token}")


def _open_list(page, url: str, testid: str) -> None:
    page.goto(url)
    page.wait_for_selector(f"[data-testid={testid}] tbody tr, [data-testid=message]")


def _open_own(page, url: str | None = None) -> None:
    if url:
        page.goto(url)
    page.wait_for_selector("[data-metric='Runs'], [data-testid=empty], [data-testid=message]")


def _table(page, testid: str) -> list[list[str]]:
    return [row.locator("td").all_inner_texts() for row in page.locator(f"[data-testid={testid}] tbody tr").all()]


def _expected(rows: list[dict], columns: tuple[str, ...]) -> list[list[str]]:
    return [[row["key"], *(SHOWN[key](row[key]) for key in columns)] for row in rows]


def _metric(page, name: str) -> str:
    return page.locator(f"[data-metric='{name}']").inner_text()


def _headlines_match(page, api: dict) -> None:
    assert page.locator("[data-testid=subject]").inner_text() in (api["user_id"], api["team_id"])
    assert _metric(page, "Runs") == fmt.count(api["runs"])
    assert _metric(page, "Success rate") == fmt.percent(api["success_rate"])
    assert _metric(page, "Total") == fmt.money(api["cost_usd"])
    assert _metric(page, "Per run") == fmt.money(api["cost_per_run_usd"])
    assert _metric(page, "Avg run") == fmt.duration(api["run_duration_avg_s"])
    assert _metric(page, "P95 run") == fmt.duration(api["run_duration_p95_s"])
    assert _metric(page, "Active users") == fmt.count(api["active_users"])
    assert _metric(page, "Runs per session") == fmt.count(api["runs_per_session"])


def _charts_drawn(page, subject) -> None:
    sparklines = len(QUESTIONS)  # one per overview card
    assert page.locator(".nicegui-echart").count() == subject.page.charts + sparklines
    page.wait_for_function("[...document.querySelectorAll('.nicegui-echart')].every(e => e.querySelector('canvas'))")


@needs_chromium
def test_the_people_table_lists_the_read_apis_users_and_sorts(filled):
    token = filled.token(ORG)
    users = _api(filled, token, "breakdown/user")
    assert [u["key"] for u in users] == ["u0", "u1", "u3", "u2"]  # busiest first, as the API orders them
    with browser_page() as page:
        _sign_in(page, filled, token)
        _open_list(page, f"{filled.url}/people?days=30", "user-table")
        assert _table(page, "user-table") == _expected(users, PEOPLE.columns)
        head = page.locator("[data-testid=user-table] thead").inner_text()
        for label in (
            "Person",
            "Runs",
            "Sessions",
            "Success rate",
            "Avg run duration",
            "P95 run duration",
            "Cost",
            "Handoff rate",
            "Runs per session",
        ):  # a key number of every question
            assert label in head
        screenshot(page, "people")

        names = page.locator("[data-testid=user-table] tbody tr td:first-child")
        by_cost = [u["key"] for u in sorted(users, key=lambda u: u["cost_usd"])]
        page.locator("[data-testid=user-table] th", has_text="Cost").click()
        expect(names).to_have_text(by_cost)
        page.locator("[data-testid=user-table] th", has_text="Cost").click()
        expect(names).to_have_text(by_cost[::-1])

        href = page.locator("[data-testid=csv-user]").get_attribute("href")
        csv = httpx.get(f"{filled.url}{href}", headers={"Authorization": f"Bearer {token}"}, cookies={COOKIE: token})
        assert [line.split(",")[0] for line in csv.text.splitlines()[1:]] == [u["key"] for u in users]


@needs_chromium
def test_a_click_on_a_row_opens_the_persons_own_page_with_their_numbers(filled):
    token = filled.token(ORG)
    with browser_page() as page:
        _sign_in(page, filled, token)
        _open_list(page, f"{filled.url}/people?days=30", "user-table")
        # A click on a figure, not on the name's link: the whole row opens the page.
        page.locator("[data-testid=user-table] tbody tr", has_text="u1").locator("td").nth(3).click()
        page.wait_for_url("**/people/u1?days=30")
        _open_own(page)
        _headlines_match(page, _api(filled, token, "metrics", user_id="u1"))
        assert "teams in this range: web" in page.locator("[data-testid=subject-context]").inner_text()
        _charts_drawn(page, PEOPLE)
        screenshot(page, "person")

        # The filters still work on the person's page and keep them on it.
        page.locator("[data-testid=range]").click()
        page.get_by_role("option", name="Last 7 days").click()
        page.wait_for_url("**/people/u1?days=7")  # the bar keeps its filters; the person stays in the path
        _open_own(page)
        assert _metric(page, "Runs") == fmt.count(_api(filled, token, "metrics", 7, user_id="u1")["runs"]) == "1"
        page.locator("[data-testid=granularity]").get_by_text("Weekly").click()
        page.wait_for_url("**/people/u1?days=7&weekly=1")
        _open_own(page)
        assert page.locator("[data-testid=subject]").inner_text() == "u1"

        page.locator("[data-testid=back]").click()
        page.wait_for_url("**/people?days=7&weekly=1")


@needs_chromium
def test_the_keyboard_reaches_a_row_and_enter_opens_it(filled):
    with browser_page() as page:
        _sign_in(page, filled, filled.token(ORG))
        _open_list(page, f"{filled.url}/people?days=30", "user-table")
        for _ in range(60):  # Tab through the frame and filter bar until a row's link has the focus
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.dataset.testid") == "open":
                break
        focused = page.evaluate("document.activeElement.innerText")
        assert focused == "u0"  # the first row, the busiest person
        page.keyboard.press("Enter")
        page.wait_for_url("**/people/u0?days=30")
        _open_own(page)
        assert page.locator("[data-testid=subject]").inner_text() == "u0"


@needs_chromium
def test_the_teams_table_and_a_teams_own_page_match_the_read_api(filled):
    token = filled.token(ORG)
    teams = _api(filled, token, "breakdown/team")
    with browser_page() as page:
        _sign_in(page, filled, token)
        _open_list(page, f"{filled.url}/teams?days=30", "team-table")
        assert _table(page, "team-table") == _expected(teams, TEAMS.columns)
        screenshot(page, "teams")

        page.locator("[data-testid=team-table] tbody tr", has_text="ops").locator("td").nth(1).click()
        page.wait_for_url("**/teams/ops?days=30")
        _open_own(page)
        _headlines_match(page, _api(filled, token, "metrics", team_id="ops"))
        ops_people = _api(filled, token, "breakdown/user", team_id="ops")
        assert _table(page, "user-table") == _expected(ops_people, PEOPLE.columns)
        _charts_drawn(page, TEAMS)
        screenshot(page, "team")

        page.locator("[data-testid=user-table] tbody tr", has_text="u3").locator("[data-testid=open]").click()
        page.wait_for_url("**/people/u3?days=30&team_id=ops")  # the team stays picked
        _open_own(page)
        _headlines_match(page, _api(filled, token, "metrics", team_id="ops", user_id="u3"))


@needs_chromium
def test_members_and_managers_see_only_their_scope(filled):
    admin = filled.token(ORG)
    member = filled.token(ORG, role="member", user="u1")
    manager = filled.token(ORG, role="manager", user="boss", teams="ops")
    with browser_page() as page:
        _sign_in(page, filled, member)
        _open_list(page, f"{filled.url}/people?days=30", "user-table")
        assert _table(page, "user-table") == _expected(
            _api(filled, admin, "breakdown/user", user_id="u1"), PEOPLE.columns
        )
        assert [r[0] for r in _table(page, "user-table")] == ["u1"]
        screenshot(page, "people-member")
        _open_own(page, f"{filled.url}/people/u1?days=30")
        _headlines_match(page, _api(filled, admin, "metrics", user_id="u1"))
        _open_own(page, f"{filled.url}/people/u0?days=30")
        assert "own data" in page.locator("[data-testid=message]").inner_text()
        assert page.locator("[data-metric]").count() == 0 and page.locator("[data-testid=subject]").count() == 0

        _sign_in(page, filled, manager)
        _open_list(page, f"{filled.url}/people?days=30", "user-table")
        assert [r[0] for r in _table(page, "user-table")] == [u["key"] for u in _api(filled, manager, "breakdown/user")]
        assert {r[0] for r in _table(page, "user-table")} == {"u2", "u3"}
        _open_list(page, f"{filled.url}/teams?days=30", "team-table")
        assert [r[0] for r in _table(page, "team-table")] == ["ops"]
        _open_own(page, f"{filled.url}/teams/web?days=30")
        assert "not one of yours" in page.locator("[data-testid=message]").inner_text()
        assert page.locator("[data-metric]").count() == 0


# ---------------------------------------------------------------- in-process, with NiceGUI's User fixture


@pytest.fixture
def user_app(tmp_path, monkeypatch):
    """A data dir holding PLAN's runs, folded, for tests/dashboard_user_app.py to serve."""
    prepare_user_app(_events(), tmp_path / "data", monkeypatch)


@pytest.mark.nicegui_main_file("tests/dashboard_user_app.py")
async def test_user_fixture_people_table_rows_open_their_page(user_app, user):
    sign_in(user, ORG)
    await user.open("/people?days=30")
    await drawn(user, "user-table")
    table = user.find(marker="user-table").elements.pop()
    assert [row["key"] for row in table.rows] == ["u0", "u1", "u3", "u2"]
    assert [row["cost_usd__text"] for row in table.rows] == ["$7.75", "$3.50", "$1.85", "$7.00"]
    assert table.rows[0]["href"] == "/people/u0?days=30"

    user.find(marker="user-table").trigger("rowClick", [{}, {"href": table.rows[1]["href"]}, 1])
    await drawn(user, "subject")
    assert user.back_history[-1] == "/people/u1?days=30"
    await user.should_see("u1", marker="subject")
    assert figure(user, "Runs") == "2"


@pytest.mark.nicegui_main_file("tests/dashboard_user_app.py")
async def test_user_fixture_person_page_shows_only_what_a_member_may_see(user_app, user):
    sign_in(user, ORG, role="member", sub="u0")
    await user.open("/people/u0?days=30")
    await drawn(user, "subject")
    await user.should_see("Person · teams in this range: web")
    assert (figure(user, "Runs"), figure(user, "Total"), figure(user, "Success rate")) == ("3", "$7.75", "66.7%")
    for title in ("Runs by outcome", "Run durations", "Failed runs by category"):
        await user.should_see(title)

    await user.open("/people/u1?days=30")
    await user.should_see("members see only their own data")
    await user.should_not_see(marker="subject")
