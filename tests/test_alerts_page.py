"""The Alerts page and the banner of firing alerts with NiceGUI's `user` fixture (in-process, no browser): budgets with
their forecast, rules, history, and who sees what."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from user_fixture import drawn, prepare_user_app, sign_in

from agentdash.alerts import checked_rule, new_rule_id
from agentdash.alerts.budgets import forecast
from agentdash.alerts.evaluate import Evaluator
from agentdash.config import load_settings
from agentdash.storage import AlertRule, open_alerts, open_storage

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
    for name, team, usd in (("platform monthly", "platform", 1000.0), ("mobile monthly", "mobile", 1.0)):
        store.add(checked_rule(AlertRule(new_rule_id(), "acme", name, "budget", usd, "month", HOOK, team_id=team)))
    assert len(Evaluator(storage, store).run()) == 1  # mobile is over its budget
    store.close()
    storage.close()


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
    (rules,) = _elements(user, "rules")
    assert {r["name"]: r["state"] for r in rules.rows} == {"mobile monthly": "firing", "platform monthly": "ok"}
    assert all(r["webhook"] == "https://hooks.example.com/…" for r in rules.rows)


async def test_a_manager_sees_their_teams_only_and_a_member_is_refused(user_app, user):
    sign_in(user, "acme", "manager", "mo", ("platform",))
    await user.open("/alerts")
    await drawn(user, "alerts-ready")
    (rules,) = _elements(user, "rules")
    assert [r["name"] for r in rules.rows] == ["platform monthly"]
    assert _elements(user, "alert-banner") == []  # mobile's alert is not theirs
    sign_in(user, "acme", "member", "ana")
    await user.open("/alerts")
    await user.should_see("alert rules are set by org admins", retries=100)
    await asyncio.sleep(0.5)  # the banner's slot is filled by then
    assert _elements(user, "alert-banner") == []  # no rule is about ana alone


def test_the_forecast_is_a_straight_line_over_the_month():
    assert forecast(10.0, datetime(2026, 4, 16, tzinfo=UTC), "month") == pytest.approx(20.0)  # half of 30 days
    assert forecast(10.0, datetime(2026, 4, 1, 12, tzinfo=UTC), "day") == pytest.approx(20.0)
    assert forecast(0.0, datetime(2026, 4, 1, tzinfo=UTC), "month") == 0.0
