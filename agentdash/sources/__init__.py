"""What the agents people already run send (OpenTelemetry) and what forges send (GitHub webhooks), and how it becomes
agentdash events; no HTTP here."""

from __future__ import annotations

from agentdash.sources.attribution import (
    AGENT_MARKS,
    BUILT_IN,
    AgentMark,
    Attribution,
    InvalidRule,
    OrgAttribution,
    checked_rule,
)
from agentdash.sources.github import (
    InvalidDelivery,
    PullRequestDelivery,
    delivery_id,
    delivery_target,
    ping_zen,
    pull_request_event,
)
from agentdash.sources.keeper import SourceKeeper
from agentdash.sources.otlp_decode import (
    JSON,
    LOGS,
    METRICS,
    PROTOBUF,
    TRACES,
    InvalidExport,
    Signal,
    WrongMediaType,
    decode_request,
    encode_answer,
    encoding_of,
    error_answer,
    success_answer,
)
from agentdash.sources.records import Record, log_records, metric_records, span_records
from agentdash.sources.stats import SourceStats
from agentdash.sources.translate import SourceKey, Tally, Translation, translate
from agentdash.sources.translate_pool import TranslatePool, translate_export

__all__ = [
    "AGENT_MARKS",
    "JSON",
    "LOGS",
    "METRICS",
    "PROTOBUF",
    "TRACES",
    "AgentMark",
    "Attribution",
    "BUILT_IN",
    "InvalidRule",
    "OrgAttribution",
    "checked_rule",
    "InvalidDelivery",
    "InvalidExport",
    "PullRequestDelivery",
    "Record",
    "Signal",
    "SourceKeeper",
    "SourceKey",
    "SourceStats",
    "Tally",
    "Translation",
    "TranslatePool",
    "translate_export",
    "WrongMediaType",
    "decode_request",
    "delivery_id",
    "delivery_target",
    "encode_answer",
    "encoding_of",
    "error_answer",
    "log_records",
    "metric_records",
    "ping_zen",
    "pull_request_event",
    "span_records",
    "success_answer",
    "translate",
]
