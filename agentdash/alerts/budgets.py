"""A budget's progress: spent so far in its period and the straight-line forecast for the whole period."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta

from agentdash.alerts.evaluate import observe
from agentdash.storage import AlertRule, Storage


@dataclass(frozen=True)
class BudgetProgress:
    rule: AlertRule
    spent_usd: float
    forecast_usd: float  # spent / the period's elapsed share: where the period ends at this pace
    period_key: str

    @property
    def share(self) -> float:
        return self.spent_usd / self.rule.threshold

    @property
    def forecast_share(self) -> float:
        return self.forecast_usd / self.rule.threshold


def forecast(spent: float, now: datetime, per: str) -> float:
    """Straight line: the spend so far over the elapsed part of the UTC month (or day), times the whole."""
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if per == "month":
        start = start.replace(day=1)
        length = timedelta(days=calendar.monthrange(now.year, now.month)[1])
    else:
        length = timedelta(days=1)
    elapsed = max((now - start) / length, 1 / 24 / 31)  # at least an hour's share: no division by ~0 at midnight
    return spent / min(elapsed, 1.0)


def budget_progress(storage: Storage, rules: list[AlertRule], now: datetime) -> list[BudgetProgress]:
    """Each budget rule's progress on `now`'s UTC day (the evaluator's own figure)."""
    progress = []
    for rule in rules:
        if rule.kind != "budget":
            continue
        seen = observe(storage, rule, now.date())
        spent = seen.value or 0.0
        progress.append(BudgetProgress(rule, spent, forecast(spent, now, rule.period), seen.period_key))
    return progress
