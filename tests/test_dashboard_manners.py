"""Every page in light and dark (screenshots), dark mode remembered across pages, every control reachable by keyboard."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from browser import browser_page, chromium_path, screenshot

from agentdash.testing import ServerProcess
from agentdash.ui.layout import NAV

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="Debian chromium is not installed (.ci/run installs it)"
)

SETTLED = (
    "[data-metric], [data-testid=empty], [data-testid=message], [data-testid=user-table], [data-testid=team-table]"
)


def _history() -> list[dict]:
    """Three weeks of runs by two people in two teams, on two models, some failed, some handed off."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    events = []
    for n in range(24):
        user, team = ("ana", "ops") if n % 3 else ("ben", "web")
        at = start - timedelta(days=n % 21, hours=n)
        base = {"org_id": "acme", "user_id": user, "team_id": team, "session_id": f"s{n // 2}", "run_id": f"r{n}"}
        status = "failed" if n % 5 == 0 else "succeeded"
        finished = {**base, "id": f"f{n}", "type": "run.finished", "status": status, "cost_usd": 0.4 + n / 10,
                    "occurred_at": (at + timedelta(seconds=60 + 40 * n)).isoformat()}  # fmt: skip
        if status == "failed":
            finished["failure_category"] = ("tool_error", "timeout")[n % 2]
        events += [
            {**base, "id": f"q{n}", "type": "run.queued", "attributes": {"model": ("opus", "haiku")[n % 2], "repo": "app"},
             "occurred_at": at.isoformat()},
            {**base, "id": f"s{n}", "type": "run.started", "occurred_at": (at + timedelta(seconds=10)).isoformat()},
            finished,
        ]  # fmt: skip
        if n % 4 == 0:
            events.append(
                {**base, "id": f"h{n}", "type": "handoff", "occurred_at": (at + timedelta(minutes=30)).isoformat()}
            )
    return events


@pytest.fixture(scope="module")
def filled(tmp_path_factory) -> Iterator[ServerProcess]:
    """One server with the history folded for both tests (per xdist worker): they only read it."""
    server = ServerProcess(tmp_path_factory.mktemp("manners") / "data").start()
    try:
        answer = httpx.post(f"{server.ingest_url}/v1/events", json={"events": _history()},
                            headers=server.ingest_headers, trust_env=False)  # fmt: skip
        assert answer.json()["rejected"] == [], answer.text
        server.wait_projected()
        yield server
    finally:
        server.stop()


def _settle(page) -> None:
    page.wait_for_selector(SETTLED)
    page.wait_for_selector("[data-testid=loading]", state="detached")


def test_every_page_in_light_and_dark_and_dark_is_remembered(filled):
    pages = [path for path, _, _ in NAV] + ["/people/ana", "/teams/ops"]
    with browser_page() as page:
        page.goto(f"{filled.url}/login?token={filled.token('acme')}")
        for path in pages:
            page.goto(f"{filled.url}{path}?days=30")
            _settle(page)
            assert page.locator("body.body--dark").count() == 0
            screenshot(page, f"page-{_slug(path)}-light")
        page.locator("[data-testid=dark-toggle]").click()
        page.wait_for_selector("body.body--dark")
        for path in pages:  # chosen once, dark on every page after, from the first paint
            page.goto(f"{filled.url}{path}?days=30")
            assert page.locator("body.body--dark").count() == 1, path
            _settle(page)
            screenshot(page, f"page-{_slug(path)}-dark")
        page.locator("[data-testid=dark-toggle]").click()
        page.wait_for_selector("body:not(.body--dark)")
        page.goto(f"{filled.url}/cost?days=30")
        _settle(page)
        assert page.locator("body.body--dark").count() == 0


def _slug(path: str) -> str:
    return path.strip("/").replace("/", "-") or "overview"


FOCUSED = """() => {
    const e = document.activeElement;
    const nav = e.closest('[data-nav]');
    if (nav) return 'nav:' + nav.getAttribute('data-nav');
    const tagged = e.closest('[data-testid]');
    if (tagged) return tagged.getAttribute('data-testid');
    return e.getAttribute('aria-label') || e.tagName.toLowerCase();
}"""


def _reachable_by_tab(page, presses: int = 120) -> list[str]:
    page.locator("body").click(position={"x": 5, "y": 5})  # start from the top of the page
    seen = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        seen.append(page.evaluate(FOCUSED))
    return seen


def test_every_control_is_reachable_by_keyboard(filled):
    with browser_page() as page:
        page.goto(f"{filled.url}/login?token={filled.token('acme')}")
        page.goto(f"{filled.url}/cost?days=30")
        _settle(page)
        page.wait_for_selector("[data-testid=breakdown-team]")
        reached = set(_reachable_by_tab(page))
        controls = {"dark-toggle", "logout", "range", "date-from", "date-to", "team", "user", "model", "repo",
                    "granularity", "csv-series", "tab-team", "csv-team"}  # fmt: skip
        navigation = {f"nav:{label}" for _, label, _ in NAV}
        assert controls | navigation <= reached, f"not reachable by Tab: {sorted((controls | navigation) - reached)}"

        # The breakdown tabs are one tab stop (the ARIA tabs pattern): arrow keys move along, Enter opens one.
        page.locator("[data-testid=tab-team]").focus()
        along = []
        for _ in range(3):
            page.keyboard.press("ArrowRight")
            along.append(page.evaluate(FOCUSED))
        assert along == ["tab-user", "tab-model", "tab-repo"]
        page.keyboard.press("Enter")
        page.wait_for_selector("[data-testid=breakdown-repo]", state="visible")

        # The keyboard also works them: Enter on a navigation link opens its page.
        page.locator("[data-nav='Reliability']").focus()
        page.keyboard.press("Enter")
        page.wait_for_url("**/reliability?**")

        page.goto(f"{filled.url}/people?days=30")
        _settle(page)
        assert "open" in set(_reachable_by_tab(page, 60))  # every person's row has a link the keyboard reaches
