"""Self-monitoring: one registry of Prometheus series per server (requests, ingest, folds, gauges read at scrape
time) and the readiness checks behind /readyz."""

from __future__ import annotations

from agentdash.monitoring.gauges import Watched, WatchedState
from agentdash.monitoring.monitor import EventTally, Monitor
from agentdash.monitoring.readiness import Readiness, ReadinessReport
from agentdash.monitoring.reasons import reason_label
from agentdash.monitoring.request_metrics import RequestMetrics

__all__ = ["EventTally", "Monitor", "Readiness", "ReadinessReport", "RequestMetrics", "Watched", "WatchedState",
           "reason_label"]  # fmt: skip
