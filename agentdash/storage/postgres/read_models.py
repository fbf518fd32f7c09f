"""Read models in PostgreSQL: folded server-side from the log by seq range, one folder at a time, queried by name."""

from __future__ import annotations

import logging
import time
from collections import namedtuple
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from agentdash.storage.base import FoldState, LogChunk
from agentdash.storage.postgres.connections import ConnectionPool, connect
from agentdash.storage.queries import load_queries, render, split

log = logging.getLogger(__name__)
SQL = load_queries("postgres", pyformat=True)
RLS = load_queries("postgres_rls", pyformat=True)
# Every table with an org_id that a read query can see: the log and the read models (row security, see Reader).
ORG_TABLES = ("events", "runs", "sessions", "activity", "queued", "usage", "code_changes", "prs", "pr_texts")
# Bump when the read-model schema or fold changes: older read models are dropped and re-folded from the log.
VERSION = 5  # 2: runs_by_day covers the metric queries' columns; 3: usage events, cache tokens; 4: PRs, runs' branch;
# 5: PRs' titles and urls (pr_texts), code changes (code_changes), the agent of runs, usage, code changes and PRs
# The statements of a several-statement named query (run_metrics: groups and total), one connection each.
_STATEMENTS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="postgres-statement")
# After a fold, this process ANALYZEs the read models once the entries it folded since its last ANALYZE reach a tenth
# of the log folded before (autovacuum's own rule), at least ANALYZE_MIN and at most ANALYZE_MAX entries: right after
# a big catch-up, before autovacuum's next round, the planner would otherwise plan the year's queries on no or
# stale statistics (usage and code metrics 300-900 ms instead of ~5 ms).
ANALYZE_FRACTION, ANALYZE_MIN, ANALYZE_MAX = 0.1, 10_000, 100_000
FOLD_STEPS = (
    "fold_chunk", "fold_runs", "fold_sessions", "fold_activity", "fold_queued", "fold_usage", "fold_code", "fold_prs",
    "fold_pr_links", "fold_pr_texts", "fold_followed_up",
)  # fmt: skip


@dataclass(frozen=True)
class Reader:
    """The role that read queries run as (row security: one org's rows, that of the transaction's `app.org_id`)."""

    role: str
    search_path: str  # the tables' schema, quoted: under the reader, "$user" would be its own schema


