"""The agent-rule store interface: an org's own rules for telling an agent's pull requests (.ai/PR_OUTCOMES.md),
beside the built-in ones. One backend per module."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

RuleKind = Literal["branch_prefix", "author", "body_pattern"]
RULE_KINDS: tuple[RuleKind, ...] = ("branch_prefix", "author", "body_pattern")


class AgentRuleError(ValueError):
    """A rule operation that cannot be done: removing a rule the org does not have."""


@dataclass(frozen=True)
class AgentRule:
    """One org's rule: a PR whose head branch starts with `value` (branch_prefix), whose author is `value` (author,
    case-insensitive) or whose body matches the regex `value` (body_pattern) is `agent`'s work."""

    org_id: str
    kind: RuleKind
    value: str
    agent: str
    created_at: datetime | None = None  # UTC, when stored; None for a rule not stored yet


class AgentRuleStore(ABC):
    """Agent rules (embedded/agent_rules.py, postgres/agent_rules.py).

    A failure of the database raises StorageError (storage.base), never a driver's exception.
    """

    @abstractmethod
    def add(self, rule: AgentRule) -> tuple[AgentRule, bool]:
        """Store a rule; one with the same org, kind and value is replaced (True when it was), so its agent can change."""

    @abstractmethod
    def list_rules(self, org_id: str | None = None) -> list[AgentRule]:
        """The rules of one org, or of every org, ordered by org, kind and value."""

    @abstractmethod
    def remove(self, org_id: str, kind: RuleKind, value: str) -> AgentRule:
        """Remove a rule. Raises AgentRuleError when the org has no such rule."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""
