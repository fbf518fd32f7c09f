"""What the read API and the dashboard show of alerts: rules with their state, history rows, firing alerts."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Literal

import msgspec

from agentdash.alerts.rules import condition, scope_label, shown_webhook
from agentdash.storage import AlertEvent, AlertRule, AlertStore


class RuleView(msgspec.Struct):
    """A rule as listed: its webhook by host only (a Slack URL's path is its secret)."""

    id: str
    org_id: str
    name: str
    kind: str
    threshold: float
    period: str
    min_runs: int
    team_id: str | None
    user_id: str | None
    webhook: str
    condition: str
    scope: str
    state: Literal["firing", "ok"]
    created_at: datetime | None
    updated_at: datetime | None


class HistoryView(msgspec.Struct):
    """A change of state and how its notification went."""

    id: int
    rule_id: str
    rule_name: str
    kind: str
    team_id: str | None
    user_id: str | None
    state: str
    value: float | None
    threshold: float
    period: str
    at: datetime
    text: str
    delivery: str
    attempts: int
    last_status: int | None
    last_error: str
    delivered_at: datetime | None


def rule_view(rule: AlertRule, firing: dict[str, bool]) -> RuleView:
    return RuleView(rule.id, rule.org_id, rule.name, rule.kind, rule.threshold, rule.period, rule.min_runs,
                    rule.team_id, rule.user_id, shown_webhook(rule.webhook_url), condition(rule), scope_label(rule),
                    "firing" if firing.get(rule.id) else "ok", rule.created_at, rule.updated_at)  # fmt: skip


def history_view(e: AlertEvent) -> HistoryView:
    return HistoryView(e.id, e.rule_id, e.rule_name, e.kind, e.team_id, e.user_id, e.state, e.value, e.threshold,
                       e.period_key, e.at, e.text, e.delivery, e.attempts, e.last_status, e.last_error,
                       e.delivered_at)  # fmt: skip


HISTORY_COLUMNS = ("at", "rule_name", "state", "value", "threshold", "period", "team_id", "user_id", "delivery",
                   "attempts", "last_status", "text")  # fmt: skip


def history_csv(rows: list[HistoryView], safe=lambda text: text) -> str:
    """The history as CSV, newest first; `safe` neutralises text cells a spreadsheet would run."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HISTORY_COLUMNS)
    for row in rows:
        values = msgspec.to_builtins(row)
        writer.writerow([safe(v) if isinstance(v, str) and k not in ("at",) else v
                         for k, v in ((k, values[k]) for k in HISTORY_COLUMNS)])  # fmt: skip
    return out.getvalue()


def firing_now(store: AlertStore, org_id: str) -> list[AlertEvent]:
    """The latest entry of each existing rule of the org that fires now, newest first."""
    firing = store.firing()
    rules = {r.id for r in store.list_rules(org_id) if firing.get(r.id)}
    latest: dict[str, AlertEvent] = {}
    for event in store.history(org_id, limit=5000):  # newest first
        if event.rule_id in rules and event.rule_id not in latest and event.state == "firing":
            latest[event.rule_id] = event
    return list(latest.values())
