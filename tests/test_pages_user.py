"""Page logic with NiceGUI's `user` fixture (in-process, no browser): sign-in redirect, overview figures, filter bar."""

from __future__ import annotations

import asyncio

import pytest
from dashboard_events import run_events
from nicegui import ui
from user_fixture import drawn, figure, prepare_user_app, sign_in

from agentdash.ui import format as fmt

pytest_plugins = ["nicegui.testing.user_plugin"]
pytestmark = pytest.mark.nicegui_main_file("tests/dashboard_user_app.py")

ORG = "acme"
# (days ago, team, user, status, cost, run seconds, model)
PLAN = [(1, "web", "u0", "succeeded", 2.0, 200, "opus"), (2, "web", "u1", "failed", 4.0, 400, "haiku"),
        (3, "ops", "u2", "succeeded", 1.5, 90, "opus"), (12, "ops", "u2", "succeeded", 3.0, 300, "haiku"),
        (2, "ops", "ops/bot", "succeeded", 0.5, 60, "haiku")]  # fmt: skip


def _events() -> list[dict]:
    events = []
    for n, (*run, model) in enumerate(PLAN):
        for e in run_events(ORG, n, *run):
            events.append({**e, "attributes": {"model": model, "repo": "app"}} if e["type"] == "run.queued" else e)
    return events


@pytest.fixture
def user_app(tmp_path, monkeypatch):
    prepare_user_app(_events(), tmp_path / "data", monkeypatch)


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
