"""The Postgres backend's boundary: psycopg exceptions become storage errors."""

from __future__ import annotations

import psycopg

from agentdash.storage.base import StorageError, Unavailable, WriteRejected, caused_by, translating


def domain_error(exc: Exception) -> Exception:
    """The storage error standing for a driver's exception (chained to it); any other exception is returned as it is.

    OperationalError is what psycopg raises for a lost or refused connection, a server shutting down, a cancelled
    statement or a deadlock: all worth a retry, so all Unavailable.
    """
    if isinstance(exc, psycopg.IntegrityError):
        return caused_by(WriteRejected(f"the database refused the data: {exc}"), exc)
    if isinstance(exc, psycopg.OperationalError):
        return caused_by(Unavailable(f"the PostgreSQL database is unavailable: {exc}"), exc)
    if isinstance(exc, psycopg.Error):
        return caused_by(StorageError(f"{type(exc).__name__}: {exc}"), exc)
    return exc


translated = translating(domain_error)
