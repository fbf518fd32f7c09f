"""One server's Prometheus registry and the instruments that are pushed to (requests, folds, ingest outcomes)."""

from __future__ import annotations

import threading
from collections import Counter

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.registry import Collector

# Requests: from a cached /healthz to a year's metrics query; folds: from an empty chunk to 250k entries.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
FOLD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class EventTally:
    """Events of /v1/events since start: accepted, duplicates, and rejections per reason label (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accepted = 0
        self.duplicates = 0
        self.rejected: Counter[str] = Counter()

    def add(self, accepted: int, duplicates: int, rejected: list[str]) -> None:
        with self._lock:
            self.accepted += accepted
            self.duplicates += duplicates
            self.rejected.update(rejected)

    def snapshot(self) -> tuple[int, int, dict[str, int]]:
        with self._lock:
            return self.accepted, self.duplicates, dict(self.rejected)


class Monitor:
    """A registry of its own (not prometheus_client's global one), so that several servers in one process, as in
    the tests, never add to each other's series."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "agentdash_http_request_duration_seconds",
            "HTTP requests by port, method, route template and status, with their latency",
            ["port", "method", "route", "status"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.folds = Histogram(
            "agentdash_fold_duration_seconds",
            "Time to fold one chunk of the log into the read models (checkpoint included)",
            buckets=FOLD_BUCKETS,
            registry=self.registry,
        )
        self.events = EventTally()

    def fold_observed(self, entries: int, seconds: float) -> None:
        """The projector's hook: one chunk of `entries` log entries took `seconds`."""
        self.folds.observe(seconds)

    def watch(self, collector: Collector) -> None:
        """Add a collector whose values are read at scrape time."""
        self.registry.register(collector)

    def exposition(self) -> bytes:
        """Every series in the Prometheus text format."""
        return generate_latest(self.registry)
