"""Alert rules as people write them (CLI, read API, dashboard): checked, described, listed. Storage: storage/alerts.py."""

from __future__ import annotations

import dataclasses
import math
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from agentdash.storage import ALERT_KINDS, AlertRule

MAX_TEXT = 128  # like the events' ids
MAX_MIN_RUNS = 1_000_000_000  # fits PostgreSQL's INTEGER column; a larger number failed the insert with a 500
BUDGET_PERIODS = ("month", "day")


class InvalidRule(ValueError):
    """A rule that cannot be stored as given; the message says which field and why."""


def new_rule_id() -> str:
    return secrets.token_hex(6)


def checked_rule(rule: AlertRule) -> AlertRule:
    """The rule, normalised (each kind's own period, blank scopes as None), or InvalidRule naming what is wrong."""
    for label, value in (("org id", rule.org_id), ("name", rule.name)):
        if not value.strip() or len(value) > MAX_TEXT:
            raise InvalidRule(f"the {label} must be 1 to {MAX_TEXT} characters, got {value!r}")
    texts = (("org id", rule.org_id), ("name", rule.name), ("team", rule.team_id), ("user", rule.user_id),
             ("webhook", rule.webhook_url))  # fmt: skip
    for label, text in texts:
        if text and "\0" in text:  # no one means it, and PostgreSQL text cannot hold it (the insert failed: a 500)
            raise InvalidRule(f"the {label} contains a NUL character (\\u0000)")
    if rule.kind not in ALERT_KINDS:
        raise InvalidRule(f"kind must be one of {', '.join(ALERT_KINDS)}, got {rule.kind!r}")
    team_id, user_id = rule.team_id or None, rule.user_id or None
    if team_id and user_id:
        raise InvalidRule("a rule is for the org, a team or a person: give at most one of team and user")
    for label, scope in (("team", team_id), ("user", user_id)):
        if scope is not None and len(scope) > MAX_TEXT:
            raise InvalidRule(f"the {label} must be at most {MAX_TEXT} characters")
    threshold = float(rule.threshold)
    if not math.isfinite(threshold):
        raise InvalidRule(f"the threshold must be a number, got {rule.threshold!r}")
    period, min_runs = rule.period, int(rule.min_runs)
    if rule.kind == "budget":
        if threshold <= 0:
            raise InvalidRule(f"a budget must be above 0 USD, got {threshold:g}")
        if period not in BUDGET_PERIODS:
            raise InvalidRule(f"a budget is per month or per day, got {period!r}")
        min_runs = 0
    elif rule.kind == "success_rate":
        if not 0 < threshold <= 1:
            raise InvalidRule(f"a success rate is a fraction above 0 and at most 1, got {threshold:g}")
        if min_runs < 1:
            raise InvalidRule(f"a success-rate rule needs at least 1 run (--min-runs), got {min_runs}")
        if min_runs > MAX_MIN_RUNS:
            raise InvalidRule(f"a success-rate rule needs at most {MAX_MIN_RUNS:,} runs (--min-runs), got {min_runs}")
        period = "7d"
    else:
        if threshold < 0:
            raise InvalidRule(f"failed runs above a count of 0 or more, got {threshold:g}")
        period, min_runs = "day", 0
    return dataclasses.replace(rule, name=rule.name.strip(), threshold=threshold, period=period, min_runs=min_runs,
                               team_id=team_id, user_id=user_id, webhook_url=checked_webhook(rule.webhook_url))  # fmt: skip


@dataclass(frozen=True)
class RuleChanges:
    """What an edit changes of a rule (`agentdash alerts edit`); None keeps the field. A kind comes with its
    threshold; a team or a person replaces the rule's scope ("" for the whole org)."""

    name: str | None = None
    kind: str | None = None
    threshold: float | None = None
    period: str | None = None
    min_runs: int | None = None
    team_id: str | None = None
    user_id: str | None = None
    webhook_url: str | None = None

    @property
    def empty(self) -> bool:
        return all(value is None for value in dataclasses.astuple(self))


def edited_rule(rule: AlertRule, changes: RuleChanges) -> AlertRule:
    """The rule with the given fields changed, checked as a new one would be (InvalidRule names what is wrong)."""
    if changes.kind == "budget" and rule.kind != "budget" and changes.period is None:
        raise InvalidRule("a rule that becomes a budget needs its period: per month or per day")
    team_id, user_id = rule.team_id, rule.user_id
    if changes.team_id is not None or changes.user_id is not None:  # a new scope: whatever is not given goes
        team_id, user_id = changes.team_id, changes.user_id
    kept = {f: getattr(changes, f) for f in ("name", "kind", "threshold", "period", "min_runs", "webhook_url")
            if getattr(changes, f) is not None}  # fmt: skip
    return checked_rule(dataclasses.replace(rule, team_id=team_id, user_id=user_id, **kept))


def checked_webhook(url: str) -> str:
    """An http(s) URL with a host; the notifier POSTs JSON to it."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRule(f"the webhook must be an http:// or https:// URL, got {shown_webhook(url)!r}")
    if len(url) > 2048:
        raise InvalidRule("the webhook URL must be at most 2048 characters")
    return url


def shown_webhook(url: str) -> str:
    """A webhook URL as lists and logs show it: scheme and host only, since the path of a Slack URL is its secret."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(invalid URL)"
    return f"{parts.scheme}://{parts.hostname}/…" if parts.hostname else "(invalid URL)"


def scope_label(rule: AlertRule) -> str:
    return f"team {rule.team_id}" if rule.team_id else f"user {rule.user_id}" if rule.user_id else f"org {rule.org_id}"


def condition(rule: AlertRule) -> str:
    """What fires the rule, in words: "cost this month above $100.00"."""
    if rule.kind == "budget":
        return f"cost {'this month' if rule.period == 'month' else 'today'} above ${rule.threshold:,.2f}"
    if rule.kind == "success_rate":
        return f"7-day success rate below {rule.threshold:.0%} (at least {rule.min_runs} runs)"
    return f"failed runs today above {rule.threshold:g}"


def rule_table(rules: list[AlertRule]) -> str:
    """`alerts list` output: one aligned row per rule; webhooks shown by host only."""
    header = ("ID", "ORG", "NAME", "FOR", "WHEN", "WEBHOOK")
    rows = [header] + [(r.id, r.org_id, r.name, scope_label(r), condition(r), shown_webhook(r.webhook_url))
                       for r in rules]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)
