"""What the agents people already run send (OpenTelemetry), and how it becomes agentdash events; no HTTP here."""

from __future__ import annotations

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

__all__ = [
    "JSON",
    "LOGS",
    "METRICS",
    "PROTOBUF",
    "TRACES",
    "InvalidExport",
    "Record",
    "Signal",
    "SourceKeeper",
    "SourceKey",
    "SourceStats",
    "Tally",
    "Translation",
    "WrongMediaType",
    "decode_request",
    "encode_answer",
    "encoding_of",
    "error_answer",
    "log_records",
    "metric_records",
    "span_records",
    "success_answer",
    "translate",
]
