"""Changing alert rules on someone's behalf (the read API and the dashboard): create, edit, delete and test, each under
the role rules of alerts.access and the checks of alerts.rules."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from agentdash.alerts.access import check_may_manage, visible_rules
from agentdash.alerts.notify import Delivery, post, test_payload
from agentdash.alerts.rules import InvalidRule, checked_rule, new_rule_id
from agentdash.auth import Identity, NotVisible
from agentdash.storage import AlertRule, AlertStore


@dataclass(frozen=True)
class RuleDraft:
    """A rule as a person gives it; `period` only matters for budgets. Editing: a None webhook_url keeps the rule's."""

    name: str
    kind: str
    threshold: float
    period: str | None = None
    min_runs: int = 0
    team_id: str | None = None
    user_id: str | None = None
    webhook_url: str | None = None


def _rule(org_id: str, draft: RuleDraft, rule_id: str, webhook_url: str) -> AlertRule:
    # kind and period are checked by checked_rule, which names a wrong one
    return checked_rule(AlertRule(rule_id, org_id, draft.name, draft.kind, draft.threshold,  # type: ignore[arg-type]
                                  draft.period or "day", webhook_url, draft.min_runs,  # type: ignore[arg-type]
                                  draft.team_id, draft.user_id))  # fmt: skip


def create_rule(store: AlertStore, identity: Identity, org_id: str, draft: RuleDraft) -> AlertRule:
    """Store a new rule the identity may manage; InvalidRule, Forbidden or NotVisible say why not."""
    if not draft.webhook_url:
        raise InvalidRule("a new rule needs a webhook_url")
    rule = _rule(org_id, draft, new_rule_id(), draft.webhook_url)
    check_may_manage(identity, org_id, rule)
    return store.add(rule)


def edit_rule(store: AlertStore, identity: Identity, org_id: str, rule_id: str, draft: RuleDraft) -> AlertRule:
    """Replace a rule by the draft (its webhook kept unless given); the identity must manage it before and after."""
    old = managed_rule(store, identity, org_id, rule_id)
    new = _rule(org_id, draft, rule_id, draft.webhook_url or old.webhook_url)
    check_may_manage(identity, org_id, new)  # a manager cannot move a rule out of their teams either
    return store.update(dataclasses.replace(new, created_at=old.created_at))


def delete_rule(store: AlertStore, identity: Identity, org_id: str, rule_id: str) -> AlertRule:
    """Remove a rule the identity may manage (its history stays)."""
    managed_rule(store, identity, org_id, rule_id)
    return store.remove(rule_id)


def send_test(store: AlertStore, identity: Identity, org_id: str, rule_id: str) -> Delivery:
    """POST a test notification to a rule's webhook now (blocking: callers run it off the event loop)."""
    rule = managed_rule(store, identity, org_id, rule_id)
    return post(rule.webhook_url, test_payload(rule))


def managed_rule(store: AlertStore, identity: Identity, org_id: str, rule_id: str) -> AlertRule:
    """The org's rule of that id if the identity may manage it; NotVisible when there is none, else Forbidden."""
    # No rule's id holds a NUL, and PostgreSQL could not even be asked for one.
    rule = store.get(rule_id) if "\0" not in rule_id else None
    if rule is None or rule.org_id != org_id:
        visible_rules(identity, org_id, [])  # another org: 404 for it; a member: 403, as for any rule
        raise NotVisible(f"no alert rule {rule_id!r}")
    check_may_manage(identity, org_id, rule)
    return rule
