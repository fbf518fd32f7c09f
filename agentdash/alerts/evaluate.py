"""Evaluation of the rules after every fold and at period boundaries (SPEC §8).

Each rule's figure is the metrics' own (metrics.org_metrics, as the API and the dashboard compute it) over just its
period and scope, so an evaluation costs the same after a year of history as after a day. The store compares with the
stored states and writes the changes and the checkpoint in one transaction (AlertStore.record).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from agentdash.alerts.rules import scope_label
from agentdash.metrics import MetricsQuery, org_metrics
from agentdash.storage import AlertEvent, AlertRule, AlertStore, Observation, Storage

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def period(rule: AlertRule, today: date) -> tuple[date, date, str]:
    """The days a rule looks at on `today` (UTC) and the key of that period."""
    if rule.kind == "budget" and rule.period == "month":
        return today.replace(day=1), today, f"{today:%Y-%m}"
    if rule.kind == "success_rate":
        return today - timedelta(days=6), today, today.isoformat()
    return today, today, today.isoformat()


def observe(storage: Storage, rule: AlertRule, today: date) -> Observation:
    """Whether the rule's condition holds on `today`, its value, and the sentence a notification says."""
    first, last, key = period(rule, today)
    m = org_metrics(storage, MetricsQuery(rule.org_id, first, last, team_id=rule.team_id, user_id=rule.user_id))
    who = scope_label(rule)
    if rule.kind == "budget":
        spent, when = m.cost_usd, "this month" if rule.period == "month" else "today"
        fires = spent > rule.threshold
        text = (f":rotating_light: {rule.name}: {who} spent ${spent:,.2f} {when} ({key}), over its "
                f"${rule.threshold:,.2f} budget" if fires else
                f":white_check_mark: {rule.name}: {who} is within its ${rule.threshold:,.2f} budget again "
                f"(${spent:,.2f} {when}, {key})")  # fmt: skip
        return Observation(rule, fires, spent, key, text)
    if rule.kind == "success_rate":
        rate, runs = m.success_rate, m.runs
        fires = rate is not None and runs >= rule.min_runs and rate < rule.threshold
        shown = "no finished runs" if rate is None else f"{rate:.1%}"
        text = (f":rotating_light: {rule.name}: {who}'s success rate over the 7 days to {key} is {shown} "
                f"({runs} runs), below {rule.threshold:.0%}" if fires else
                f":white_check_mark: {rule.name}: {who}'s 7-day success rate is {shown} ({runs} runs), no longer "
                f"below {rule.threshold:.0%} with at least {rule.min_runs} runs")  # fmt: skip
        return Observation(rule, fires, rate, key, text)
    failed = m.runs_failed
    fires = failed > rule.threshold
    text = (f":rotating_light: {rule.name}: {who} has {failed} failed runs on {key}, above {rule.threshold:g}"
            if fires else f":white_check_mark: {rule.name}: {who}'s failed runs on {key} are {failed}, "
            f"not above {rule.threshold:g}")  # fmt: skip
    return Observation(rule, fires, float(failed), key, text)


class Evaluator:
    """Evaluates every rule when the read models moved on, the rules changed, or a new UTC day began (which also
    starts a month: a budget's period resets). `on_change` hears the new history entries (the notifier wakes)."""

    def __init__(self, storage: Storage, alerts: AlertStore, clock: Clock = utc_now,
                 on_change: Callable[[list[AlertEvent]], None] | None = None) -> None:  # fmt: skip
        self.storage = storage
        self.alerts = alerts
        self.clock = clock
        self.on_change = on_change
        self._rules_seen: tuple | None = None

    def run(self) -> list[AlertEvent]:
        """Evaluate when something could have changed; returns the changes of state it recorded."""
        seq = self.storage.fold_state().seq
        now = self.clock()
        rules = self.alerts.list_rules()
        seen = tuple((r.id, r.updated_at) for r in rules)
        checkpoint = self.alerts.checkpoint()
        if (checkpoint is not None and checkpoint[0] == seq and seen == self._rules_seen
                and _day(checkpoint[1]) == now.date()):  # fmt: skip
            return []
        observations = [observe(self.storage, rule, now.date()) for rule in rules]
        events = self.alerts.record(observations, seq, int(now.timestamp() * 1_000_000))
        self._rules_seen = seen
        for event in events:
            log.info("alert %s %s: %s", event.rule_id, event.state, event.text)
        if events and self.on_change is not None:
            self.on_change(events)
        return events


def _day(us: int) -> date:
    return datetime.fromtimestamp(us / 1e6, tz=UTC).date()
