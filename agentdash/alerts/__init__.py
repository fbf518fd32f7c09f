"""Budgets and alerts (SPEC §8): rules, their evaluation after every fold, and the webhook notifications."""

from __future__ import annotations

from agentdash.alerts.rules import (
    InvalidRule,
    RuleChanges,
    checked_rule,
    checked_webhook,
    condition,
    edited_rule,
    new_rule_id,
    rule_table,
    scope_label,
    shown_webhook,
)

__all__ = ["InvalidRule", "RuleChanges", "checked_rule", "checked_webhook", "condition", "edited_rule", "new_rule_id",
           "rule_table", "scope_label", "shown_webhook"]  # fmt: skip
