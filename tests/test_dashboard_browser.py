"""The dashboard in a real browser: the read API's numbers for the signed-in org, filters in the URL, dark mode."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from browser import browser_page, chromium_path, screenshot
from dashboard_events import run_events

from agentdash.testing import ServerProcess
from agentdash.ui import format as fmt
from agentdash.ui.cards import QUESTIONS
from agentdash.ui.questions import PAGES

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="Debian chromium is not installed (.ci/run installs it)"
)


def _events(org: str) -> list[dict]:
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    events = []
    for i, status in enumerate(["succeeded", "succeeded", "failed", "succeeded"]):
        at = now - timedelta(days=i)
        base = {"org_id": org, "user_id": f"u{i % 2}", "session_id": f"s{i}", "team_id": "web"}
        events += [
            {**base, "id": f"m{i}", "type": "message.sent", "occurred_at": at.isoformat()},
            {**base, "id": f"q{i}", "type": "run.queued", "run_id": f"r{i}", "occurred_at": (at + timedelta(seconds=5)).isoformat()},
            {**base, "id": f"s{i}", "type": "run.started", "run_id": f"r{i}", "occurred_at": (at + timedelta(seconds=20)).isoformat()},
            {**base, "id": f"f{i}", "type": "run.finished", "run_id": f"r{i}", "status": status, "cost_usd": 1.25 * (i + 1),
             "failure_category": "tool_error" if status == "failed" else None,
             "occurred_at": (at + timedelta(seconds=260 + 30 * i)).isoformat()},
        ]  # fmt: skip
    for e in events:
        if e.get("failure_category") is None:
            e.pop("failure_category", None)
    return events


def _metric(page, name: str) -> str:
    return page.locator(f"[data-metric='{name}']").inner_text()


def test_overview_shows_the_read_api_numbers(server):
    assert (
        httpx.post(
            f"{server.ingest_url}/v1/events", headers=server.ingest_headers, json={"events": _events("acme")}
        ).json()["accepted"]
        == 16
    )
    server.wait_projected()
    token = server.token("acme")
    to = date.today()
    api = httpx.get(
        f"{server.url}/api/v1/orgs/acme/metrics", params={"from": str(to - timedelta(days=29)), "to": str(to)},
        headers={"Authorization": f"Bearer {token}"},
    ).json()  # fmt: skip
    assert api["runs"] == 4 and api["runs_failed"] == 1

    with browser_page() as page:
        page.goto(f"{server.url}/login?token={token}")
        page.wait_for_selector("[data-metric='Runs']")
        assert page.url.rstrip("/") == server.url  # the token left the address bar for a cookie
        assert _metric(page, "Runs") == fmt.count(api["runs"])
        assert _metric(page, "Success rate") == fmt.percent(api["success_rate"])
        assert _metric(page, "Total") == fmt.money(api["cost_usd"])
        assert _metric(page, "Avg run") == fmt.duration(api["run_duration_avg_s"])
        assert _metric(page, "Active users") == fmt.count(api["active_users"])
        screenshot(page, "overview")
        # The sparklines' series download as CSV: one row per day, the same runs.
        href = page.locator("[data-testid=csv-series]").get_attribute("href")
        rows = list(
            csv.DictReader(
                httpx.get(f"{server.url}{href}", headers={"Authorization": f"Bearer {token}"}).text.splitlines()
            )
        )
        assert len(rows) == 30 and sum(int(r["runs"]) for r in rows) == api["runs"]

        page.goto(f"{server.url}/?days=7")
        page.wait_for_selector("[data-metric='Runs']")
        week = httpx.get(
            f"{server.url}/api/v1/orgs/acme/metrics", params={"from": str(to - timedelta(days=6)), "to": str(to)},
            headers={"Authorization": f"Bearer {token}"},
        ).json()  # fmt: skip
        assert _metric(page, "Runs") == fmt.count(week["runs"])


def test_overview_without_a_token_asks_to_sign_in(periods):
    with browser_page() as page:
        page.goto(periods.url)
        page.wait_for_selector("text=Sign in")
        assert page.locator("[data-metric]").count() == 0
        screenshot(page, "signed-out")


def _two_periods(org: str) -> list[dict]:
    """Runs this week and the week before, in two teams, so that changes and team filters show."""
    plan = [
        (1, "web", "u0", "succeeded", 2.0, 200),
        (2, "web", "u1", "succeeded", 3.0, 300),
        (3, "ops", "u2", "failed", 1.0, 90),
        (9, "web", "u0", "failed", 4.0, 400),
        (10, "ops", "u2", "succeeded", 5.0, 500),
        (40, "web", "u1", "succeeded", 1.5, 120),
    ]
    return [e for n, (ago, *rest) in enumerate(plan) for e in run_events(org, n, ago, *rest)]  # fmt: skip


def _api(server, token: str, days: int = 30, **params) -> dict:
    to = datetime.now(UTC).date()
    params = {"from": str(to - timedelta(days=days - 1)), "to": str(to), **params}
    return httpx.get(
        f"{server.url}/api/v1/orgs/acme/metrics", params=params, headers={"Authorization": f"Bearer {token}"}
    ).json()


def _previous(server, token: str, days: int, **params) -> dict:
    to = datetime.now(UTC).date() - timedelta(days=days)
    return _api(server, token, days, **{"from": str(to - timedelta(days=days - 1)), "to": str(to), **params})


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("[data-metric='Runs'], [data-testid=empty], [data-testid=message]")


def _params(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def _badge(current: float | None, previous: float | None, better: int) -> tuple[str, bool]:
    """The change badge computed from two API answers, independently of the page's code."""
    if current is None or not previous:
        return "no previous data", False
    value = (current - previous) / abs(previous)
    arrow = "▲" if value > 0 else "▼" if value < 0 else "■"
    return f"{arrow} {abs(value) * 100:.1f}%", (value > 0) - (value < 0) == better


