"""Failure throttling: after too many failed attempts from one client, refuse it for a while."""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

IPV6_PREFIX = 64  # one subscriber usually holds a whole /64: counting its addresses apart would multiply its budget


class Throttled(Exception):
    """Too many failures from this client; the message says what failed and when to come back (HTTP 429)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def client_address(host: str | None) -> str:
    """The peer's address in canonical form, or "unknown" for anything that is not an IP address.

    Only what uvicorn reports (the socket peer, or a trusted proxy's X-Forwarded-For), never arbitrary header text
    reaches a log line or the limiter.
    """
    try:
        return str(ipaddress.ip_address((host or "").strip()))
    except ValueError:
        return "unknown"


def throttle_key(address: str) -> str:
    """The unit one failure budget covers: an IPv4 address, or the IPv6 /64 holding the address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


class FailureLimiter:
    """At most `limit` failures per client in any `window_s` seconds; then `retry_after(client)` says how long to wait.

    Only failures count, so a well-behaved client is never slowed down, and a guesser gets `limit` tries a window.
    Memory is bounded by `max_clients`, each failure costs O(1) whatever the number of clients: the table is kept in
    order of last failure, so idle clients are found at its front.
    """

    def __init__(self, limit: int = 10, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 100_000) -> None:  # fmt: skip
        self.limit, self.window_s, self._clock, self._max_clients = limit, window_s, clock, max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Seconds the client must wait before trying again; 0 when it may try now."""
        with self._lock:
            recent = self._recent(throttle_key(client))
            if len(recent) < self.limit:
                return 0
            return max(1, math.ceil(recent[0] + self.window_s - self._clock()))

    def failed(self, client: str) -> None:
        key = throttle_key(client)
        with self._lock:
            recent = self._failures.get(key)
            if recent is None:
                self._make_room()
                recent = self._failures[key] = deque(maxlen=self.limit)
            else:
                self._failures.move_to_end(key)
            recent.append(self._clock())

    def _recent(self, key: str) -> deque[float]:
        recent = self._failures.get(key, deque())
        horizon = self._clock() - self.window_s
        while recent and recent[0] <= horizon:
            recent.popleft()
        return recent

    def _make_room(self) -> None:
        # Idle clients first (each is dropped once, so this is O(1) amortised); under a spray of fresh addresses
        # the least recently failing client goes, which is the one with the least of its budget still in force.
        horizon = self._clock() - self.window_s
        while self._failures:
            oldest = next(iter(self._failures.values()))
            if oldest and oldest[-1] > horizon and len(self._failures) < self._max_clients:
                return
            self._failures.popitem(last=False)
