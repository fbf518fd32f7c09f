"""Agent rules in PostgreSQL: the table every server and `agentdash agent-rules --database-url` share."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import psycopg

from agentdash.storage.agent_rules import AgentRule, AgentRuleError, AgentRuleStore, RuleKind
from agentdash.storage.postgres.connections import connect, store_connection
from agentdash.storage.postgres.errors import translated
from agentdash.storage.queries import load_queries

SQL = load_queries("postgres_agent_rules", pyformat=True)


class PostgresAgentRuleStore(AgentRuleStore):
    """One autocommit connection behind a lock; each call is one statement or transaction, seen at the next reload."""

    @translated
    def __init__(self, url: str) -> None:
        self._url = url
        self._db = store_connection(url, SQL.statements("schema"))
        self._lock = threading.Lock()

    @translated
    def add(self, rule: AgentRule) -> tuple[AgentRule, bool]:
        now_us = time.time_ns() // 1000
        params = {"org_id": rule.org_id, "kind": rule.kind, "value": rule.value, "agent": rule.agent,
                  "created_us": now_us}  # fmt: skip
        with self._lock, self._connection().transaction():
            replaced = self._execute("exists", params).fetchone() is not None
            self._execute("add", params)
        return AgentRule(rule.org_id, rule.kind, rule.value, rule.agent, _utc(now_us)), replaced

    @translated
    def list_rules(self, org_id: str | None = None) -> list[AgentRule]:
        with self._lock:
            return [_rule(row) for row in self._execute("list_rules", {"org_id": org_id}).fetchall()]

    @translated
    def remove(self, org_id: str, kind: RuleKind, value: str) -> AgentRule:
        with self._lock:
            row = self._execute("remove", {"org_id": org_id, "kind": kind, "value": value}).fetchone()
        if row is None:
            raise AgentRuleError(f"org {org_id!r} has no {kind} rule {value!r}")
        return _rule(row)

    @translated
    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _execute(self, name: str, params: dict) -> psycopg.Cursor:
        return self._connection().execute(SQL.statement(name), params)

    def _connection(self) -> psycopg.Connection:
        # Opened again after it was lost: the server's reload a second later then works once the database is back.
        if self._db.broken or self._db.closed:
            self._db = connect(self._url, autocommit=True)
        return self._db


def _rule(row: tuple) -> AgentRule:
    org_id, kind, value, agent, created_us = row
    return AgentRule(org_id, kind, value, agent, _utc(created_us))


def _utc(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, tz=UTC)