@contextmanager
def _served(tmp_path_factory, events: list[dict]) -> Iterator[ServerProcess]:
    """A real server with these events folded; its tests only read them, so one serves them all (per xdist worker)."""
    server = ServerProcess(tmp_path_factory.mktemp("dashboard") / "data").start()
    try:
        answer = httpx.post(f"{server.ingest_url}/v1/events", headers=server.ingest_headers, json={"events": events},
                            trust_env=False)  # fmt: skip
        assert answer.status_code == 200 and answer.json()["rejected"] == [], answer.text
        assert answer.json()["accepted"] == len(events), answer.text
        server.wait_projected()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def periods(tmp_path_factory) -> Iterator[ServerProcess]:
    """_two_periods' 24 events, folded."""
    events = _two_periods("acme")
    assert len(events) == 24
    with _served(tmp_path_factory, events) as server:
        yield server


@pytest.fixture(scope="module")
def periods_and_prs(tmp_path_factory) -> Iterator[ServerProcess]:
    """_two_periods' runs and _pull_requests' agent PRs, folded."""
    with _served(tmp_path_factory, _two_periods("acme") + _pull_requests("acme")) as server:
        yield server


def test_filters_live_in_the_url_and_survive_page_changes(periods):
    token = periods.token("acme")
    with browser_page() as page:
        page.goto(f"{periods.url}/login?token={token}")
        _open(page, f"{periods.url}/?days=7")
        week, before = _api(periods, token, 7), _previous(periods, token, 7)
        assert _metric(page, "Runs") == fmt.count(week["runs"]) == "3"
        assert _metric(page, "Per run") == fmt.money(week["cost_per_run_usd"])
        for card, key, better in (
            ("Reliability", "success_rate", 1),
            ("Cost", "cost_per_run_usd", -1),
            ("Speed", "run_duration_p95_s", -1),
        ):
            text, good = _badge(week[key], before[key], better)
            badge = page.locator(f"[data-change='{card}']")
            assert badge.inner_text() == text
            assert _color_of(page, badge, "positive" if good else "negative")
        assert "UTC" in page.locator("[data-testid=freshness]").inner_text()
        screenshot(page, "overview-light")

        page.locator("[data-testid=dark-toggle]").click()
        page.wait_for_selector("body.body--dark")
        screenshot(page, "overview-dark")
        page.locator("[data-testid=dark-toggle]").click()
        page.wait_for_selector("body:not(.body--dark)")

        _open(page, f"{periods.url}/?days=7&team_id=ops")
        ops = _api(periods, token, 7, team_id="ops")
        assert _metric(page, "Runs") == fmt.count(ops["runs"]) == "1"
        assert _metric(page, "Success rate") == fmt.percent(ops["success_rate"])

        page.locator("[data-testid=range]").click()
        page.get_by_role("option", name="Last 90 days").click()
        page.wait_for_url("**days=90**")
        page.wait_for_selector("[data-metric='Runs']")
        assert _params(page) == {"days": "90", "team_id": "ops"}
        assert _metric(page, "Runs") == fmt.count(_api(periods, token, 90, team_id="ops")["runs"]) == "2"

        # A copied link, opened in another browser window by someone signed in to the same org, shows the same view.
        other = page.context.browser.new_context(viewport={"width": 1280, "height": 800})
        other.add_cookies(page.context.cookies())
        copy = other.new_page()
        _open(copy, page.url)
        for name in ("Runs", "Success rate", "Total", "P95 run", "Active users"):
            assert _metric(copy, name) == _metric(page, name)
        assert copy.locator("[data-testid=range]").inner_text() == page.locator("[data-testid=range]").inner_text()
        other.close()

        page.locator("[data-nav='Cost']").click()
        page.wait_for_url("**/cost?**")
        page.wait_for_selector("[data-metric='Per run']")
        assert _params(page) == {"days": "90", "team_id": "ops"}
        quarter = _api(periods, token, 90, team_id="ops")
        assert _metric(page, "Per run") == fmt.money(quarter["cost_per_run_usd"])
        assert _metric(page, "Total") == fmt.money(quarter["cost_usd"])
        screenshot(page, "question-cost")

        _open(page, f"{periods.url}/reliability?from=2020-01-01&to=2020-01-07")
        assert page.get_by_text("No runs in this range").is_visible()
        _open(page, f"{periods.url}/?days=abc&from=nonsense")  # bad values fall back to the defaults, no error
        assert _metric(page, "Runs") == fmt.count(_api(periods, token, 30)["runs"])


