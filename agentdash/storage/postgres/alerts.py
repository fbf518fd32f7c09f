"""Alert rules in PostgreSQL: the tables every server and `agentdash alerts --database-url` share."""

from __future__ import annotations

import dataclasses
import threading
import time

import psycopg

from agentdash.storage.alerts import (
    AlertEvent,
    AlertRule,
    AlertRuleError,
    AlertStore,
    Delivery,
    Observation,
    rule_params,
    state_changes,
    stored_event,
    stored_rule,
    utc,
)
from agentdash.storage.postgres.connections import connect, store_connection
from agentdash.storage.postgres.errors import translated
from agentdash.storage.queries import load_queries

SQL = load_queries("postgres_alerts", pyformat=True)


class PostgresAlertStore(AlertStore):
    """One autocommit connection behind a lock; each call is one statement or transaction."""

    @translated
    def __init__(self, url: str) -> None:
        self._url = url
        self._db = store_connection(url, SQL.statements("schema") + SQL.statements("state_schema"))
        self._lock = threading.Lock()

    @translated
    def add(self, rule: AlertRule) -> AlertRule:
        now_us = time.time_ns() // 1000
        with self._lock:
            self._execute("add", rule_params(rule, now_us, now_us))
        return dataclasses.replace(rule, created_at=utc(now_us), updated_at=utc(now_us))

    @translated
    def update(self, rule: AlertRule) -> AlertRule:
        with self._lock:
            row = self._execute("update", rule_params(rule, 0, time.time_ns() // 1000)).fetchone()
        if row is None:
            raise AlertRuleError(f"org {rule.org_id!r} has no alert rule {rule.id!r}")
        return stored_rule(row)

    @translated
    def get(self, rule_id: str) -> AlertRule | None:
        with self._lock:
            row = self._execute("get", {"id": rule_id}).fetchone()
        return stored_rule(row) if row else None

    @translated
    def list_rules(self, org_id: str | None = None) -> list[AlertRule]:
        with self._lock:
            return [stored_rule(row) for row in self._execute("list_rules", {"org_id": org_id}).fetchall()]

    @translated
    def remove(self, rule_id: str) -> AlertRule:
        with self._lock:
            row = self._execute("remove", {"id": rule_id}).fetchone()
        if row is None:
            raise AlertRuleError(f"no alert rule {rule_id!r}")
        return stored_rule(row)

    @translated
    def firing(self) -> dict[str, bool]:
        with self._lock:
            return {row[0]: bool(row[1]) for row in self._execute("states", {}).fetchall()}

    @translated
    def record(self, observations: list[Observation], seq: int, now_us: int) -> list[AlertEvent]:
        with self._lock, self._connection().transaction():
            self._execute("record_lock", {})  # workers record one after another, each against the last one's states
            firing = {row[0]: bool(row[1]) for row in self._execute("states", {}).fetchall()}
            ids = []
            for change in state_changes(observations, firing, now_us):
                self._execute("save_state", change)
                (event_id,) = self._execute("add_history", change).fetchone() or (None,)
                ids.append(event_id)
            self._execute("save_checkpoint", {"seq": seq, "evaluated_us": now_us})
            rows = self._execute("history", {"org_id": None, "limit": len(ids)}).fetchall() if ids else []
        return sorted((e for e in map(stored_event, rows) if e.id in ids), key=lambda e: e.id)

    @translated
    def checkpoint(self) -> tuple[int, int] | None:
        with self._lock:
            row = self._execute("checkpoint", {}).fetchone()
        return (int(row[0]), int(row[1])) if row else None

    @translated
    def history(self, org_id: str | None = None, limit: int = 1000) -> list[AlertEvent]:
        with self._lock:
            rows = self._execute("history", {"org_id": org_id, "limit": limit}).fetchall()
        return [stored_event(r) for r in rows]

    @translated
    def claim_due(self, now_us: int, lease_us: int, limit: int = 50) -> list[AlertEvent]:
        with self._lock, self._connection().transaction():
            due = [stored_event(r) for r in self._execute("due", {"now_us": now_us, "limit": limit}).fetchall()]
            for event in due:
                self._execute("lease", {"id": event.id, "until_us": now_us + lease_us})
        return due

    @translated
    def mark_delivery(self, event_id: int, delivery: Delivery, next_attempt_us: int, status: int | None, error: str,
                      delivered_us: int | None) -> None:  # fmt: skip
        params = {"id": event_id, "delivery": delivery, "next_attempt_us": next_attempt_us, "last_status": status,
                  "last_error": error, "delivered_us": delivered_us}  # fmt: skip
        with self._lock:
            self._execute("mark_delivery", params)

    @translated
    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _execute(self, name: str, params: dict) -> psycopg.Cursor:
        return self._connection().execute(SQL.statement(name), params)

    def _connection(self) -> psycopg.Connection:
        # Opened again after it was lost: the next call works once the database is back.
        if self._db.broken or self._db.closed:
            self._db = connect(self._url, autocommit=True)
        return self._db
