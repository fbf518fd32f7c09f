"""Agent rules in SQLite: a small file of its own in the data dir, shared by the server and the CLI."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from agentdash.storage.agent_rules import AgentRule, AgentRuleError, AgentRuleStore, RuleKind
from agentdash.storage.embedded.errors import translated
from agentdash.storage.queries import load_queries

SQL = load_queries("sqlite_agent_rules")


class SqliteAgentRuleStore(AgentRuleStore):
    """One connection, no lock held between calls, so a server and `agentdash agent-rules` can share the file."""

    @translated
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        self._db.execute(SQL.statement("connect"))
        self._db.execute(SQL["schema"])
        self._lock = threading.Lock()

    @translated
    def add(self, rule: AgentRule) -> tuple[AgentRule, bool]:
        now_us = time.time_ns() // 1000
        params = {"org_id": rule.org_id, "kind": rule.kind, "value": rule.value, "agent": rule.agent,
                  "created_us": now_us}  # fmt: skip
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                replaced = self._db.execute(SQL["exists"], params).fetchone() is not None
                self._db.execute(SQL["add"], params)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return AgentRule(rule.org_id, rule.kind, rule.value, rule.agent, _utc(now_us)), replaced

    @translated
    def list_rules(self, org_id: str | None = None) -> list[AgentRule]:
        with self._lock:
            return [_rule(row) for row in self._db.execute(SQL["list_rules"], {"org_id": org_id})]

    @translated
    def remove(self, org_id: str, kind: RuleKind, value: str) -> AgentRule:
        with self._lock:
            row = self._db.execute(SQL["remove"], {"org_id": org_id, "kind": kind, "value": value}).fetchone()
        if row is None:
            raise AgentRuleError(f"org {org_id!r} has no {kind} rule {value!r}")
        return _rule(row)

    @translated
    def close(self) -> None:
        with self._lock:
            self._db.close()


def _rule(row: tuple) -> AgentRule:
    org_id, kind, value, agent, created_us = row
    return AgentRule(org_id, kind, value, agent, _utc(created_us))


def _utc(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, tz=UTC)