def _color_of(page, badge, name: str) -> bool:
    probe = page.evaluate(f"""() => {{ const e = document.createElement('span'); e.className = 'text-{name}';
        document.body.appendChild(e); const c = getComputedStyle(e).color; e.remove(); return c; }}""")
    return badge.evaluate("e => getComputedStyle(e).color") == probe


def test_managers_and_members_see_only_their_scope(periods):
    admin = periods.token("acme")
    with browser_page() as page:
        page.goto(f"{periods.url}/login?token={periods.token('acme', role='manager', user='boss', teams='ops')}")
        _open(page, f"{periods.url}/?days=30")
        assert _metric(page, "Runs") == fmt.count(_api(periods, admin, 30, team_id="ops")["runs"])
        _open(page, f"{periods.url}/?days=30&team_id=web")
        assert "not one of yours" in page.locator("[data-testid=message]").inner_text()

        page.context.clear_cookies()
        page.goto(f"{periods.url}/login?token={periods.token('acme', role='member', user='u1')}")
        _open(page, f"{periods.url}/?days=90")
        assert _metric(page, "Runs") == fmt.count(_api(periods, admin, 90, user_id="u1")["runs"]) == "2"


def test_panels_refresh_when_new_events_are_folded(server):
    assert (
        httpx.post(
            f"{server.ingest_url}/v1/events", headers=server.ingest_headers, json={"events": _two_periods("acme")}
        ).json()["accepted"]
        == 24
    )
    server.wait_projected()
    with browser_page() as page:
        page.goto(f"{server.url}/login?token={server.token('acme')}")
        _open(page, f"{server.url}/?days=7")
        assert _metric(page, "Runs") == "3"
        more = run_events("acme", 99, 0, "web", "u3", "succeeded", 1.0, 60)
        assert (
            httpx.post(f"{server.ingest_url}/v1/events", headers=server.ingest_headers, json={"events": more}).json()[
                "accepted"
            ]
            == 4
        )
        page.wait_for_function("document.querySelector(\"[data-metric='Runs']\").innerText === '4'", timeout=15_000)


