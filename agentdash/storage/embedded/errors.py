"""The embedded backend's boundary: sqlite3 and duckdb exceptions become storage errors."""

from __future__ import annotations

import sqlite3

import duckdb

from agentdash.storage.base import StorageError, Unavailable, WriteRejected, caused_by, translating

# How DuckDB words ENOSPC (it has no error code to test); SQLite reports SQLITE_FULL.
_NO_SPACE = "no space left on device"


def domain_error(exc: Exception) -> Exception:
    """The storage error standing for a driver's exception (chained to it); any other exception is returned as it is."""
    if _disk_full(exc):
        # Not the data's fault and over once space returns: a retry may work, like a lost database.
        return caused_by(Unavailable(f"the disk is full, retry later: {exc}"), exc)
    if isinstance(exc, (sqlite3.IntegrityError, duckdb.IntegrityError)):
        return caused_by(WriteRejected(f"the database refused the data: {exc}"), exc)
    if isinstance(exc, (sqlite3.Error, duckdb.Error)):
        return caused_by(StorageError(f"{type(exc).__name__}: {exc}"), exc)
    return exc


translated = translating(domain_error)


def _disk_full(exc: Exception) -> bool:
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)
    return isinstance(exc, (duckdb.Error, OSError)) and _NO_SPACE in str(exc).lower()
