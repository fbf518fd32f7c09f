"""Connections to PostgreSQL for the Postgres backend: one for a short job, or a small pool."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from agentdash.storage.base import Unavailable


@contextmanager
def connected(url: str, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """One connection for a short job (schema setup, a CLI command); closed on exit."""
    db = connect(url, autocommit)
    try:
        yield db
    finally:
        db.close()


def connect(url: str, autocommit: bool = False, options: str = "") -> psycopg.Connection:
    """`options`: server settings for this connection only, as libpq's `-c name=value ...`."""
    try:
        # The OS pid in application_name tells operators (and tests) which worker holds a lock.
        return psycopg.connect(url, autocommit=autocommit, application_name=f"agentdash pid {os.getpid()}",
                               options=options)  # fmt: skip
    except psycopg.OperationalError as exc:
        raise Unavailable(f"cannot connect to the PostgreSQL database of --database-url: {exc}") from exc


def store_connection(url: str, schema: list[str]) -> psycopg.Connection:
    """A small store's one autocommit connection, with its schema statements run in one transaction."""
    db = connect(url, autocommit=True)
    with db.transaction():
        for statement in schema:
            db.execute(statement)
    return db


class ConnectionPool:
    """At most `size` autocommit connections, opened on demand and reused; a broken one is dropped."""

    def __init__(self, url: str, size: int, options: str = "") -> None:
        self._url = url
        self._options = options
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        with self._slots:
            try:
                db = self._idle.get_nowait()
            except queue.Empty:
                db = connect(self._url, autocommit=True, options=self._options)
            try:
                yield db
            finally:
                if db.broken or db.closed:
                    db.close()
                else:
                    self._idle.put(db)

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
