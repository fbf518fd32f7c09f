"""Alert rules in SQLite: a small file of its own in the data dir, shared by the server and the CLI."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
from agentdash.storage.embedded.errors import translated
from agentdash.storage.queries import load_queries

SQL = load_queries("sqlite_alerts")


class SqliteAlertStore(AlertStore):
    """One connection, no lock held between calls, so a server and `agentdash alerts` can share the file."""

    @translated
    def __init__(self, path: Path) -> None:
        _create_private(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        self._db.execute(SQL.statement("connect"))
        self._db.execute(SQL["schema"])
        for statement in SQL.statements("state_schema"):
            self._db.execute(statement)
        self._lock = threading.Lock()

    @translated
    def add(self, rule: AlertRule) -> AlertRule:
        now_us = time.time_ns() // 1000
        with self._lock:
            self._db.execute(SQL["add"], rule_params(rule, now_us, now_us))
        return dataclasses.replace(rule, created_at=utc(now_us), updated_at=utc(now_us))

    @translated
    def update(self, rule: AlertRule) -> AlertRule:
        with self._lock:
            row = self._db.execute(SQL["update"], rule_params(rule, 0, time.time_ns() // 1000)).fetchone()
        if row is None:
            raise AlertRuleError(f"org {rule.org_id!r} has no alert rule {rule.id!r}")
        return stored_rule(row)

    @translated
    def get(self, rule_id: str) -> AlertRule | None:
        with self._lock:
            row = self._db.execute(SQL["get"], {"id": rule_id}).fetchone()
        return stored_rule(row) if row else None

    @translated
    def list_rules(self, org_id: str | None = None) -> list[AlertRule]:
        with self._lock:
            return [stored_rule(row) for row in self._db.execute(SQL["list_rules"], {"org_id": org_id})]

    @translated
    def remove(self, rule_id: str) -> AlertRule:
        with self._lock:
            row = self._db.execute(SQL["remove"], {"id": rule_id}).fetchone()
        if row is None:
            raise AlertRuleError(f"no alert rule {rule_id!r}")
        return stored_rule(row)

    @translated
    def firing(self) -> dict[str, bool]:
        with self._lock:
            return {row[0]: bool(row[1]) for row in self._db.execute(SQL["states"])}

    @translated
    def record(self, observations: list[Observation], seq: int, now_us: int) -> list[AlertEvent]:
        with self._lock, self._transaction():
            # Read inside the write transaction: a second evaluator (none embedded, but the CLI could) waits for it.
            firing = {row[0]: bool(row[1]) for row in self._db.execute(SQL["states"])}
            ids = []
            for change in state_changes(observations, firing, now_us):
                self._db.execute(SQL["save_state"], change)
                ids.append(self._db.execute(SQL["add_history"], change).fetchone()[0])
            self._db.execute(SQL["save_checkpoint"], {"seq": seq, "evaluated_us": now_us})
            events = [stored_event(r) for r in self._db.execute(SQL["history"], {"org_id": None, "limit": len(ids)})]
        return sorted((e for e in events if e.id in ids), key=lambda e: e.id)

    @translated
    def checkpoint(self) -> tuple[int, int] | None:
        with self._lock:
            row = self._db.execute(SQL["checkpoint"]).fetchone()
        return (row[0], row[1]) if row else None

    @translated
    def history(self, org_id: str | None = None, limit: int = 1000) -> list[AlertEvent]:
        with self._lock:
            return [stored_event(r) for r in self._db.execute(SQL["history"], {"org_id": org_id, "limit": limit})]

    @translated
    def claim_due(self, now_us: int, lease_us: int, limit: int = 50) -> list[AlertEvent]:
        with self._lock, self._transaction():
            due = [stored_event(r) for r in self._db.execute(SQL["due"], {"now_us": now_us, "limit": limit})]
            for event in due:
                self._db.execute(SQL["lease"], {"id": event.id, "until_us": now_us + lease_us})
        return due

    @translated
    def mark_delivery(self, event_id: int, delivery: Delivery, next_attempt_us: int, status: int | None, error: str,
                      delivered_us: int | None) -> None:  # fmt: skip
        params = {"id": event_id, "delivery": delivery, "next_attempt_us": next_attempt_us, "last_status": status,
                  "last_error": error, "delivered_us": delivered_us}  # fmt: skip
        with self._lock:
            self._db.execute(SQL["mark_delivery"], params)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @translated
    def close(self) -> None:
        with self._lock:
            self._db.close()


def _create_private(path: Path) -> None:
    # Webhook URLs can be credentials (Slack's are): owner-only, like the dev secret.
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
