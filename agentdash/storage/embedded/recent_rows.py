"""Rows the log writer committed lately, held so the projector need not read them back from disk."""

from __future__ import annotations

import threading
from collections import deque


class RecentRows:
    """A bounded FIFO of committed row batches with dense, increasing seqs (row[0]).

    Reading rows back through sqlite3 costs the projector ~1.5 us/row of GIL time that ingest
    then waits for; rows still in memory cost nothing. Past `limit` rows the oldest are dropped
    and readers fall back to disk, so memory stays bounded however far the projector lags.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._batches: deque[list[tuple]] = deque()
        self._count = 0
        self._lock = threading.Lock()

    def append(self, rows: list[tuple]) -> None:
        if not rows:
            return
        with self._lock:
            self._batches.append(rows)
            self._count += len(rows)
            while self._count > self.limit:
                self._count -= len(self._batches.popleft())

    def take(self, after_seq: int, limit: int) -> list[tuple] | None:
        """Up to `limit` rows with seq > after_seq, or None when memory does not hold seq after_seq + 1."""
        with self._lock:
            while self._batches and self._batches[0][-1][0] <= after_seq:  # folded already: forget
                self._count -= len(self._batches.popleft())
            if not self._batches or self._batches[0][0][0] > after_seq + 1:
                return None
            taken: list[tuple] = []
            for batch in self._batches:
                start = max(0, after_seq + 1 - batch[0][0])
                taken.extend(batch[start : start + limit - len(taken)])
                if len(taken) >= limit:
                    break
            return taken
