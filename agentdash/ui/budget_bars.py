"""A budget's progress bar with its straight-line forecast (alerts.budgets), on the Alerts page and the Cost page."""

from __future__ import annotations

from nicegui import ui

from agentdash.alerts.budgets import BudgetProgress
from agentdash.ui import format as fmt


def budget_bar(b: BudgetProgress) -> None:
    """Spent of budget as a bar, and the straight-line forecast for the period."""
    when = "this month" if b.rule.period == "month" else "today"
    # The raw figures ride along as attributes, so that a test compares numbers rather than rounded text.
    with (
        ui.column()
        .classes("w-full gap-1")
        .props(f"data-testid=budget data-rule={b.rule.id} data-spent={b.spent_usd!r} data-forecast={b.forecast_usd!r}")
    ):
        with ui.row().classes("w-full justify-between"):
            ui.label(f"{b.rule.name} ({b.rule.team_id or b.rule.user_id or 'whole org'})").classes("text-weight-bold")
            ui.label(f"{fmt.money(b.spent_usd)} of {fmt.money(b.rule.threshold)} {when}").props(
                "data-testid=budget-spent"
            )
        color = "negative" if b.share > 1 else "warning" if b.forecast_share > 1 else "positive"
        ui.linear_progress(value=min(b.share, 1.0), show_value=False, color=color).props(
            "size=12px rounded data-testid=budget-bar"
        )
        ui.label(f"forecast at this pace: {fmt.money(b.forecast_usd)} ({b.forecast_share:.0%} of the budget)").classes(
            "text-caption text-grey"
        ).props("data-testid=budget-forecast")