class PostgresReadModels:
    """Folds on a connection of its own (the projector's); queries borrow pooled connections.

    With a `reader`, each query runs in a transaction as that role with `app.org_id` set to the query's org, so the
    database itself keeps other orgs' rows out; None (the login role may not create or join it): the queries' own
    `org_id = $org` alone.
    """

    def __init__(self, url: str, readers: ConnectionPool, reader: Reader | None = None) -> None:
        self._url = url
        self._readers = readers
        self._db: psycopg.Connection | None = None
        self.reader = reader
        self._unanalyzed = 0  # log entries this process folded since its last ANALYZE of the read models

    def fold(self, chunk: LogChunk, check: Callable[[list[int]], None] | None = None) -> bool:
        """`check`: the tests' poison hook, run on the folded seqs before COMMIT."""
        db = self._connection()
        with db.transaction():
            if not _one(db, "try_fold_lock"):
                return False  # another process is folding; its folds cover this range
            checkpoint = _one(db, "load_checkpoint")
            if checkpoint >= chunk.last_seq:
                return False  # someone folded past this chunk since it was read
            params = {"after_seq": checkpoint, "last_seq": chunk.last_seq}
            for step in FOLD_STEPS:
                _run(db, step, params)
            _check(db, check)
            _run(db, "save_checkpoint", {"seq": chunk.last_seq, "folded_at_us": time.time_ns() // 1000})
        self._unanalyzed += chunk.last_seq - checkpoint
        if self._unanalyzed >= min(max(ANALYZE_FRACTION * checkpoint, ANALYZE_MIN), ANALYZE_MAX):
            self._analyze(db)
        return True

    def _analyze(self, db: psycopg.Connection) -> None:
        """Fresh planner statistics for the read models, after the fold's COMMIT: ANALYZE blocks no append, fold or
        read (its lock conflicts only with another ANALYZE, a VACUUM or a DROP). The fold is done whatever happens
        here: a failure is logged and the next fold tries again."""
        started = time.perf_counter()
        try:
            with db.transaction():
                _run(db, "analyze_read_models", {})
        except psycopg.Error as exc:
            log.warning("ANALYZE of the read models failed (the fold is committed): %s", exc)
            return
        log.debug("read models analyzed after %d folded entries in %.0f ms", self._unanalyzed,
                  (time.perf_counter() - started) * 1000)  # fmt: skip
        self._unanalyzed = 0

    def refold(self, seqs: list[int], check: Callable[[list[int]], None] | None = None) -> bool:
        """Fold the dead letters of `seqs` still marked for retry and forget them, in one transaction under the fold
        lock: every worker's retry folds each at most once. The checkpoint stays."""
        if not seqs:
            return True
        db = self._connection()
        with db.transaction():
            if not _one(db, "try_fold_lock"):
                return False
            params = {"seqs": seqs, "after_seq": min(seqs) - 1, "last_seq": max(seqs)}  # the range fold_pr_texts reads
            for step in ("refold_chunk", *(step for step in FOLD_STEPS if step != "fold_chunk")):
                _run(db, step, params)
            _check(db, check)
            _run(db, "forget_refolded", {})
        return True

    def fold_state(self) -> FoldState:
        with self._readers.connection() as db:
            row = db.execute(SQL.statement("load_checkpoint")).fetchone()
        return FoldState(seq=row[0], folded_at_us=row[1]) if row else FoldState(seq=0, folded_at_us=None)

    def reset(self) -> None:
        """Drop and recreate the read models; waits for a running fold (of any process) to finish first."""
        db = self._connection()
        with db.transaction():
            _run(db, "wait_fold_lock", {})
            _run(db, "drop_read_models", {})
            _run(db, "read_models", {})
            if self.reader is not None:  # the new tables have no policies yet
                _protect(db, self.reader.role)

    def query(self, name: str, params: dict[str, Any]) -> list[tuple]:
        """The named query's rows; a query of several statements runs them at once, rows concatenated in order.

        Each statement runs on a pool thread and connection of its own: the caller holds no connection while it
        waits, so concurrent requests cannot deadlock on the read pool.
        """
        parts = split(render(SQL, name, params))
        if len(parts) == 1:
            return self._fetch(name, parts[0], params)
        futures = [_STATEMENTS.submit(self._fetch, name, part, params) for part in parts]
        return [row for future in futures for row in future.result()]

    def _fetch(self, name: str, statement: str, params: dict[str, Any]) -> list[tuple]:
        used = {k: v for k, v in params.items() if f"%({k})s" in statement}
        with self._readers.connection() as db:
            if self.reader is None:
                return _rows(name, db.execute(statement, used))
            if not isinstance(params.get("org"), str):
                raise ValueError(f"{name}: a read query is one org's, and names none (params['org'])")
            scope = {"reader": self.reader.role, "schema": self.reader.search_path, "org": params["org"]}
            with db.transaction():  # role, search_path and app.org_id are SET LOCAL: they end with it
                db.execute(RLS.statement("scope"), scope)
                return _rows(name, db.execute(statement, used))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()

    def _connection(self) -> psycopg.Connection:
        if self._db is None or self._db.broken or self._db.closed:
            self._db = connect(self._url)  # after a lost connection, the next fold reconnects
        return self._db


def prepare(db: psycopg.Connection) -> Reader | None:
    """Create the log and read models if missing; drop read models of another VERSION (they re-fold); set up row
    security (`row_security`): the Reader that queries run as, or None when this login role may not."""
    with db.transaction():
        _run(db, "schema", {})
        if not _one(db, "log_is_current"):
            _run(db, "upgrade_log", {})
        if _one(db, "load_version") != VERSION:
            _run(db, "wait_fold_lock", {})
            _run(db, "drop_read_models", {})
            _run(db, "save_version", {"version": VERSION})
        _run(db, "read_models", {})
        return row_security(db)


def row_security(db: psycopg.Connection) -> Reader | None:
    """The reader role, its policies on every ORG_TABLES table, this login role a member: what is missing is made,
    in prepare's transaction (its schema lock: workers starting together take turns). Nothing is changed when all
    is in place. A login role without the privilege (CREATEROLE to make and join the role, owning the tables) gets
    None and a warning saying what an administrator should run: reads are then scoped by their queries alone."""
    role, schema = db.execute(RLS.statement("reader_role")).fetchone() or ("", "")
    reader, search_path = sql.Identifier(role), sql.Identifier(schema).as_string(db)
    exists, schema_usage = db.execute(RLS.statement("reader_state"), {"reader": role}).fetchone() or ()
    scope = {"reader": role, "schema": search_path, "org": ""}
    try:
        with db.transaction():  # a savepoint: a refusal undoes only this
            if not exists:
                _execute(db, "create_reader", reader=reader)
            if not _may_switch(db, scope):  # a member without SET (PostgreSQL 16: the creator's own grant) is not
                _execute(db, "join_reader", reader=reader)
            if not schema_usage:
                _execute(db, "reader_schema", reader=reader, schema=sql.Identifier(schema))
            _protect(db, role)
            with db.transaction(force_rollback=True):  # now it may, or this raises
                db.execute(RLS.statement("scope"), scope)
    except psycopg.errors.InsufficientPrivilege as exc:
        (user,) = db.execute("SELECT current_user").fetchone() or ("",)
        named = reader.as_string(db)
        fix = (
            "" if exists else f"CREATE ROLE {named} NOLOGIN; "
        ) + f"GRANT {named} TO {sql.Identifier(user).as_string(db)};"
        log.warning(
            "PostgreSQL row-level security is off: the login role %s may not set up its reader role %s (%s). Read "
            "queries are scoped by their own org filter only. To turn it on, run as a superuser: %s and restart (the "
            "login role must also own the tables, as when it created them).", user, role, str(exc).strip(), fix,
        )  # fmt: skip
        return None
    return Reader(role, search_path)


def _may_switch(db: psycopg.Connection, scope: dict[str, str]) -> bool:
    """Whether this login role may switch to the reader (tried, and undone at once)."""
    try:
        with db.transaction(force_rollback=True):
            db.execute(RLS.statement("scope"), scope)
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


def _protect(db: psycopg.Connection, role: str) -> None:
    """Row security, the policy and the reader's SELECT on each ORG_TABLES table that lacks one of them."""
    (missing,) = db.execute(
        RLS.statement("unprotected_tables"), {"reader": role, "tables": list(ORG_TABLES)}
    ).fetchone() or ([],)
    for table in missing:
        _execute(db, "protect_table", reader=sql.Identifier(role), table=sql.Identifier(table))


def _execute(db: psycopg.Connection, name: str, **identifiers: sql.Identifier) -> None:
    for statement in RLS.statements(name):
        db.execute(sql.SQL(statement).format(**identifiers))


def _rows(name: str, cursor: psycopg.Cursor) -> list[tuple]:
    columns = [column.name for column in cursor.description or ()]
    row_type = namedtuple(name, columns)  # type: ignore[misc]
    return [row_type(*row) for row in cursor.fetchall()]


def _run(db: psycopg.Connection, name: str, params: dict[str, Any]) -> None:
    for statement in SQL.statements(name):
        db.execute(statement, {k: v for k, v in params.items() if f"%({k})s" in statement})


def _check(db: psycopg.Connection, check: Callable[[list[int]], None] | None) -> None:
    if check is not None:
        check([seq for (seq,) in db.execute(SQL.statement("chunk_seqs")).fetchall()])


def _one(db: psycopg.Connection, name: str) -> Any:
    row = db.execute(SQL.statement(name)).fetchone()
    assert row is not None, f"{name} returns one row"
    return row[0]
