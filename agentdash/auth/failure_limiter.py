"""Failure throttling: after too many failed attempts from one client, refuse it for a while."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class Throttled(Exception):
    """Too many failures from this client; the message says what failed and when to come back (HTTP 429)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FailureLimiter:
    """At most `limit` failures per client in any `window_s` seconds; then `retry_after(client)` says how long to wait.

    Only failures count, so a well-behaved client is never slowed down, and a guesser gets `limit` tries a window.
    """

    def __init__(self, limit: int = 10, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 100_000) -> None:  # fmt: skip
        self.limit, self.window_s, self._clock, self._max_clients = limit, window_s, clock, max_clients
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Seconds the client must wait before trying again; 0 when it may try now."""
        with self._lock:
            recent = self._recent(client)
            if len(recent) < self.limit:
                return 0
            return max(1, math.ceil(recent[0] + self.window_s - self._clock()))

    def failed(self, client: str) -> None:
        with self._lock:
            if client not in self._failures and len(self._failures) >= self._max_clients:
                self._forget_idle()
            self._failures.setdefault(client, deque(maxlen=self.limit)).append(self._clock())

    def _recent(self, client: str) -> deque[float]:
        recent = self._failures.get(client, deque())
        horizon = self._clock() - self.window_s
        while recent and recent[0] <= horizon:
            recent.popleft()
        return recent

    def _forget_idle(self) -> None:
        # Bounded memory under a spray of client addresses: drop everyone without a recent failure.
        for client in list(self._failures):
            if not self._recent(client):
                del self._failures[client]
