"""Archive and restore for the SQLite event log: folded entries past retention into Parquet (storage/archive.py) and
out of `events`; their identities into `archived_ids`, which the dedupe index loads and confirms against like the
live rows, so an archived id stays a duplicate for ever. On a connection of its own: safe while the writer appends
(every move is one short transaction of at most BATCH_ROWS entries, which never touches an unfolded one)."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa

from agentdash.events import dedupe_key
from agentdash.storage.archive import (
    BATCH_ROWS,
    events_of,
    month_range,
    months_between,
    rows_batch,
    stopping,
    until_stopped,
    verified_parts,
    write_part,
)
from agentdash.storage.base import ArchivedPart, ArchiveError, ArchiveReport, RestoreReport
from agentdash.storage.embedded.event_log import connect, event_row
from agentdash.storage.queries import load_queries

log = logging.getLogger(__name__)

SQL = load_queries("sqlite")


class SqliteArchive:
    def __init__(self, path: Path, durable: bool = False) -> None:
        """`path`: the event log, whose `archived_ids` table SqliteEventLog has created."""
        self._db = connect(path, durable)
        self._db.execute(SQL.statement("archiving_table"))
        self._lock = threading.Lock()  # one archive or restore at a time (the scheduled job, a CLI command)

    def close(self) -> None:
        self._db.close()

    def archived(self) -> int:
        with self._lock:
            (count,) = self._db.execute(SQL.statement("archived_count")).fetchone()
        return count

    def archive(
        self,
        checkpoint: int,
        skipped: Callable[[int, int], set[int]],
        before_us: int,
        directory: Path,
        stop: threading.Event | None = None,
    ) -> ArchiveReport:
        """Every folded (seq ≤ checkpoint) entry received before `before_us` that is not a dead letter; `stop` ends
        the run after the batch in hand (Storage.archive)."""
        with self._lock:
            params = {"checkpoint": checkpoint, "before_us": before_us}
            first_us, last_us = self._db.execute(SQL.statement("archive_span"), params).fetchone()
            if first_us is None:
                return ArchiveReport((), directory)
            dead = skipped(0, checkpoint)  # every state: retried ones may be read back, dropped ones are kept
            parts = []
            for month in months_between(first_us, last_us):
                if stopping(stop):
                    break
                start_us, end_us = month_range(month)
                window = {**params, "start_us": start_us, "end_us": min(end_us, before_us)}
                seqs: list[int] = []
                part = write_part(directory, month, until_stopped(self._month(window, dead, seqs), stop))
                if part is not None:
                    self._move(seqs)  # only now: the part is on disk, read back and listed in the manifest
                    parts.append(part)
                    log.info("archived %d entries of %s into %s", part.rows, month, directory / part.file)
            return ArchiveReport(tuple(parts), directory)

    def _month(self, window: dict[str, int], dead: set[int], seqs: list[int]) -> Iterator[pa.RecordBatch]:
        after = 0
        while True:
            cursor = self._db.execute(
                SQL.statement("archive_rows"), {**window, "after_seq": after, "limit": BATCH_ROWS}
            )
            rows = cursor.fetchall()
            if not rows:
                return
            after = rows[-1][0]
            kept = [row for row in rows if row[0] not in dead]
            seqs.extend(row[0] for row in kept)
            yield rows_batch(kept)

    def _move(self, seqs: list[int]) -> None:
        for start in range(0, len(seqs), BATCH_ROWS):
            with self._transaction():
                self._fill(seqs[start : start + BATCH_ROWS])
                for statement in SQL.statements("archive_move"):
                    self._db.execute(statement)

    def restore(self, directory: Path) -> RestoreReport:
        """Every part verified first (a corrupted one refuses the whole restore, naming it), then put back batch by
        batch; an entry the live log holds already is skipped, one this log never archived refuses the batch."""
        with self._lock:
            parts = list(verified_parts(directory))
            restored = already = 0
            for part, batches in parts:
                for batch in batches():
                    done, there = self._restore_batch(part, batch)
                    restored, already = restored + done, already + there
            return RestoreReport(tuple(part for part, _ in parts), restored, already)

    def _restore_batch(self, part: ArchivedPart, batch: pa.RecordBatch) -> tuple[int, int]:
        entries = list(events_of(batch))
        with self._transaction():
            self._fill([seq for seq, _, _ in entries])
            archived = {seq: (org, id_) for seq, org, id_ in self._db.execute(SQL.statement("archived_identities"))}
            live = {seq: (org, id_) for seq, org, id_ in self._db.execute(SQL.statement("live_identities"))}
            rows = []
            for seq, received_us, event in entries:
                identity = (event.org_id, event.id)
                if live.get(seq) == identity:
                    continue
                if archived.get(seq) != identity:
                    raise ArchiveError(f"{part.file}: entry {seq} ({event.org_id}/{event.id}) is not one this log "
                                       "archived (an archive of another data dir?); nothing of its batch was "
                                       "restored")  # fmt: skip
                rows.append((seq, dedupe_key(*identity), received_us, *event_row(event)))
            self._db.execute(SQL.statement("archiving_clear"))  # only the restored seqs leave archived_ids
            self._db.executemany(SQL.statement("archiving_add"), [(row[0],) for row in rows])
            self._db.executemany(SQL.statement("restore_row"), rows)
            self._db.execute(SQL.statement("restored"))
        return len(rows), len(entries) - len(rows)

    def _fill(self, seqs: list[int]) -> None:
        self._db.execute(SQL.statement("archiving_clear"))
        self._db.executemany(SQL.statement("archiving_add"), [(seq,) for seq in seqs])

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any error (sqlite3 in autocommit mode, as the log's connections)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if error is None:
            self._db.execute("COMMIT")
        elif self._db.in_transaction:
            self._db.execute("ROLLBACK")
