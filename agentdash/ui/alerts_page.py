"""The Alerts page (org admins; managers for their teams): each budget's progress with its month's forecast, the
rules and their state with new, edit, delete and test buttons, the history with its notifications, and the history
as CSV."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import run, ui

from agentdash.alerts.access import visible_history, visible_rules
from agentdash.alerts.budgets import BudgetProgress, budget_progress
from agentdash.alerts.views import HistoryView, RuleView, history_view, rule_view
from agentdash.auth import Forbidden, Identity, NotVisible
from agentdash.ui.alert_rule_actions import RuleActions
from agentdash.ui.budget_bars import budget_bar
from agentdash.ui.filters import Filters
from agentdash.ui.layout import DARK_COOKIE, frame
from agentdash.ui.sign_in_redirect import signed_in
from agentdash.ui.view import Sources, View

log = logging.getLogger(__name__)

PATH = "/alerts"
LOAD_ERROR = "The alerts could not be loaded. Try again in a moment; the server log has the details."


@dataclass(frozen=True)
class AlertsData:
    budgets: list[BudgetProgress]
    rules: list[RuleView]
    history: list[HistoryView]


def load(sources: Sources, identity: Identity, now: datetime) -> AlertsData:
    store = sources.alert_store
    if store is None:
        raise Forbidden("this server keeps no alert rules")
    org = identity.org_id
    rules = visible_rules(identity, org, store.list_rules(org))
    firing = store.firing()
    history = visible_history(identity, org, store.history(org, limit=500))
    return AlertsData(budget_progress(sources.storage, rules, now), [rule_view(r, firing) for r in rules],
                      [history_view(e) for e in history])  # fmt: skip


def create(sources: Sources) -> None:
    """Register /alerts."""

    @ui.page(PATH, title="Alerts · agentdash")
    async def page(request: Request) -> RedirectResponse | None:
        identity = signed_in(request, sources.verifier)
        if isinstance(identity, RedirectResponse):
            return identity
        view = View(identity, Filters.from_params(request.query_params), sources, PATH,
                    dark=request.cookies.get(DARK_COOKIE) == "1")  # fmt: skip
        with frame("Alerts", view, filter_bar=False):
            with ui.column().classes("w-full gap-3") as content:
                ui.spinner(size="lg").props("data-testid=loading")
            dialogs = ui.element("div")  # outside `content`, so that a redraw after a save leaves the dialog be
        try:
            await ui.context.client.connected(timeout=10)
        except Exception:  # the browser left before connecting: nothing to draw
            return None

        async def show() -> None:
            try:
                data = await run.io_bound(load, sources, identity, datetime.now(UTC))
            except (Forbidden, NotVisible) as exc:
                refusal = str(exc)
                _fill(content, lambda: _message(refusal, "lock"))
                return
            except Exception:
                log.exception("loading the alerts of %s failed", identity.org_id)
                _fill(content, lambda: _message(LOAD_ERROR, "error"))
                return
            if data is not None and sources.alert_store is not None:
                actions = RuleActions(sources.alert_store, identity, dialogs, show)
                _fill(content, lambda: draw(data, identity.org_id, actions))

        await show()
        return None


def _fill(content: ui.column, fill) -> None:
    if content.is_deleted:
        return
    content.clear()
    with content:
        fill()


def draw(data: AlertsData, org_id: str, actions: RuleActions) -> None:
    with ui.card().classes("w-full"):
        ui.label("Budgets").classes("text-h6")
        if not data.budgets:
            ui.label("No budgets yet: add a rule of kind Budget below.")
        for b in data.budgets:
            budget_bar(b)
    with ui.card().classes("w-full"):
        with ui.row().classes("w-full items-center justify-between"):
            ui.label("Rules").classes("text-h6")
            ui.button("New rule", icon="add", on_click=actions.new).props("data-testid=new-rule").mark("new-rule")
        with ui.column().classes("w-full gap-1").props("data-testid=rules"):
            if not data.rules:
                ui.label("No rules yet.").classes("text-grey")
            for rule in data.rules:
                _rule_row(rule, actions)
    with ui.card().classes("w-full"):
        with ui.row().classes("w-full items-center justify-between"):
            ui.label("History").classes("text-h6")
            ui.link("Download CSV", f"/api/v1/orgs/{org_id}/alerts/history.csv").props("data-testid=history-csv")
        columns = [{"name": k, "label": label, "field": k, "align": "left"} for k, label in
                   (("at", "When (UTC)"), ("rule", "Rule"), ("state", "State"), ("text", "What"),
                    ("delivery", "Notification"))]  # fmt: skip
        entries = [{"id": h.id, "at": f"{h.at:%Y-%m-%d %H:%M}", "rule": h.rule_name, "state": h.state,
                    "text": h.text, "delivery": _delivery(h)} for h in data.history]  # fmt: skip
        ui.table(columns=columns, rows=entries, row_key="id", pagination=20).classes("w-full").props(
            "flat data-testid=history"
        )
    ui.element("span").props("data-testid=alerts-ready").mark("alerts-ready")


def _rule_row(rule: RuleView, actions: RuleActions) -> None:
    """One rule: its state, name, scope, condition and webhook host, and its buttons."""
    with ui.row().classes("w-full items-center gap-3 no-wrap q-py-xs") as row:
        row.props.update({"data-testid": "rule", "data-rule": rule.id, "data-name": rule.name,
                          "data-state": rule.state, "data-webhook": rule.webhook})  # fmt: skip
        ui.badge(rule.state, color="negative" if rule.state == "firing" else "positive")
        with ui.column().classes("gap-0 col"):
            ui.label(rule.name).classes("text-weight-bold")
            ui.label(f"{rule.scope}: {rule.condition}; notifies {rule.webhook}").classes("text-caption text-grey")
        ui.button("Edit", icon="edit", on_click=lambda: actions.edit(rule)).props("flat dense no-caps").mark(
            f"edit-{rule.id}"
        )
        test = ui.button("Send test notification", icon="send").props("flat dense no-caps").mark(f"test-{rule.id}")
        test.on_click(lambda: actions.test(rule, test))
        ui.button("Delete", icon="delete", color="negative", on_click=lambda: actions.delete(rule)).props(
            "flat dense no-caps"
        ).mark(f"delete-{rule.id}")


def _delivery(h: HistoryView) -> str:
    if h.delivery == "delivered":
        return f"delivered (HTTP {h.last_status}, attempt {h.attempts})"
    if h.delivery == "failed":
        return f"failed after {h.attempts} attempts: {h.last_error}"
    return f"pending (attempt {h.attempts}{': ' + h.last_error if h.last_error else ''})"


def _message(text: str, icon: str) -> None:
    with ui.card().classes("w-full items-center q-pa-lg"):
        ui.icon(icon, size="lg").classes("text-grey")
        ui.label(text).classes("text-subtitle1").props("data-testid=message")
