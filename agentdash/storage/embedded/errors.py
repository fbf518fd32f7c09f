"""The embedded backend's boundary: sqlite3 and duckdb exceptions become storage errors."""

from __future__ import annotations

import sqlite3

import duckdb

from agentdash.storage.base import StorageError, WriteRejected, caused_by, translating


def domain_error(exc: Exception) -> Exception:
    """The storage error standing for a driver's exception (chained to it); any other exception is returned as it is."""
    if isinstance(exc, (sqlite3.IntegrityError, duckdb.IntegrityError)):
        return caused_by(WriteRejected(f"the database refused the data: {exc}"), exc)
    if isinstance(exc, (sqlite3.Error, duckdb.Error)):
        return caused_by(StorageError(f"{type(exc).__name__}: {exc}"), exc)
    return exc


translated = translating(domain_error)
