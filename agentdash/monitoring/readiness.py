"""/readyz: whether this server should get traffic: its storage answers, its projector runs, the fold keeps up."""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from agentdash.projector import Projector
from agentdash.storage import Storage, StorageError


class ReadinessReport(msgspec.Struct):
    ready: bool
    reasons: list[str]  # empty when ready; else one sentence per failed check
    lag_events: int | None = None
    lag_seconds: float | None = None
    projector_idle_seconds: float | None = None  # since the projector last finished a chunk or a catch-up


class Readiness:
    """The checks, with their bounds: fold lag at most `max_lag_s`; the projector silent at most `max_idle_s`
    (a stopped or always-failing job: with no events coming, the lag alone would never show it)."""

    def __init__(self, storage: Storage, projector: Projector | None, max_lag_s: float = 60.0,
                 max_idle_s: float = 61.0, clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.storage = storage
        self.projector = projector
        self.max_lag_s = max_lag_s
        self.max_idle_s = max_idle_s
        self.clock = clock

    def check(self) -> ReadinessReport:
        """Run every check; reads the storage (call it off the event loop)."""
        if self.projector is None:  # an ingest app without a projector (tests): only the storage
            try:
                self.storage.log_position()
            except StorageError as exc:
                return ReadinessReport(False, [f"storage unreachable: {exc}"])
            return ReadinessReport(True, [])
        reasons = []
        idle = max(0.0, self.clock() - self.projector.heartbeat_us / 1e6)
        if idle > self.max_idle_s:
            reasons.append(f"projector not running: no fold pass finished for {idle:.0f} s "
                           f"(bound {self.max_idle_s:g} s)")  # fmt: skip
        try:
            status = self.projector.status()
        except StorageError as exc:
            return ReadinessReport(False, [f"storage unreachable: {exc}", *reasons], projector_idle_seconds=idle)
        if status.lag_seconds > self.max_lag_s:
            reasons.append(f"fold lag {status.lag_seconds:.1f} s ({status.lag_events} events) is above the bound "
                           f"of {self.max_lag_s:g} s (--ready-max-lag)")  # fmt: skip
        return ReadinessReport(not reasons, reasons, status.lag_events, status.lag_seconds, round(idle, 3))
