"""GitHub links in PostgreSQL: the table every server and `agentdash github --database-url` share."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import psycopg

from agentdash.storage.github_links import GithubLink, GithubLinkError, GithubLinkStore, LinkSecret
from agentdash.storage.postgres.connections import connect, store_connection
from agentdash.storage.postgres.errors import translated
from agentdash.storage.queries import load_queries

SQL = load_queries("postgres_github_links", pyformat=True)


class PostgresGithubLinkStore(GithubLinkStore):
    """One autocommit connection behind a lock; each call is one statement or transaction, seen at the next reload."""

    @translated
    def __init__(self, url: str) -> None:
        self._url = url
        self._db = store_connection(url, SQL.statements("schema"))
        self._lock = threading.Lock()

    @translated
    def link(self, owner: str, repo: str, org_id: str, secret: str) -> tuple[GithubLink, bool]:
        now_us = time.time_ns() // 1000
        params = {"owner": owner, "repo": repo, "org_id": org_id, "secret": secret, "created_us": now_us}
        with self._lock, self._connection().transaction():
            replaced = self._execute("exists", params).fetchone() is not None
            self._execute("link", params)
        return GithubLink(owner, repo, org_id, _utc(now_us)), replaced

    @translated
    def list_links(self) -> list[GithubLink]:
        with self._lock:
            return [_link(row) for row in self._execute("list_links", {}).fetchall()]

    @translated
    def unlink(self, owner: str, repo: str) -> GithubLink:
        with self._lock:
            row = self._execute("unlink", {"owner": owner, "repo": repo}).fetchone()
        if row is None:
            target = f"{owner}/{repo}" if repo else owner
            raise GithubLinkError(f"GitHub {'repo' if repo else 'owner'} {target!r} is not linked")
        return _link(row)

    @translated
    def secrets(self) -> list[LinkSecret]:
        with self._lock:
            return [LinkSecret(*row) for row in self._execute("secrets", {}).fetchall()]

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


def _link(row: tuple) -> GithubLink:
    owner, repo, org_id, created_us = row
    return GithubLink(owner, repo, org_id, _utc(created_us))


def _utc(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, tz=UTC)
