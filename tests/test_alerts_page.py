"""The Alerts page and the banner of firing alerts with NiceGUI's `user` fixture (in-process, no browser): budgets with
their forecast, rules, history, and who sees what."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from nicegui.testing.user_interaction import UserInteraction
from user_fixture import drawn, prepare_user_app, sign_in
from webhook_receiver import Receiver

from agentdash.alerts import checked_rule, new_rule_id
from agentdash.alerts.budgets import budget_progress, forecast
from agentdash.alerts.evaluate import Evaluator
from agentdash.config import load_settings
from agentdash.storage import AlertRule, AlertStore, open_alerts, open_storage

pytest_plugins = ["nicegui.testing.user_plugin"]
pytestmark = pytest.mark.nicegui_main_file("tests/alerts_user_app.py")

HOOK = "https://hooks.example.com/services/secret"


def run(run_id: str, cost: float, team: str) -> dict:
    return {"id": run_id, "type": "run.finished", "org_id": "acme", "user_id": "ana", "session_id": "s1",
            "run_id": run_id, "team_id": team, "occurred_at": datetime.now(UTC).isoformat(), "status": "succeeded",
            "cost_usd": cost}  # fmt: skip


@pytest.fixture
def user_app(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    prepare_user_app([run("r1", 90.0, "platform"), run("r2", 5.0, "mobile")], data_dir, monkeypatch)
    settings = load_settings(data_dir=data_dir)
    storage, store = open_storage(settings), open_alerts(settings)
    rules = {}
    for name, team, usd in (("platform monthly", "platform", 1000.0), ("mobile monthly", "mobile", 1.0)):
        rules[team] = store.add(checked_rule(AlertRule(new_rule_id(), "acme", name, "budget", usd, "month", HOOK,
                                                       team_id=team)))  # fmt: skip
    assert len(Evaluator(storage, store).run()) == 1  # mobile is over its budget
    # The figures the Cost page must show: alerts.budgets over the same read models as the read API's.
    progress = {p.rule.id: p for p in budget_progress(storage, list(rules.values()), datetime.now(UTC))}
    store.close()
    storage.close()
    return SimpleNamespace(settings=settings, rules=rules, progress=progress)


def _elements(user, testid: str) -> list:
    return [e for e in user.client.elements.values() if e.props.get("data-testid") == testid]


async def test_an_admin_sees_budgets_rules_history_and_the_banner(user_app, user):
    sign_in(user, "acme")
    await user.open("/alerts")
    await drawn(user, "alerts-ready")
    spent = [e.text for e in _elements(user, "budget-spent")]
    assert spent == ["$5.00 of $1.00 this month", "$90.00 of $1.0k this month"]
    assert all("forecast at this pace" in e.text for e in _elements(user, "budget-forecast"))
    await user.should_see("mobile monthly: team mobile spent $5.00 this month")  # the banner
    (history,) = _elements(user, "history")
    assert [row["rule"] for row in history.rows] == ["mobile monthly"] and history.rows[0]["state"] == "firing"
    assert {r.props["data-name"]: r.props["data-state"] for r in _elements(user, "rule")} == {
        "mobile monthly": "firing", "platform monthly": "ok"}  # fmt: skip
    assert all(r.props["data-webhook"] == "https://hooks.example.com/…" for r in _elements(user, "rule"))


async def test_a_manager_sees_their_teams_only_and_a_member_is_refused(user_app, user):
    sign_in(user, "acme", "manager", "mo", ("platform",))
    await user.open("/alerts")
    await drawn(user, "alerts-ready")
    assert [r.props["data-name"] for r in _elements(user, "rule")] == ["platform monthly"]
    assert _elements(user, "alert-banner") == []  # mobile's alert is not theirs
    sign_in(user, "acme", "member", "ana")
    await user.open("/alerts")
    await user.should_see("alert rules are set by org admins", retries=100)
    await asyncio.sleep(0.5)  # the banner's slot is filled by then
    assert _elements(user, "alert-banner") == []  # no rule is about ana alone


@contextmanager
def alert_store(user_app) -> Iterator[AlertStore]:
    """A second connection to the app's alert store (its own file, WAL), as the CLI would have."""
    store = open_alerts(user_app.settings)
    try:
        yield store
    finally:
        store.close()


def _one(user, marker: str):
    (element,) = user.find(marker=marker).elements
    return element


