"""The PostgreSQL log by month, and its archive: partitions `events_YYYY_MM` of `events` by `received_us` (made as
appends and restores need them, under the log lock; an unpartitioned log from before is copied into them once at
start-up), archive runs (storage/archive.py's verified Parquet parts, then DROP of a partition archived whole or a
DELETE of what was archived of it), restore. `event_ids` keeps every id logged, so dedupe outlives the rows.

Several workers: an archive run takes a session advisory lock (try: a worker that does not get it leaves the run to
the one that did), a restore waits for the same lock; appends, restores and partition changes serialise on the log lock as appends always did."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyarrow as pa
from psycopg import sql

from agentdash.storage.archive import (
    ARCHIVE_COLUMNS,
    BATCH_ROWS,
    month_of,
    month_range,
    months_between,
    rows_batch,
    stopping,
    until_stopped,
    verified_parts,
    write_part,
)
from agentdash.storage.base import ArchivedPart, ArchiveError, ArchiveReport, RestoreReport
from agentdash.storage.postgres.connections import connect
from agentdash.storage.queries import load_queries

log = logging.getLogger(__name__)

SQL = load_queries("postgres", pyformat=True)


def partition_name(month: str) -> str:
    return f"events_{month.replace('-', '_')}"


def ensure_partitions(db: psycopg.Connection, *months: str) -> None:
    """Make the months' partitions that are missing, in the caller's transaction (which holds the log or schema lock).
    (create_partition in postgres.sql: CREATE + ATTACH, which lets folds and reads of the log go on)."""
    for month in months:
        name = partition_name(month)
        (exists,) = db.execute(SQL.statement("partition_exists"), {"name": name}).fetchone() or (False,)
        if exists:
            continue
        for statement in SQL.statements("create_partition"):
            db.execute(_ddl(statement, month))


def _ddl(template: str, month: str) -> sql.Composed:
    """A partition statement of postgres.sql for `month`: its name and bounds filled in (DDL takes no parameters)."""
    start_us, end_us = month_range(month)
    return sql.SQL(template).format(
        name=sql.Identifier(partition_name(month)), start_us=sql.Literal(start_us), end_us=sql.Literal(end_us)
    )


def next_month(month: str) -> str:
    return month_of(month_range(month)[1])


def partition_log(db: psycopg.Connection) -> bool:
    """Copy a log written before partitioning into a partitioned one, with its ids into event_ids, in one transaction
    under the schema lock; False when it is partitioned already (nothing done)."""
    with db.transaction():
        db.execute(SQL.statements("schema")[0])  # the schema lock: workers starting together upgrade once
        (partitioned,) = db.execute(SQL.statement("log_is_partitioned")).fetchone() or (True,)
        if partitioned:
            (missing,) = db.execute(SQL.statement("event_ids_missing")).fetchone() or (False,)
            if missing:  # the live entries' ids at least; an archived entry's id is then lost to dedupe
                db.execute(SQL.statement("event_ids_fill"))
                log.warning("event_ids was empty beside a non-empty log (a dump without it?): refilled from the log")
            return False
        for statement in SQL.statements("partition_log_table"):
            db.execute(statement)
        first_us, last_us = db.execute(SQL.statement("partition_log_span")).fetchone() or (None, None)
        if first_us is not None:
            for month in months_between(first_us, last_us):
                db.execute(_ddl(SQL.statement("upgrade_partition"), month))
        for statement in SQL.statements("partition_log_copy"):
            db.execute(statement)
        log.info("the event log is now partitioned by month")
        return True


class PostgresArchive:
    def __init__(self, url: str) -> None:
        self._url = url

    def archived(self) -> int:
        with connect(self._url, autocommit=True) as db:
            (count,) = db.execute(SQL.statement("archived_count")).fetchone() or (0,)
        return count

    def archive(self, before_us: int, directory: Path, stop: threading.Event | None = None) -> ArchiveReport:
        with connect(self._url, autocommit=True) as db:
            (granted,) = db.execute(SQL.statement("try_archive_lock")).fetchone() or (False,)
            if not granted:
                log.info("another worker is archiving the log")
                return ArchiveReport((), directory)
            try:
                return self._archive(db, before_us, directory, stop)
            finally:
                db.execute(SQL.statement("archive_unlock"))

    def _archive(
        self, db: psycopg.Connection, before_us: int, directory: Path, stop: threading.Event | None
    ) -> ArchiveReport:
        row = db.execute(SQL.statement("archive_bounds")).fetchone()
        if row is None or row[0] is None:
            return ArchiveReport((), directory)
        checkpoint, last_seq, dead_list = row
        bounds = {"checkpoint": checkpoint, "last_seq": last_seq, "before_us": before_us}
        first_us, last_us = db.execute(SQL.statement("archive_span"), bounds).fetchone() or (None, None)
        if first_us is None:
            return ArchiveReport((), directory)
        dead = set(dead_list)
        parts = []
        for month in months_between(first_us, last_us):
            if stopping(stop):
                break
            start_us, end_us = month_range(month)
            window = {**bounds, "start_us": start_us, "end_us": min(end_us, before_us)}
            seqs: list[int] = []
            part = write_part(directory, month, until_stopped(self._month(db, window, dead, seqs), stop))
            if part is None:
                continue
            self._remove(db, month, window, seqs, whole_month=end_us <= before_us)
            parts.append(part)
            log.info("archived %d entries of %s into %s", part.rows, month, directory / part.file)
        return ArchiveReport(tuple(parts), directory)

    def _month(
        self, db: psycopg.Connection, window: dict[str, int], dead: set[int], seqs: list[int]
    ) -> Iterator[pa.RecordBatch]:
        after = 0
        while True:
            rows = db.execute(SQL.statement("archive_rows"), {**window, "after_seq": after, "limit": BATCH_ROWS})
            batch = rows.fetchall()
            if not batch:
                return
            after = batch[-1][0]
            kept = [row for row in batch if row[0] not in dead]
            seqs.extend(row[0] for row in kept)
            yield rows_batch(kept)

    def _remove(
        self, db: psycopg.Connection, month: str, window: dict[str, int], seqs: list[int], whole_month: bool
    ) -> None:
        """The month's partition dropped when the part holds all of it; else the part's rows deleted, in batches."""
        span = {"start_us": window["start_us"], "end_us": window["end_us"]}
        with db.transaction():
            db.execute(SQL.statement("lock_log"))  # against a restore putting rows back meanwhile
            (count,) = db.execute(SQL.statement("month_rows"), span).fetchone() or (0,)
            if whole_month and count == len(seqs):
                db.execute(_ddl(SQL.statement("drop_partition"), month))
                return
        for start in range(0, len(seqs), BATCH_ROWS):
            with db.transaction():
                db.execute(SQL.statement("archive_delete"), {**span, "seqs": seqs[start : start + BATCH_ROWS]})

    def restore(self, directory: Path) -> RestoreReport:
        """Under the archive lock, waited for: workers starting together after a read-model VERSION bump each
        restore (storage.restore_for_refold), and the later ones then find every entry there already."""
        parts = list(verified_parts(directory))
        restored = already = 0
        with connect(self._url, autocommit=True) as db:
            db.execute(SQL.statement("archive_lock"))
            try:
                for part, batches in parts:
                    for batch in batches():
                        done, there = self._restore_batch(db, part, batch)
                        restored, already = restored + done, already + there
            finally:
                db.execute(SQL.statement("archive_unlock"))
        return RestoreReport(tuple(part for part, _ in parts), restored, already)

    def _restore_batch(self, db: psycopg.Connection, part: ArchivedPart, batch: pa.RecordBatch) -> tuple[int, int]:
        columns = {name: batch.column(i).to_pylist() for i, name in enumerate(ARCHIVE_COLUMNS)}
        with db.transaction():
            db.execute(SQL.statement("lock_log"))
            known, live = db.execute(
                SQL.statement("restore_known"),
                {"org_id": columns["org_id"], "id": columns["id"], "seq": columns["seq"]},
            ).fetchone() or ([], [])
            live_seqs = set(live)
            keep = []
            for i, (seq, logged_as) in enumerate(zip(columns["seq"], known, strict=True)):
                if logged_as != seq:
                    raise ArchiveError(f"{part.file}: entry {seq} ({columns['org_id'][i]}/{columns['id'][i]}) is not "
                                       "one this log archived (an archive of another database?); nothing of its batch "
                                       "was restored")  # fmt: skip
                if seq not in live_seqs:
                    keep.append(i)
            if keep:
                ensure_partitions(db, *sorted({month_of(columns["received_us"][i]) for i in keep}))
                rows = {name: [values[i] for i in keep] for name, values in columns.items()}
                rows["cost_usd"] = [repr(cost) for cost in rows["cost_usd"]]
                db.execute(SQL.statement("restore_rows"), rows)
        return len(keep), batch.num_rows - len(keep)
