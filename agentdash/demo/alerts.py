"""The demo's alert rules: a monthly budget close to its limit, and a reliability rule that the bad model week fired
(the weeks around it are replayed day by day through the evaluator's own observation and the store's record)."""

from __future__ import annotations

import datetime as dt
import math

from agentdash.alerts import checked_rule, new_rule_id
from agentdash.alerts.evaluate import observe
from agentdash.demo.generator import GeneratorConfig, incidents
from agentdash.metrics import MetricsQuery, org_metrics
from agentdash.storage import AlertRule, AlertStore, Storage

# Nothing listens here: the demo's notifications fail and the history says so (change it with the read API).
DEMO_WEBHOOK = "http://127.0.0.1:9/agentdash-demo-webhook"


def add_demo_rules(storage: Storage, store: AlertStore, config: GeneratorConfig, now: dt.datetime) -> list[AlertRule]:
    """Add the demo's rules and replay the bad model week through the evaluator; returns the rules."""
    org, today = config.org_id, now.date()
    spent = org_metrics(storage, MetricsQuery(org, today.replace(day=1), today)).cost_usd
    budget = max(10.0, math.ceil(spent / 0.92 / 10) * 10)  # about 92 % used: near the limit, not over it
    daily = max(5.0, math.ceil(spent / today.day * 2 / 5) * 5)  # twice a typical day of this month
    days = incidents(config).bad_model_days
    # Just above the worst 7 days of the bad model week: it fires then and resolves when the week is over.
    rates = [org_metrics(storage, MetricsQuery(org, day - dt.timedelta(days=6), day)).success_rate
             for day in (days[0] + dt.timedelta(days=i) for i in range(7)) if day <= today]  # fmt: skip
    threshold = min(0.99, round(min((r for r in rates if r is not None), default=0.5) + 0.01, 2))
    rules = [
        AlertRule(new_rule_id(), org, "monthly budget", "budget", budget, "month", DEMO_WEBHOOK),
        AlertRule(new_rule_id(), org, "reliability", "success_rate", threshold, "7d", DEMO_WEBHOOK, min_runs=50),
        AlertRule(new_rule_id(), org, "daily spend", "budget", daily, "day", DEMO_WEBHOOK),
    ]
    rules = [checked_rule(rule) for rule in rules]
    # The reliability rule is replayed over the weeks around the bad model before the rules are stored, so that the
    # server's own evaluator (which sees stored rules only) cannot interleave with the past; it takes over from the
    # replay's last state. The budgets start today: their amounts are this month's.
    reliability, day, seq = rules[1], days[0] - dt.timedelta(days=1), storage.fold_state().seq
    while day <= min(days[1] + dt.timedelta(days=8), today):
        at = dt.datetime.combine(day, dt.time(23, 0), dt.UTC)
        store.record([observe(storage, reliability, day)], seq, int(at.timestamp() * 1_000_000))
        day += dt.timedelta(days=1)
    store.record([observe(storage, rule, today) for rule in rules], seq, int(now.timestamp() * 1_000_000))
    return [store.add(rule) for rule in rules]
