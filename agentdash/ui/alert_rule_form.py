"""The dialog that creates or edits an alert rule on the Alerts page. The checks are alerts.rules' and the role rules
alerts.access', run by `save`; what they refuse is shown in the dialog, which stays open to fix it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import ui

from agentdash.alerts import InvalidRule
from agentdash.alerts.manage import RuleDraft
from agentdash.alerts.views import RuleView
from agentdash.auth import Forbidden, Identity, NotVisible
from agentdash.storage import AlertRuleError

KINDS = {"budget": "Budget", "success_rate": "Success rate below", "failed_runs": "Failed runs a day above"}
PERIODS = {"month": "per calendar month", "day": "per calendar day"}
THRESHOLD_LABELS = {"budget": "Budget in USD", "success_rate": "Success rate below (a fraction, e.g. 0.8)",
                    "failed_runs": "Failed runs in a day above"}  # fmt: skip
PROBLEMS = (InvalidRule, Forbidden, NotVisible, AlertRuleError)  # what a save may refuse, in words for the person

Save = Callable[[RuleDraft], Awaitable[None]]  # stores the draft, or raises one of PROBLEMS


def open_rule_form(slot: ui.element, identity: Identity, rule: RuleView | None, save: Save) -> None:
    """Open the dialog in `slot` (replacing any earlier one), filled from `rule` when editing."""
    slot.clear()
    with slot, ui.dialog() as dialog, ui.card().classes("w-96 gap-2").props("data-testid=rule-form"):
        ui.label(f"Edit {rule.name}" if rule else "New alert rule").classes("text-h6")
        name = ui.input("Name", value=rule.name if rule else "").classes("w-full").mark("rule-name")
        kind = ui.select(KINDS, label="Kind", value=rule.kind if rule else "budget").classes("w-full").mark("rule-kind")
        threshold = ui.number(THRESHOLD_LABELS[kind.value], value=rule.threshold if rule else None)
        threshold.classes("w-full").mark("rule-threshold")
        kind.on_value_change(lambda e: threshold.props(f'label="{THRESHOLD_LABELS.get(e.value, "Threshold")}"'))
        budget_period = rule.period if rule and rule.kind == "budget" else "month"
        period = ui.select(PERIODS, label="Period (UTC)", value=budget_period).classes("w-full").mark("rule-period")
        period.bind_visibility_from(kind, "value", backward=lambda k: k == "budget")
        runs = ui.number("At least this many runs in the 7 days", precision=0,
                         value=rule.min_runs if rule and rule.kind == "success_rate" else 50)  # fmt: skip
        runs.classes("w-full").mark("rule-min-runs").bind_visibility_from(kind, "value", lambda k: k == "success_rate")
        team, user = _scope_fields(identity, rule)
        shown = f"leave blank to keep {rule.webhook}" if rule else "https://hooks.slack.com/services/…"
        webhook = ui.input("Webhook URL", placeholder=shown).classes("w-full").mark("rule-webhook")
        problem = ui.label().classes("text-negative").props("role=alert data-testid=rule-error").mark("rule-error")

        async def submit() -> None:
            problem.text = ""
            try:
                draft = RuleDraft(name.value or "", kind.value, _number(threshold.value, THRESHOLD_LABELS[kind.value]),
                                  period.value, int(runs.value or 0), team.value or None,
                                  (user.value or None) if user is not None else None, (webhook.value or "").strip() or None)  # fmt: skip
                await save(draft)
            except PROBLEMS as exc:
                problem.text = str(exc)
                ui.notify(f"Not saved: {exc}", type="negative")
                return
            dialog.close()

        with ui.row().classes("w-full justify-end"):
            ui.button("Cancel", on_click=dialog.close).props("flat").mark("rule-cancel")
            ui.button("Save", on_click=submit).mark("rule-save")
    dialog.open()


def _scope_fields(identity: Identity, rule: RuleView | None) -> tuple[ui.input | ui.select, ui.input | None]:
    """Admins: a team or a person (both blank: the whole org); managers: one of their own teams, nothing else."""
    if identity.role != "org_admin":
        teams = list(identity.teams)
        chosen = rule.team_id if rule and rule.team_id in teams else (teams[0] if teams else None)
        return ui.select(teams, label="Team", value=chosen).classes("w-full").mark("rule-team"), None
    team = ui.input("Team (blank: the whole org)", value=(rule.team_id or "") if rule else "").mark("rule-team")
    user = ui.input("Or a person (user id)", value=(rule.user_id or "") if rule else "").mark("rule-user")
    return team.classes("w-full"), user.classes("w-full")


def _number(value: float | None, label: str) -> float:
    if value is None:
        raise InvalidRule(f"give a number: {label}")
    return float(value)