def _slug(path: str) -> str:
    return path.strip("/")


def _open_question(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("[data-testid=breakdown-team], [data-testid=empty], [data-testid=message]")


def _pull_requests(org: str) -> list[dict]:
    """Four agent PRs of the last week (two merged, one closed unmerged, one open) and a person's, which never counts."""
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    plan = [(1, "claude/a", "u0", "web", 3, 4, "pr.merged"), (2, "codex/b", "u2", "ops", 2, 1, "pr.closed"),
            (3, "copilot/c", "u1", "web", 5, 26, "pr.merged"), (4, "claude/d", "u0", "web", 1, 0, None),
            (5, "feature/x", "u1", "web", 2, 1, "pr.merged")]  # fmt: skip
    events = []
    for number, branch, user, team, ago, hours, outcome in plan:
        pr = {"org_id": org, "repo": "acme/app", "pr_number": number, "head_branch": branch, "user_id": user,
              "team_id": team}  # fmt: skip
        opened = now - timedelta(days=ago)
        events.append({**pr, "id": f"pr{number}o", "type": "pr.opened", "occurred_at": opened.isoformat()})
        if outcome:
            at = opened + timedelta(hours=hours)
            events.append({**pr, "id": f"pr{number}e", "type": outcome, "occurred_at": at.isoformat()})
    return events


def test_every_question_page_draws_its_charts_without_errors(periods_and_prs):
    with browser_page() as page:
        page.goto(f"{periods_and_prs.url}/login?token={periods_and_prs.token('acme')}")
        for q in QUESTIONS:
            _open_question(page, f"{periods_and_prs.url}{q.path}?days=30")
            assert page.locator("[data-testid=message]").count() == 0
            assert page.locator("[data-testid=breakdown-team]").is_visible()
            assert page.locator(".nicegui-echart").count() == PAGES[q.path].charts
            page.wait_for_function(
                "[...document.querySelectorAll('.nicegui-echart')].every(e => e.querySelector('canvas'))"
            )
            screenshot(page, f"question-{_slug(q.path)}")


def test_the_weekly_toggle_lives_in_the_url_and_survives_navigation(periods):
    with browser_page() as page:
        page.goto(f"{periods.url}/login?token={periods.token('acme')}")
        _open_question(page, f"{periods.url}/reliability?days=90&team_id=web")
        page.locator("[data-testid=granularity]").get_by_text("Weekly").click()
        page.wait_for_url("**weekly=1**")
        _open_question(page, page.url)
        assert _params(page) == {"days": "90", "team_id": "web", "weekly": "1"}
        page.locator("[data-nav='Cost']").click()
        page.wait_for_url("**/cost?**")
        page.wait_for_selector("[data-testid=breakdown-team]")
        assert _params(page) == {"days": "90", "team_id": "web", "weekly": "1"}
        pressed = page.locator("[data-testid=granularity] button[aria-pressed=true]")
        assert pressed.inner_text().strip().lower() == "weekly"
        page.locator("[data-testid=granularity]").get_by_text("Daily").click()
        page.wait_for_url(lambda url: "weekly" not in url and "/cost?" in url)
        # The team and user lists are filled after the page shows, off the event loop.
        page.wait_for_selector("[data-testid=breakdown-team]")
        page.locator("[data-testid=team]").click()
        page.get_by_role("option", name="ops").click()
        page.wait_for_url("**team_id=ops**")


def test_a_question_page_arrives_with_a_loading_state_then_fills_in(periods):
    first = httpx.get(f"{periods.url}/speed?days=30", cookies={"agentdash_token": periods.token("acme")}).text
    assert "Loading…" in first and "breakdown-team" not in first  # the queries run after the page is sent


def test_breakdown_tables_and_csv_links_match_the_read_api(periods):
    token = periods.token("acme")
    to = datetime.now(UTC).date()
    params = {"from": str(to - timedelta(days=29)), "to": str(to)}
    headers = {"Authorization": f"Bearer {token}"}
    with browser_page() as page:
        page.goto(f"{periods.url}/login?token={token}")
        _open_question(page, f"{periods.url}/cost?days=30")

        api = httpx.get(f"{periods.url}/api/v1/orgs/acme/breakdown/team", params=params, headers=headers).json()
        first = page.locator("[data-testid=breakdown-team] tbody tr").first.locator("td").all_inner_texts()
        assert first[:4] == [api[0]["key"], fmt.count(api[0]["runs"]), fmt.money(api[0]["cost_usd"]),
                             fmt.money(api[0]["cost_per_run_usd"])]  # fmt: skip

        page.locator("[data-testid=tab-user]").click()
        users = httpx.get(f"{periods.url}/api/v1/orgs/acme/breakdown/user", params=params, headers=headers).json()
        row = page.locator("[data-testid=breakdown-user] tbody tr").first.locator("td").all_inner_texts()
        assert row[:3] == [users[0]["key"], fmt.count(users[0]["runs"]), fmt.money(users[0]["cost_usd"])]
        with page.expect_download() as download:
            page.locator("[data-testid=csv-user]").click()
        by_user = list(csv.DictReader(download.value.path().read_text().splitlines()))
        assert [(r["key"], int(r["runs"]), float(r["cost_usd"])) for r in by_user] == [
            (u["key"], u["runs"], u["cost_usd"]) for u in users
        ]

        series = httpx.get(f"{periods.url}/api/v1/orgs/acme/metrics", params=params, headers=headers).json()["series"]
        with page.expect_download() as download:
            page.locator("[data-testid=csv-series]").click()
        assert download.value.suggested_filename.endswith(".csv")
        rows = list(csv.DictReader(download.value.path().read_text().splitlines()))
        assert [(r["date"], int(r["runs"]), float(r["cost_usd"])) for r in rows] == [
            (d["date"], d["runs"], d["cost_usd"]) for d in series
        ]
        assert sum(int(r["runs"]) for r in rows) == 5


def _with_models(events: list[dict]) -> list[dict]:
    """The two periods' runs, the even ones on model "fast" in repo "web-app" by codex, the odd ones on "slow" in "api"
    by claude-code."""
    out = []
    for e in events:
        if e["type"] == "run.queued":
            n = int(e["run_id"][1:])
            e = {
                **e,
                "attributes": {"model": "fast", "repo": "web-app", "agent": "codex"}
                if n % 2 == 0
                else {"model": "slow", "repo": "api", "agent": "claude-code"},
            }
        out.append(e)
    return out


def test_model_and_repo_filters_narrow_every_panel_and_live_in_the_url(server):
    assert (
        httpx.post(
            f"{server.ingest_url}/v1/events",
            headers=server.ingest_headers,
            json={"events": _with_models(_two_periods("acme"))},
        ).json()["accepted"]
        == 24
    )
    server.wait_projected()
    token = server.token("acme")
    with browser_page() as page:
        page.goto(f"{server.url}/login?token={token}")
        _open(page, f"{server.url}/?days=90")
        # The model list is filled after the page shows, from the runs in range.
        page.locator("[data-testid=model]").click()
        page.get_by_role("option", name="slow").click()
        page.wait_for_url("**model=slow**")
        page.wait_for_selector("[data-metric='Runs']")
        slow = _api(server, token, 90, model="slow")
        assert 0 < slow["runs"] < _api(server, token, 90)["runs"]
        assert _metric(page, "Runs") == fmt.count(slow["runs"])
        assert _metric(page, "Total") == fmt.money(slow["cost_usd"])
        assert _metric(page, "Active users") == fmt.count(slow["active_users"])

        page.locator("[data-nav='Reliability']").click()
        page.wait_for_url("**/reliability?**")
        page.wait_for_selector("[data-testid=breakdown-team]")
        assert _params(page) == {"days": "90", "model": "slow"}

        _open(page, f"{server.url}/?days=90&repo=web-app&team_id=web")
        both = _api(server, token, 90, repo="web-app", team_id="web")
        assert _metric(page, "Runs") == fmt.count(both["runs"])
        assert _metric(page, "Success rate") == fmt.percent(both["success_rate"])
        nav_href = page.locator("[data-nav='Cost']").get_attribute("href")
        assert "repo=web-app" in nav_href and "team_id=web" in nav_href

        # The agent list narrows every panel too; the reliability page compares agents, the Agent tab lists them.
        _open(page, f"{server.url}/?days=90")
        page.locator("[data-testid=agent]").click()
        page.get_by_role("option", name="codex").click()
        page.wait_for_url("**agent=codex**")
        page.wait_for_selector("[data-metric='Runs']")
        codex = _api(server, token, 90, agent="codex")
        assert 0 < codex["runs"] < _api(server, token, 90)["runs"] and codex["agent"] == "codex"
        assert _metric(page, "Runs") == fmt.count(codex["runs"])
        assert _metric(page, "Total") == fmt.money(codex["cost_usd"])
        _open_question(page, f"{server.url}/reliability?days=90")
        assert page.locator("[data-chart='Success rate by agent']").is_visible()
        page.locator("[data-testid=tab-agent]").click()
        cells = page.locator("[data-testid=breakdown-agent] tbody tr td:first-child")
        cells.first.wait_for()  # all_inner_texts does not wait: the tab's table is drawn after the click
        names = cells.all_inner_texts()
        assert sorted(names) == ["claude-code", "codex"]


def test_the_shipping_page_shows_the_read_apis_pull_requests_in_light_and_dark(periods_and_prs):
    token = periods_and_prs.token("acme")
    api = _api(periods_and_prs, token, 30)
    assert (api["agent_prs_opened"], api["agent_prs_merged"], api["agent_prs_closed_unmerged"]) == (4, 2, 1)
    with browser_page() as page:
        page.goto(f"{periods_and_prs.url}/login?token={token}")
        _open(page, f"{periods_and_prs.url}/?days=30")
        assert _metric(page, "Merge rate") == fmt.percent(api["agent_pr_merge_rate"])
        page.get_by_role("link", name="Does the work ship?").click()
        page.wait_for_url("**/shipping?days=30")
        _open_question(page, page.url)
        expected = {
            "Merge rate": fmt.percent(api["agent_pr_merge_rate"]), "PRs opened": fmt.count(api["agent_prs_opened"]),
            "PRs merged": fmt.count(api["agent_prs_merged"]),
            "Closed unmerged": fmt.count(api["agent_prs_closed_unmerged"]),
            "Median time to merge": fmt.duration(api["agent_pr_time_to_merge_p50_s"]),
            "Per merged PR": fmt.money(api["cost_per_merged_pr_usd"]),
        }  # fmt: skip
        assert {name: _metric(page, name) for name in expected} == expected
        assert expected["Median time to merge"] == "15h 00m"  # the middle of 4 h and 26 h
        assert page.locator(".nicegui-echart").count() == PAGES["/shipping"].charts
        page.wait_for_function(
            "[...document.querySelectorAll('.nicegui-echart')].every(e => e.querySelector('canvas'))"
        )
        assert page.locator("[data-chart='Agent pull requests']").is_visible()
        assert page.locator("[data-nav='Shipping'][aria-current=page]").count() == 1
        screenshot(page, "shipping-light")
        page.locator("[data-testid=dark-toggle]").click()
        page.wait_for_selector("body.body--dark")
        screenshot(page, "shipping-dark")
        page.locator("[data-testid=dark-toggle]").click()
        page.wait_for_selector("body:not(.body--dark)")

        # A team's row opens that team's page, with the range kept.
        page.locator("[data-testid=breakdown-team] [data-testid=open]", has_text="ops").click()
        page.wait_for_url("**/teams/ops?days=30")
        page.wait_for_selector("[data-testid=subject]")