async def _until(check, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _rule_names(user) -> list[str]:
    return [r.props["data-name"] for r in _elements(user, "rule")]


async def _refused(user, problem: str) -> None:
    """The form names the problem and stays open; the notification says the same."""
    await _until(lambda: problem in _one(user, "rule-error").text, f"the form to say {problem!r}")
    (form,) = _elements(user, "rule-form")
    assert user.notify.contains(problem) and form.parent_slot.parent.value  # its dialog is open


def _choose(user, marker: str, option: str) -> None:
    """Open the select's list and click `option` in it (not some other element showing that text)."""
    interaction = UserInteraction(user, {_one(user, marker)}, option)
    interaction.click()  # opens the list
    interaction.click()


async def test_an_admin_creates_edits_and_deletes_a_rule_and_is_told_what_is_wrong(user_app, user):
    sign_in(user, "acme")
    await user.open("/alerts")
    await drawn(user, "alerts-ready")
    user.find(marker="new-rule").click()
    user.find(marker="rule-name").type("web daily")
    user.find(marker="rule-threshold").type("0")
    _choose(user, "rule-period", "per calendar day")
    user.find(marker="rule-team").type("web")
    user.find(marker="rule-save").click()
    await _refused(user, "a new rule needs a webhook_url")
    user.find(marker="rule-webhook").type("https://hooks.example.com/services/web")
    user.find(marker="rule-save").click()
    await _refused(user, "a budget must be above 0 USD, got 0")
    user.find(marker="rule-threshold").clear().type("25")
    user.find(marker="rule-save").click()
    await _until(lambda: "web daily" in _rule_names(user), "the new rule in the list")
    with alert_store(user_app) as store:
        (made,) = [r for r in store.list_rules("acme") if r.name == "web daily"]
    assert (made.kind, made.threshold, made.period, made.team_id, made.user_id, made.webhook_url) == (
        "budget", 25.0, "day", "web", None, "https://hooks.example.com/services/web")  # fmt: skip
    assert user.notify.contains("Added 'web daily'")

    user.find(marker=f"edit-{made.id}").click()
    assert _one(user, "rule-name").value == "web daily" and _one(user, "rule-threshold").value == 25.0
    user.find(marker="rule-name").clear().type("web failures")
    _choose(user, "rule-kind", "Failed runs a day above")
    user.find(marker="rule-threshold").clear().type("3")
    user.find(marker="rule-save").click()  # the webhook left blank: kept
    await _until(lambda: "web failures" in _rule_names(user), "the edited rule in the list")
    with alert_store(user_app) as store:
        edited = store.get(made.id)
    assert edited is not None
    assert (edited.name, edited.kind, edited.threshold, edited.period, edited.team_id, edited.webhook_url) == (
        "web failures", "failed_runs", 3.0, "day", "web", "https://hooks.example.com/services/web")  # fmt: skip

    user.find(marker=f"edit-{made.id}").click()
    user.find(marker="rule-user").type("ana")  # a team and a person: checked_rule refuses
    user.find(marker="rule-save").click()
    await _refused(user, "at most one of team and user")
    user.find(marker="rule-cancel").click()

    user.find(marker=f"delete-{made.id}").click()
    user.find(marker="confirm-delete").click()
    await _until(lambda: "web failures" not in _rule_names(user), "the deleted rule gone from the list")
    with alert_store(user_app) as store:
        assert store.get(made.id) is None
    assert sorted(_rule_names(user)) == ["mobile monthly", "platform monthly"]


async def test_the_test_button_posts_off_the_event_loop_and_says_how_the_receiver_answered(user_app, user):
    receiver = Receiver(delay_s=1.0)
    try:
        with alert_store(user_app) as store:
            rule = store.add(checked_rule(AlertRule(new_rule_id(), "acme", "hooked", "budget", 50.0, "day",
                                                    receiver.url, team_id="platform")))  # fmt: skip
        sign_in(user, "acme")
        await user.open("/alerts")
        await drawn(user, "alerts-ready")
        user.find(marker=f"test-{rule.id}").click()
        started = time.monotonic()
        await asyncio.sleep(0.05)
        assert time.monotonic() - started < 0.5  # the receiver takes a second: the POST is not on this event loop
        await _until(lambda: user.notify.contains("Delivered a test notification for 'hooked' (HTTP 200)"),
                     "the delivery to be told")  # fmt: skip
        (body,) = receiver.bodies
        assert body["state"] == "test" and body["rule"]["id"] == rule.id and "hooked" in body["text"]

        receiver.codes = [500]
        user.find(marker=f"test-{rule.id}").click()
        await _until(lambda: user.notify.contains("The webhook did not take the test notification: HTTP 500"),
                     "the failure to be told")  # fmt: skip
        assert [b["code"] for b in receiver.bodies] == [200, 500]
    finally:
        receiver.close()


async def test_a_manager_manages_only_their_teams_rules_and_picks_only_their_teams(user_app, user):
    mobile, platform = user_app.rules["mobile"], user_app.rules["platform"]
    sign_in(user, "acme", "manager", "mo", ("platform",))
    await user.open("/alerts")
    await drawn(user, "alerts-ready")
    assert _rule_names(user) == ["platform monthly"]
    await user.should_not_see(marker=f"edit-{mobile.id}")
    user.find(marker="new-rule").click()
    team = _one(user, "rule-team")
    assert (team.options, team.value) == (["platform"], "platform")  # their teams only, and no person
    await user.should_not_see(marker="rule-user")
    user.find(marker="rule-name").type("second budget")
    user.find(marker="rule-threshold").type("10")
    user.find(marker="rule-webhook").type(HOOK)
    team.set_options(["platform", "mobile"])  # as a tampered page would offer: the save still checks the role
    _choose(user, "rule-team", "mobile")
    user.find(marker="rule-save").click()
    await _refused(user, "managers set rules for their own teams only (platform)")
    user.find(marker="rule-team").clear()  # no team: the whole org's, an admin's
    user.find(marker="rule-save").click()
    await _refused(user, "managers set rules for their own teams only")
    _choose(user, "rule-team", "platform")
    user.find(marker="rule-save").click()
    await _until(lambda: "second budget" in _rule_names(user), "the manager's rule in the list")
    with alert_store(user_app) as store:
        assert {r.name: r.team_id for r in store.list_rules("acme")} == {
            "mobile monthly": "mobile", "platform monthly": "platform", "second budget": "platform"}  # fmt: skip
        assert store.get(mobile.id) == mobile

    user.find(marker=f"edit-{platform.id}").click()
    assert _one(user, "rule-team").options == ["platform"]


async def test_the_cost_page_shows_the_viewers_budgets_with_their_forecast(user_app, user):
    sign_in(user, "acme")
    await user.open("/cost")
    await drawn(user, "budgets")
    shown = {e.props["data-rule"]: (float(e.props["data-spent"]), float(e.props["data-forecast"]))
             for e in _elements(user, "budget")}  # fmt: skip
    assert set(shown) == set(user_app.progress)
    for rule_id, (spent, projected) in shown.items():
        expected = user_app.progress[rule_id]
        assert spent == expected.spent_usd
        assert projected == pytest.approx(expected.forecast_usd, rel=1e-2)  # computed a moment apart
    platform, mobile = user_app.rules["platform"], user_app.rules["mobile"]
    assert (shown[platform.id][0], shown[mobile.id][0]) == (90.0, 5.0)  # the runs' costs this month
    assert sorted(e.value for e in _elements(user, "budget-bar")) == [pytest.approx(0.09), 1.0]  # 90 of 1000; over

    sign_in(user, "acme", "manager", "mo", ("platform",))
    await user.open("/cost")
    await drawn(user, "budgets")
    assert [e.props["data-rule"] for e in _elements(user, "budget")] == [platform.id]

    sign_in(user, "acme", "member", "ana")
    await user.open("/cost")
    await drawn(user, "breakdown-team")
    assert _elements(user, "budgets") == [] and _elements(user, "budget") == []  # no budget is about ana
    with alert_store(user_app) as store:
        own = store.add(checked_rule(AlertRule(new_rule_id(), "acme", "ana", "budget", 200.0, "month", HOOK,
                                               user_id="ana")))  # fmt: skip
    await user.open("/cost")
    await drawn(user, "budgets")
    (bar,) = _elements(user, "budget")
    assert (bar.props["data-rule"], float(bar.props["data-spent"])) == (own.id, 95.0)  # both runs are ana's


def test_the_forecast_is_a_straight_line_over_the_month():
    assert forecast(10.0, datetime(2026, 4, 16, tzinfo=UTC), "month") == pytest.approx(20.0)  # half of 30 days
    assert forecast(10.0, datetime(2026, 4, 1, 12, tzinfo=UTC), "day") == pytest.approx(20.0)
    assert forecast(0.0, datetime(2026, 4, 1, tzinfo=UTC), "month") == 0.0
