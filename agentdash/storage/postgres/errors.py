"""The Postgres backend's boundary: psycopg exceptions become storage errors."""

from __future__ import annotations

import psycopg

from agentdash.storage.base import StorageError, Unavailable, WriteRejected, caused_by, translating

# SQLSTATEs of a server short of disk, memory or connections, or failing to read or write its files: no fault of the
# data, and over once the operator frees some; each named in the answer, so that the operator knows what to free.
_SHORT_OF = {
    "53100": "the PostgreSQL database's disk is full",
    "53000": "the PostgreSQL server is short of resources",
    "53200": "the PostgreSQL server is out of memory",
    "53300": "the PostgreSQL server has too many connections",
    "58030": "the PostgreSQL server cannot read or write its files",
}


def domain_error(exc: Exception) -> Exception:
    """The storage error standing for a driver's exception (chained to it); any other exception is returned as it is.

    OperationalError is what psycopg raises for a lost or refused connection, a server shutting down, a cancelled
    statement, a deadlock or a full disk: all worth a retry, so all Unavailable.
    """
    shortage = short_of(exc)
    if shortage is not None:
        return caused_by(Unavailable(f"{shortage}, retry later: {exc}"), exc)
    if isinstance(exc, psycopg.IntegrityError):
        return caused_by(WriteRejected(f"the database refused the data: {exc}"), exc)
    if isinstance(exc, psycopg.OperationalError):
        return caused_by(Unavailable(f"the PostgreSQL database is unavailable: {exc}"), exc)
    if isinstance(exc, psycopg.Error):
        return caused_by(StorageError(f"{type(exc).__name__}: {exc}"), exc)
    return exc


def short_of(exc: BaseException) -> str | None:
    """What the server is short of (disk, memory...) when `exc` says so; None for any other error."""
    if isinstance(exc, psycopg.Error) and exc.sqlstate is not None:
        return _SHORT_OF.get(exc.sqlstate)
    return None


translated = translating(domain_error)
