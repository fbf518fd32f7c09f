"""Dead letters in SQLite: a small file of its own in the data dir, shared by the server and `agentdash dlq`."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from agentdash.storage.dead_letters import Burial, DeadLetter, DeadLetterError, DeadLetterStore
from agentdash.storage.embedded.errors import translated
from agentdash.storage.queries import load_queries

SQL = load_queries("sqlite_dead_letters")
FILE_NAME = "dead-letters.sqlite"  # in the data dir


class SqliteDeadLetterStore(DeadLetterStore):
    """One connection, no lock held between calls, so a server and `agentdash dlq` can share the file."""

    @translated
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        self._db.execute(SQL.statement("connect"))
        self._db.execute(SQL["schema"])
        path.chmod(0o600)  # it names events of every org
        self._lock = threading.Lock()

    @translated
    def bury(self, burial: Burial) -> None:
        params = {"seq": burial.seq, "org_id": burial.org_id, "event_id": burial.event_id, "type": burial.type,
                  "error": burial.error, "failed_us": time.time_ns() // 1000}  # fmt: skip
        with self._lock:
            self._db.execute(SQL["bury"], params)

    @translated
    def unbury(self, seq: int) -> None:
        with self._lock:
            self._db.execute(SQL["unbury"], {"seq": seq})

    @translated
    def list_letters(self, include_dropped: bool = False) -> list[DeadLetter]:
        with self._lock:
            rows = self._db.execute(SQL["list_letters"], {"include_dropped": include_dropped}).fetchall()
        return [_letter(row) for row in rows]

    @translated
    def skipped(self, after_seq: int, last_seq: int) -> set[int]:
        with self._lock:
            rows = self._db.execute(SQL["skipped"], {"after_seq": after_seq, "last_seq": last_seq}).fetchall()
        return {seq for (seq,) in rows}

    @translated
    def request_retry(self, seqs: list[int] | None = None) -> list[DeadLetter]:
        if seqs is None:
            with self._lock:
                return [_letter(row) for row in self._db.execute(SQL["mark_all_retry"]).fetchall()]
        return self._each("mark_retry", seqs, {})

    @translated
    def to_retry(self) -> list[int]:
        with self._lock:
            return [seq for (seq,) in self._db.execute(SQL["to_retry"]).fetchall()]

    @translated
    def forget(self, seqs: list[int]) -> None:
        with self._lock:
            self._db.executemany(SQL["forget"], [{"seq": seq} for seq in seqs])

    @translated
    def drop(self, seqs: list[int]) -> list[DeadLetter]:
        return self._each("drop", seqs, {"dropped_us": time.time_ns() // 1000})

    @translated
    def count(self, org_id: str | None = None) -> int:
        with self._lock:
            return self._db.execute(SQL["count"], {"org_id": org_id}).fetchone()[0]

    @translated
    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _each(self, name: str, seqs: list[int], params: dict) -> list[DeadLetter]:
        """Run a one-row statement per seq in one transaction; any seq it does not match undoes them all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                letters = []
                for seq in seqs:
                    row = self._db.execute(SQL[name], {"seq": seq, **params}).fetchone()
                    if row is None:
                        raise DeadLetterError(f"no dead letter {seq} (see agentdash dlq list)")
                    letters.append(_letter(row))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return letters


def _letter(row: tuple) -> DeadLetter:
    seq, org_id, event_id, type_, error, failed_us, attempts, state = row
    return DeadLetter(seq, org_id, event_id, type_, error, datetime.fromtimestamp(failed_us / 1e6, tz=UTC), attempts,
                      state)  # fmt: skip
