"""The append-only event log in SQLite (WAL): one writer thread with group commit, readers on their own connections."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from msgspec.structs import astuple

from agentdash.events import Event, dedupe_key
from agentdash.storage.base import LOG_COLUMNS, LogChunk, LogFootprint, LoggedEvent, LogPosition
from agentdash.storage.embedded import dedupe_snapshot
from agentdash.storage.embedded.dedupe import DedupeIndex
from agentdash.storage.embedded.errors import domain_error
from agentdash.storage.embedded.recent_rows import RecentRows
from agentdash.storage.group_commit import GroupCommitWriter, Pending
from agentdash.storage.queries import load_queries

log = logging.getLogger(__name__)

SQL = load_queries("sqlite")
SCHEMA = SQL.statement("schema")
INSERT = SQL.statement("append")
ARROW_TYPES = {
    "seq": pa.int64(), "occurred_us": pa.int64(), "input_tokens": pa.int64(), "output_tokens": pa.int64(),
    "cache_read_tokens": pa.int64(), "cache_write_tokens": pa.int64(), "cost_usd": pa.float64(),
    "pr_number": pa.int64(), "lines_added": pa.int64(), "lines_removed": pa.int64(), "commits": pa.int64(),
}  # fmt: skip
# Insert rows hold seq, dedupe_key, received_us, then the Event's fields; a chunk takes these of them (seq first).
_EVENT_FIELDS = Event.__struct_fields__
_CHUNK_COLUMNS = [0] + [3 + _EVENT_FIELDS.index(name) for name in LOG_COLUMNS[1:]]
_CONFIRM_PART = 450  # seqs per lookup (each given twice: live and archived), under SQLite's old limit of 999


def connect(path: Path, durable: bool = False) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in SQL.statements("connect"):
        db.execute(pragma)
    if durable:
        db.execute(SQL.statement("durable"))
    return db


def upgrade(db: sqlite3.Connection) -> None:
    """Add the columns a log written by an older version lacks (SQLite has no ADD COLUMN IF NOT EXISTS)."""
    columns = {name for (name,) in db.execute(SQL.statement("columns"))}
    steps = [
        step
        for step, first in (
            ("upgrade", "cache_read_tokens"),
            ("upgrade_pr", "branch"),
            ("upgrade_code", "lines_added"),
            ("upgrade_agent", "agent"),
        )
        if first not in columns
    ]
    if steps:
        db.execute("BEGIN IMMEDIATE")
        try:
            for step in steps:
                for statement in SQL.statements(step):
                    db.execute(statement)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


class SqliteEventLog:
    """Appends through one writer thread (SQLite has one writer); reads on per-thread connections."""

    def __init__(self, path: Path, queue_limit: int = 64, recent_rows: int = 300_000, durable: bool = False) -> None:
        """`durable`: synchronous=FULL on every connection (--durable), else NORMAL."""
        self.path = path
        self.durable = durable
        self._writer_db = connect(path, durable)
        self._writer_db.execute(SCHEMA)
        upgrade(self._writer_db)
        self._writer_db.execute(SQL.statement("archive_schema"))  # archived entries' ids: duplicates for ever
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []  # every thread's, so that close() lets go of the files
        self._index = DedupeIndex()
        self._snapshot_path = path.with_name(f"{path.stem}-dedupe.npz")  # not events.sqlite*: it is not the log
        self._last_seq = self._load_index()
        self._recent = RecentRows(limit=recent_rows)
        self._writer = GroupCommitWriter(self._try_write, queue_limit)  # last: it starts writing at once

    # -- writing -------------------------------------------------------------------------------

    def submit(self, events: list[Event]) -> Future[list[bool]]:
        return self._writer.submit(events)

    def close(self) -> None:
        self._writer.close()
        try:
            self._save_index()
        except (OSError, sqlite3.Error):  # the next start rebuilds the index from the log: slower, as correct
            log.exception("could not save the dedupe snapshot")
        self._writer_db.close()
        for reader in self._readers:
            reader.close()

    def synchronous(self) -> str:
        """The writer connection's `PRAGMA synchronous`, by name (FULL under --durable, else NORMAL)."""
        (level,) = self._writer_db.execute(SQL.statement("synchronous")).fetchone()
        return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(level, str(level))

    def _try_write(self, pending: list[Pending]) -> bool:
        """Commit the batches in one transaction; on failure set the error only when alone."""
        try:
            results, rows, added = self._plan(pending)
            db = self._writer_db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(INSERT, rows)
                db.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back already (a full disk does): a second ROLLBACK would raise and
                # hide the error that says why.
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except Exception as exc:  # nothing of these batches is acknowledged
            if len(pending) == 1:
                log.exception("event log write failed")
                pending[0][1].set_exception(domain_error(exc))
            return False
        self._index.add_many(added)
        self._recent.append(rows)
        self._last_seq += len(rows)
        for result, (_, future) in zip(results, pending, strict=True):
            future.set_result(result)
        return True

    def _plan(self, pending: list[Pending]) -> tuple[list[list[bool]], list[tuple], list[tuple[int, int]]]:
        """Decide which events are new and build their rows; nothing is written yet."""
        all_events = [e for events, _ in pending for e in events]
        keys = [dedupe_key(e.org_id, e.id) for e in all_events]
        candidates = self._index.candidates(keys)
        confirmed = self._confirm(candidates)
        now_us = time.time_ns() // 1000
        seq = self._last_seq
        batch_seen: set[tuple[str, str]] = set()
        rows: list[tuple] = []
        added: list[tuple[int, int]] = []
        results: list[list[bool]] = []
        position = 0
        for events, _ in pending:
            result = []
            for event in events:
                key = keys[position]
                position += 1
                identity = (event.org_id, event.id)
                if identity in batch_seen or identity in confirmed.get(key, ()):
                    result.append(False)
                    continue
                batch_seen.add(identity)
                seq += 1
                rows.append((seq, key, now_us, *astuple(event)))
                added.append((key, seq))
                result.append(True)
            results.append(result)
        return results, rows, added

    def _confirm(self, candidates: dict[int, list[int]]) -> dict[int, set[tuple[str, str]]]:
        """The (org_id, id) really stored under each candidate key: a hash hit is not proof."""
        if not candidates:
            return {}
        by_seq = {seq: key for key, seqs in candidates.items() for seq in seqs}
        confirmed: dict[int, set[tuple[str, str]]] = {}
        seqs = list(by_seq)
        for start in range(0, len(seqs), _CONFIRM_PART):
            part = seqs[start : start + _CONFIRM_PART]
            statement = SQL.statement("stored_identities").replace("{seqs}", ",".join("?" * len(part)))
            for seq, org_id, event_id in self._writer_db.execute(statement, part + part):
                confirmed.setdefault(by_seq[seq], set()).add((org_id, event_id))
        return confirmed

    def _load_index(self) -> int:
        """The dedupe index from its snapshot and the entries after it (without one: the whole log); the last seq."""
        started = time.perf_counter()
        (last_seq,) = self._writer_db.execute(SQL.statement("last_seq")).fetchone()
        snapshot = dedupe_snapshot.load(self._snapshot_path, self._key_at, last_seq)
        after = 0
        if snapshot is not None:
            self._index.load(snapshot.keys, snapshot.seqs, presorted=True)
            after = snapshot.last_seq
        keys, seqs = [], []
        for key, seq in self._writer_db.execute(SQL.statement("dedupe_keys"), {"after_seq": after}):
            keys.append(key)
            seqs.append(seq)
        self._index.load(np.array(keys, dtype=np.int64), np.array(seqs, dtype=np.int64))
        if last_seq:
            log.info("dedupe index: %d keys (%d read from the log) in %.2f s", len(self._index), len(keys),
                     time.perf_counter() - started)  # fmt: skip
        return last_seq

    def _save_index(self) -> None:
        """At a clean close (the writer stopped): the index and the position it covers, for the next start."""
        keys, seqs = self._index.arrays()
        dedupe_snapshot.save(self._snapshot_path, keys, seqs, self._last_seq, self._key_at)

    def _key_at(self, seq: int) -> int | None:
        row = self._writer_db.execute(SQL.statement("dedupe_key_at"), {"seq": seq}).fetchone()
        return row[0] if row else None

    # -- reading -------------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = connect(self.path, self.durable)
            self._readers.append(db)  # list.append is atomic: no lock for the few threads that read
        return db

    def position(self, after_seq: int = 0) -> LogPosition:
        row = self._reader().execute(SQL.statement("received_at"), {"seq": after_seq + 1}).fetchone()
        return LogPosition(last_seq=self._last_seq, oldest_unfolded_received_us=row[0] if row else None)

    def footprint(self) -> LogFootprint:
        """Entries, bytes of the log's files (with its WAL), and the dedupe index's keys at 16 B each."""
        size = 0
        for path in self.path.parent.glob(f"{self.path.name}*"):
            with contextlib.suppress(FileNotFoundError):  # a WAL checkpointed away meanwhile
                size += path.stat().st_size
        keys = self._index_size()
        return LogFootprint(events=self._last_seq, bytes=size, dedupe_entries=keys, dedupe_bytes=16 * keys)

    def _index_size(self) -> int:
        # The writer thread grows the index while we count; a count that met a resize is simply taken again.
        for _ in range(10):
            with contextlib.suppress(RuntimeError):
                return len(self._index)
        return self._last_seq

    def read(self, after_seq: int, limit: int) -> LogChunk | None:
        rows = self._recent.take(after_seq, limit)
        if rows is not None:
            # Only the chunk's columns: zip(*rows) built all 33 of them, at twice the cost.
            columns: list[Sequence[Any]] = [[row[i] for row in rows] for i in _CHUNK_COLUMNS]
        else:
            rows = (
                self._reader().execute(SQL.statement("read_chunk"), {"after_seq": after_seq, "limit": limit}).fetchall()
            )
            columns = list(zip(*rows, strict=True))
        if not rows:
            return None
        return LogChunk(table=_table(columns), last_seq=columns[0][-1])

    def read_at(self, seqs: list[int]) -> pa.Table:
        """The entries of these seqs as a chunk's table (a retry's few dead letters), read from the file."""
        statement = SQL.statement("read_chunk")
        rows = [row for seq in seqs for row in self._reader().execute(statement, {"after_seq": seq - 1, "limit": 1})]
        return _table(list(zip(*rows, strict=True)) if rows else [()] * len(LOG_COLUMNS))

    def entries(self, after_seq: int, limit: int) -> list[LoggedEvent]:
        rows = self._reader().execute(SQL.statement("log_entries"), {"after_seq": after_seq, "limit": limit})
        return [LoggedEvent(seq, received_us, Event(*fields)) for seq, received_us, *fields in rows]


def _table(columns: list) -> pa.Table:
    arrays = [
        pa.array(values, type=ARROW_TYPES.get(name, pa.string()))
        for name, values in zip(LOG_COLUMNS, columns, strict=True)
    ]
    return pa.Table.from_arrays(arrays, names=list(LOG_COLUMNS))


def event_row(e: Event) -> tuple:
    """The log columns after (seq, dedupe_key, received_us): Event's fields are declared in that order."""
    return astuple(e)
