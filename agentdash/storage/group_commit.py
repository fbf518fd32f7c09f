"""Group commit for an event log: one writer thread; the batches waiting when it wakes share one transaction."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

from agentdash.events import Event
from agentdash.storage.base import Overloaded

Pending = tuple[list[Event], Future]  # a batch and the future its producer waits on
GROUP_LIMIT = 256  # batches per transaction at most
_STOP = object()


class GroupCommitWriter:
    """Queues batches for `try_write(group) -> bool`, which commits a group in one transaction and resolves its
    futures; a group that fails is retried batch by batch, so one bad batch cannot fail the others."""

    def __init__(self, try_write: Callable[[list[Pending]], bool], queue_limit: int = 64) -> None:
        self._try_write = try_write
        self._queue: queue.Queue = queue.Queue(maxsize=queue_limit)
        self._thread = threading.Thread(target=self._write_loop, name="event-log-writer", daemon=True)
        self._thread.start()

    def submit(self, events: list[Event]) -> Future[list[bool]]:
        future: Future[list[bool]] = Future()
        try:
            self._queue.put_nowait((events, future))
        except queue.Full:
            raise Overloaded("the event log writer is busy; retry shortly") from None
        return future

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            pending, stop = [item], False
            while len(pending) < GROUP_LIMIT:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                pending.append(more)
            if not self._try_write(pending) and len(pending) > 1:
                for batch in pending:
                    self._try_write([batch])
            if stop:
                return
