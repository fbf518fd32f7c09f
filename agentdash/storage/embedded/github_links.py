"""GitHub links in SQLite: a small file of its own in the data dir, shared by the server and the CLI."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from agentdash.storage.embedded.errors import translated
from agentdash.storage.github_links import GithubLink, GithubLinkError, GithubLinkStore, LinkSecret
from agentdash.storage.queries import load_queries

SQL = load_queries("sqlite_github_links")


class SqliteGithubLinkStore(GithubLinkStore):
    """One connection, no lock held between calls, so a server and `agentdash github` can share the file."""

    @translated
    def __init__(self, path: Path) -> None:
        _create_private(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        self._db.execute(SQL.statement("connect"))
        self._db.execute(SQL["schema"])
        self._lock = threading.Lock()

    @translated
    def link(self, owner: str, repo: str, org_id: str, secret: str) -> tuple[GithubLink, bool]:
        now_us = time.time_ns() // 1000
        params = {"owner": owner, "repo": repo, "org_id": org_id, "secret": secret, "created_us": now_us}
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                replaced = self._db.execute(SQL["exists"], params).fetchone() is not None
                self._db.execute(SQL["link"], params)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return GithubLink(owner, repo, org_id, _utc(now_us)), replaced

    @translated
    def list_links(self) -> list[GithubLink]:
        with self._lock:
            return [_link(row) for row in self._db.execute(SQL["list_links"])]

    @translated
    def unlink(self, owner: str, repo: str) -> GithubLink:
        with self._lock:
            row = self._db.execute(SQL["unlink"], {"owner": owner, "repo": repo}).fetchone()
        if row is None:
            raise GithubLinkError(f"GitHub {'repo' if repo else 'owner'} {_target(owner, repo)!r} is not linked")
        return _link(row)

    @translated
    def secrets(self) -> list[LinkSecret]:
        with self._lock:
            return [LinkSecret(*row) for row in self._db.execute(SQL["secrets"]).fetchall()]

    @translated
    def close(self) -> None:
        with self._lock:
            self._db.close()


def _link(row: tuple) -> GithubLink:
    owner, repo, org_id, created_us = row
    return GithubLink(owner, repo, org_id, _utc(created_us))


def _target(owner: str, repo: str) -> str:
    return f"{owner}/{repo}" if repo else owner


def _utc(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, tz=UTC)


def _create_private(path: Path) -> None:
    # The webhook secrets are here in plain text: owner-only, like the dev secret.
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
