"""The overview page in a real browser: it shows the read API's numbers for the signed-in org."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import httpx
import pytest
from browser import browser_page, chromium_path, screenshot

from agentdash.ui import format as fmt

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="Debian chromium is not installed (.ci/run installs it)")


def _events(org: str) -> list[dict]:
    now = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
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
    assert httpx.post(f"{server.ingest_url}/v1/events", json={"events": _events("acme")}).json()["accepted"] == 16
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

        page.goto(f"{server.url}/?days=7")
        page.wait_for_selector("[data-metric='Runs']")
        week = httpx.get(
            f"{server.url}/api/v1/orgs/acme/metrics", params={"from": str(to - timedelta(days=6)), "to": str(to)},
            headers={"Authorization": f"Bearer {token}"},
        ).json()  # fmt: skip
        assert _metric(page, "Runs") == fmt.count(week["runs"])


def test_overview_without_a_token_asks_to_sign_in(server):
    with browser_page() as page:
        page.goto(server.url)
        page.wait_for_selector("text=Sign in")
        assert page.locator("[data-metric]").count() == 0
        screenshot(page, "signed-out")
