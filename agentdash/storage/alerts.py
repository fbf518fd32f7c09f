"""The alert store interface: an org's alert rules (SPEC §8: budgets and thresholds). One backend per module."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

AlertKind = Literal["budget", "success_rate", "failed_runs"]
ALERT_KINDS: tuple[AlertKind, ...] = ("budget", "success_rate", "failed_runs")
AlertPeriod = Literal["month", "day", "7d"]


class AlertRuleError(ValueError):
    """A rule operation that cannot be done: editing or removing a rule that does not exist."""


@dataclass(frozen=True)
class AlertRule:
    """One rule of one org, for the org, a team (`team_id`) or a person (`user_id`).

    - `budget`: cost_usd of the calendar `period` ("month" or "day", UTC) above `threshold` USD;
    - `success_rate`: the trailing 7 days' success rate below `threshold` (0..1) with at least `min_runs` runs;
    - `failed_runs`: failed runs of the day (UTC) above `threshold`.
    """

    id: str  # 12 hex characters
    org_id: str
    name: str
    kind: AlertKind
    threshold: float
    period: AlertPeriod
    webhook_url: str = field(repr=False)  # Slack's webhook URLs are credentials: kept out of reprs and logs
    min_runs: int = 0
    team_id: str | None = None
    user_id: str | None = None
    created_at: datetime | None = None  # UTC, set when stored
    updated_at: datetime | None = None


AlertState = Literal["firing", "resolved"]
Delivery = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True)
class Observation:
    """What one evaluation saw of a rule: whether its condition holds now, the value, and the period it is about."""

    rule: AlertRule
    firing: bool
    value: float | None
    period_key: str  # "2026-12" (a month's budget), "2026-12-02" (a day's), the 7 days' last day
    text: str  # the notification's sentence, should the state change


@dataclass(frozen=True)
class AlertEvent:
    """One change of a rule's state, as the history keeps it (with the rule's fields of that moment), and how its
    notification went."""

    id: int
    rule_id: str
    org_id: str
    rule_name: str
    kind: AlertKind
    team_id: str | None
    user_id: str | None
    state: AlertState
    value: float | None
    threshold: float
    period_key: str
    at: datetime
    text: str
    webhook_url: str = field(repr=False)
    delivery: Delivery = "pending"
    attempts: int = 0
    last_status: int | None = None
    last_error: str = ""
    delivered_at: datetime | None = None


class AlertStore(ABC):
    """Alert rules (embedded/alerts.py, postgres/alerts.py).

    A failure of the database raises StorageError (storage.base), never a driver's exception.
    """

    @abstractmethod
    def add(self, rule: AlertRule) -> AlertRule:
        """Store a new rule (its id must be new); returns it with its times."""

    @abstractmethod
    def update(self, rule: AlertRule) -> AlertRule:
        """Replace the rule of the same id and org. Raises AlertRuleError when there is none."""

    @abstractmethod
    def get(self, rule_id: str) -> AlertRule | None:
        """The rule of that id, or None."""

    @abstractmethod
    def list_rules(self, org_id: str | None = None) -> list[AlertRule]:
        """The rules of one org, or of every org, ordered by org, name and id."""

    @abstractmethod
    def remove(self, rule_id: str) -> AlertRule:
        """Remove a rule. Raises AlertRuleError when there is none."""

    @abstractmethod
    def firing(self) -> dict[str, bool]:
        """Each evaluated rule's id and whether it fires."""

    @abstractmethod
    def record(self, observations: list[Observation], seq: int, now_us: int) -> list[AlertEvent]:
        """In one transaction: every observation whose firing differs from the rule's stored state becomes a new
        state and a history entry (pending delivery), and the checkpoint becomes (seq, now_us). Returns the entries.
        A rule never evaluated before that does not fire records nothing."""

    @abstractmethod
    def checkpoint(self) -> tuple[int, int] | None:
        """(log seq, µs) of the last recorded evaluation, or None before the first."""

    @abstractmethod
    def history(self, org_id: str | None = None, limit: int = 1000) -> list[AlertEvent]:
        """The newest entries first, of one org or every org."""

    @abstractmethod
    def claim_due(self, now_us: int, lease_us: int, limit: int = 50) -> list[AlertEvent]:
        """Pending entries whose next attempt is due, oldest first; each is leased (not due again) for lease_us, so
        that two notifiers (workers) never send one at once and one that dies mid-send leaves it due again."""

    @abstractmethod
    def mark_delivery(self, event_id: int, delivery: Delivery, next_attempt_us: int, status: int | None, error: str,
                      delivered_us: int | None) -> None:  # fmt: skip
        """Record one attempt: delivered, failed for good, or pending with its next attempt."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""


def rule_params(rule: AlertRule, created_us: int, updated_us: int) -> dict:
    """A rule as the named statements' parameters (both backends)."""
    return {"id": rule.id, "org_id": rule.org_id, "name": rule.name, "kind": rule.kind, "threshold": rule.threshold,
            "period": rule.period, "min_runs": rule.min_runs, "team_id": rule.team_id, "user_id": rule.user_id,
            "webhook_url": rule.webhook_url, "created_us": created_us, "updated_us": updated_us}  # fmt: skip


def stored_rule(row: tuple) -> AlertRule:
    """A row of the statements' column list (both backends) as a rule."""
    rule_id, org_id, name, kind, threshold, period, webhook_url, min_runs, team_id, user_id, created, updated = row
    return AlertRule(rule_id, org_id, name, kind, float(threshold), period, webhook_url, int(min_runs), team_id,
                     user_id, utc(created), utc(updated))  # fmt: skip


def utc(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, tz=UTC)


def state_changes(observations: list[Observation], firing: dict[str, bool], now_us: int) -> list[dict]:
    """The observations that change their rule's state (both backends), as the parameters of save_state and
    add_history."""
    changes = []
    for o in observations:
        if firing.get(o.rule.id, False) == o.firing:
            continue
        r = o.rule
        changes.append({"rule_id": r.id, "org_id": r.org_id, "rule_name": r.name, "kind": r.kind,
                        "team_id": r.team_id, "user_id": r.user_id, "state": "firing" if o.firing else "resolved",
                        "firing": o.firing, "value": o.value, "threshold": r.threshold, "period_key": o.period_key,
                        "at_us": now_us, "changed_us": now_us, "text": o.text, "webhook_url": r.webhook_url})  # fmt: skip
    return changes


def stored_event(row: tuple) -> AlertEvent:
    """A row of the history statements' column list (both backends) as an entry."""
    (event_id, rule_id, org_id, name, kind, team_id, user_id, state, value, threshold, period_key, at_us, text, url,
     delivery, attempts, last_status, last_error, delivered_us) = row  # fmt: skip
    return AlertEvent(int(event_id), rule_id, org_id, name, kind, team_id, user_id, state,
                      None if value is None else float(value), float(threshold), period_key, utc(at_us), text, url,
                      delivery, int(attempts), last_status, last_error,
                      None if delivered_us is None else utc(delivered_us))  # fmt: skip
