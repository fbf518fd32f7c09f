"""Series whose values live elsewhere (the log, the projector, the in-memory counts of ingest and the notifier),
read at scrape time by one custom collector rather than copied into gauges on every change."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agentdash.monitoring.monitor import EventTally
from agentdash.monitoring.reasons import reason_label
from agentdash.projector import Projector
from agentdash.sources import SourceStats
from agentdash.storage import Storage, StorageError

log = logging.getLogger(__name__)

MAX_AGENTS = 50  # agents are named by their senders (service.name): past this many, the rest count as "other"


class Delivered(Protocol):
    """One row of the GitHub webhook's delivery counts (ingest.github_webhook.DeliveryCount)."""

    @property
    def event(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def deliveries(self) -> int: ...


@dataclass
class WatchedState:
    """Where each value read at scrape time lives; None for a part this server does not have."""

    storage: Storage
    projector: Projector | None
    source_stats: SourceStats
    events: EventTally
    github_deliveries: Callable[[], Iterable[Delivered]] | None = None
    alert_deliveries: Callable[[], Mapping[str, int]] | None = None  # the notifier's outcomes since start


class Watched(Collector):
    """Reads WatchedState at every scrape; a storage that cannot be reached shows as agentdash_storage_up 0."""

    def __init__(self, state: WatchedState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        yield from self._storage()
        yield from self._ingest()
        yield from self._otlp()
        yield from self._alerts()

    def _storage(self) -> Iterator[Metric]:
        s = self.state
        up = GaugeMetricFamily("agentdash_storage_up", "1 when the last scrape could read the storage, else 0")
        try:
            footprint = s.storage.footprint()
            status = s.projector.status() if s.projector else None
            dead = s.storage.dead_letters.count()
        except StorageError as exc:
            log.warning("metrics scrape could not read the storage: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield _gauge("agentdash_log_events", "Entries in the event log", footprint.events)
        yield _gauge("agentdash_log_bytes", "Bytes of the event log on disk (embedded: its files; PostgreSQL: its "
                     "table and indexes)", footprint.bytes)  # fmt: skip
        yield _gauge("agentdash_dedupe_index_entries", "Keys in the dedupe index", footprint.dedupe_entries)
        yield _gauge("agentdash_dedupe_index_bytes", "Approximate bytes of the dedupe index", footprint.dedupe_bytes)
        yield _gauge("agentdash_dead_letters", "Log entries the fold failed on, set aside until retried or dropped "
                     "(agentdash dlq)", dead)  # fmt: skip
        if status is None or s.projector is None:
            return
        yield _gauge("agentdash_fold_lag_events", "Logged entries not yet folded", status.lag_events)
        yield _gauge("agentdash_fold_lag_seconds", "Age of the oldest entry not yet folded", status.lag_seconds)
        yield _gauge("agentdash_events_projected", "Log position the read models are folded up to",
                     status.events_projected)  # fmt: skip
        if status.last_fold_at_us:
            yield _gauge("agentdash_last_fold_timestamp_seconds", "When the read models last changed (Unix time)",
                         status.last_fold_at_us / 1e6)  # fmt: skip
        yield _gauge("agentdash_projector_heartbeat_age_seconds", "Seconds since the projector last finished a "
                     "chunk or a catch-up", max(0.0, time.time() - s.projector.heartbeat_us / 1e6))  # fmt: skip

    def _ingest(self) -> Iterator[Metric]:
        accepted = CounterMetricFamily("agentdash_events_accepted", "Events stored in the log, by source",
                                       labels=["source"])  # fmt: skip
        duplicate = CounterMetricFamily("agentdash_events_duplicate", "Events the log already had, by source",
                                        labels=["source"])  # fmt: skip
        rejected = CounterMetricFamily("agentdash_events_rejected", "Events (OTLP: records) refused, by source and "
                                       "reason", labels=["source", "reason"])  # fmt: skip
        n_accepted, n_duplicate, reasons = self.state.events.snapshot()
        accepted.add_metric(["events"], n_accepted)
        duplicate.add_metric(["events"], n_duplicate)
        for reason, n in sorted(reasons.items()):
            rejected.add_metric(["events", reason], n)
        otlp_reasons: dict[str, int] = {}
        otlp_accepted = otlp_duplicate = 0
        for count in self.state.source_stats.report():
            otlp_accepted += count.events_accepted
            otlp_duplicate += count.events_duplicate
            for text, n in count.rejected_because.items():
                label = reason_label(text)
                otlp_reasons[label] = otlp_reasons.get(label, 0) + n
        accepted.add_metric(["otlp"], otlp_accepted)
        duplicate.add_metric(["otlp"], otlp_duplicate)
        for reason, n in sorted(otlp_reasons.items()):
            rejected.add_metric(["otlp", reason], n)
        if self.state.github_deliveries is not None:
            deliveries = CounterMetricFamily("agentdash_github_deliveries", "GitHub webhook deliveries by event "
                                             "and outcome", labels=["event", "outcome"])  # fmt: skip
            stored = {"stored": 0, "duplicate": 0}
            for row in self.state.github_deliveries():
                deliveries.add_metric([row.event, row.outcome], row.deliveries)
                if row.outcome in stored:
                    stored[row.outcome] += row.deliveries
            accepted.add_metric(["github"], stored["stored"])
            duplicate.add_metric(["github"], stored["duplicate"])
            yield deliveries
        yield accepted
        yield duplicate
        yield rejected

    def _otlp(self) -> Iterator[Metric]:
        per_agent: dict[str, list[int]] = {}
        for count in self.state.source_stats.report():
            totals = per_agent.setdefault(count.agent, [0, 0, 0])
            totals[0] += count.mapped
            totals[1] += count.ignored
            totals[2] += count.rejected
        ranked = sorted(per_agent.items(), key=lambda item: -sum(item[1]))
        shown = dict(ranked[:MAX_AGENTS])
        if len(ranked) > MAX_AGENTS:
            shown["other"] = [sum(t[i] for _, t in ranked[MAX_AGENTS:]) for i in range(3)]
        records = CounterMetricFamily("agentdash_otlp_records", "OTLP records by agent (service.name) and outcome: "
                                      "mapped to events, ignored, rejected", labels=["agent", "outcome"])  # fmt: skip
        for agent, (mapped, ignored, rejected) in sorted(shown.items()):
            records.add_metric([agent, "mapped"], mapped)
            records.add_metric([agent, "ignored"], ignored)
            records.add_metric([agent, "rejected"], rejected)
        yield records

    def _alerts(self) -> Iterator[Metric]:
        if self.state.alert_deliveries is None:
            return
        family = CounterMetricFamily("agentdash_alert_deliveries", "Alert webhook attempts by outcome: delivered, "
                                     "retrying (failed, will retry), failed (gave up)", labels=["outcome"])  # fmt: skip
        for outcome, n in sorted(self.state.alert_deliveries().items()):
            family.add_metric([outcome], n)
        yield family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
