"""Which agent's work a pull request is (.ai/PR_OUTCOMES.md): the built-in marks, an org's own rules on top, and the
server's in-memory copy of those rules. Body and author marks are read as a GitHub delivery arrives; branch prefixes
when metrics are queried, so a new prefix counts every PR at once."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

from agentdash.storage import RULE_KINDS, AgentRule, AgentRuleStore, RuleKind

log = logging.getLogger(__name__)
REFRESH_S = 1.0  # the rules are a handful of rows: reloaded whole, at most once a second
AGENT_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MAX_RULE_LENGTH = 255


class InvalidRule(ValueError):
    """A rule agentdash cannot use: an empty or too long value, a body pattern that is no regex, a bad agent name."""


@dataclass(frozen=True)
class AgentMark:
    """What marks a PR as one agent's work: any body pattern (regex, case-insensitive, per line), author login
    (exact, case-insensitive) or head-branch prefix."""

    agent: str
    body_patterns: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    branch_prefixes: tuple[str, ...] = ()


# Every org's rules; the first that matches names the agent. Documented in README "Pull requests from GitHub".
AGENT_MARKS = (
    # Claude Code ends PR bodies with "🤖 Generated with [Claude Code](https://claude.com/claude-code)" and commit
    # messages (which GitHub copies into a one-commit PR's body) with "Co-Authored-By: Claude <noreply@anthropic.com>".
    AgentMark(
        "claude-code",
        body_patterns=(r"generated with \[?claude code\b", r"^\s*co-authored-by:\s*claude\b"),
        branch_prefixes=("claude/",),
    ),  # fmt: skip
    # The Copilot coding agent opens PRs as the bot user `Copilot` (REST and webhooks), whose app is
    # `copilot-swe-agent[bot]`, on `copilot/...` branches.
    AgentMark("copilot", authors=("Copilot", "copilot-swe-agent[bot]"), branch_prefixes=("copilot/",)),
    AgentMark("codex", branch_prefixes=("codex/",)),
)


class Attribution:
    """One org's marks, compiled: its own rules first (they are the more specific), then the built-in ones."""

    def __init__(self, marks: Iterable[AgentMark] = AGENT_MARKS) -> None:
        self.marks = tuple(marks)
        self._compiled = tuple(
            (mark, tuple(re.compile(p, re.IGNORECASE | re.MULTILINE) for p in mark.body_patterns),
             frozenset(a.lower() for a in mark.authors))
            for mark in self.marks
        )  # fmt: skip

    @classmethod
    def of(cls, rules: Iterable[AgentRule]) -> Attribution:
        return cls((*marks_of(rules), *AGENT_MARKS))

    @cached_property
    def branch_prefixes(self) -> tuple[str, ...]:
        """Every prefix that makes a head branch an agent's, for the metrics' `$prefixes`."""
        return tuple(dict.fromkeys(p for mark in self.marks for p in mark.branch_prefixes))

    def agent_mark(self, body: str, author: str | None, head_branch: str) -> str | None:
        """The agent whose mark the PR carries (first matching mark), or None."""
        login = (author or "").lower()
        for mark, patterns, authors in self._compiled:
            if (
                login in authors
                or head_branch.startswith(mark.branch_prefixes)
                or any(p.search(body) for p in patterns)
            ):
                return mark.agent
        return None


BUILT_IN = Attribution()


def marks_of(rules: Iterable[AgentRule]) -> list[AgentMark]:
    """An org's rules as one mark per agent, in the order the agents first appear."""
    by_agent: dict[str, dict[RuleKind, list[str]]] = {}
    for rule in rules:
        by_agent.setdefault(rule.agent, {kind: [] for kind in RULE_KINDS})[rule.kind].append(rule.value)
    return [AgentMark(agent, tuple(kinds["body_pattern"]), tuple(kinds["author"]), tuple(kinds["branch_prefix"]))
            for agent, kinds in by_agent.items()]  # fmt: skip


def checked_rule(org_id: str, kind: RuleKind, value: str, agent: str) -> AgentRule:
    """The rule as stored (authors in lower case), or InvalidRule naming what is wrong with it."""
    if not AGENT_NAME.fullmatch(agent):
        raise InvalidRule(f"agent must be 1–64 lower-case letters, digits, '.', '_' or '-' (like claude-code), "
                          f"got {agent!r}")  # fmt: skip
    if not value.strip() or len(value) > MAX_RULE_LENGTH:
        raise InvalidRule(f"a {kind} must be 1–{MAX_RULE_LENGTH} characters and not blank")
    if kind == "body_pattern":
        try:
            re.compile(value)
        except re.error as exc:
            raise InvalidRule(f"body pattern {value!r} is not a regular expression: {exc}") from None
    return AgentRule(org_id, kind, value.lower() if kind == "author" else value, agent)


class OrgAttribution:
    """Every org's Attribution in memory, from the rule store: reloaded whole at most once a second, so a rule added
    with `agentdash agent-rules add` counts within a second, and a failing reload keeps the last good copy."""

    def __init__(self, store: AgentRuleStore | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._store, self._clock = store, clock
        self._by_org: dict[str, Attribution] = {}
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def of(self, org_id: str) -> Attribution:
        """The org's attribution: its own rules, then the built-in ones."""
        if self._store is not None and self._clock() - self._loaded_at >= REFRESH_S:
            self._reload()
        return self._by_org.get(org_id, BUILT_IN)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def _reload(self) -> None:
        assert self._store is not None
        with self._lock:  # page loads and API calls come from several threads: one reload at a time
            if self._clock() - self._loaded_at < REFRESH_S:
                return
            self._loaded_at = self._clock()
            try:
                rules = self._store.list_rules()
            except Exception:  # keep the last good copy; the next second tries again
                log.exception("could not reload the agent rules")
                return
            by_org: dict[str, list[AgentRule]] = {}
            for rule in rules:
                by_org.setdefault(rule.org_id, []).append(rule)
            self._by_org = {org_id: Attribution.of(org_rules) for org_id, org_rules in by_org.items()}


def rule_table(rules: Iterable[AgentRule]) -> str:
    """The rules as `agentdash agent-rules list` prints them, then the built-in marks every org has."""
    lines = [f"{'ORG':<20} {'KIND':<13} {'VALUE':<40} {'AGENT':<14} CREATED (UTC)"]
    for rule in rules:
        created = rule.created_at.strftime("%Y-%m-%d %H:%M") if rule.created_at else ""
        lines.append(f"{rule.org_id:<20} {rule.kind:<13} {rule.value:<40} {rule.agent:<14} {created}")
    if len(lines) == 1:
        lines = ["no rules of an org's own yet (agentdash agent-rules add --org ORG --agent NAME --branch-prefix P)"]
    lines.append("built in, for every org:")
    for mark in AGENT_MARKS:
        for kind, values in (("branch_prefix", mark.branch_prefixes), ("author", mark.authors),
                             ("body_pattern", mark.body_patterns)):  # fmt: skip
            lines.extend(f"{'*':<20} {kind:<13} {value:<40} {mark.agent}" for value in values)
    return "\n".join(lines)
