"""OTLP export requests flattened into records: one per log record, span or metric data point, with its name,
times and attributes (the record's own over its resource's), and a fingerprint that names it for ever."""

# A cumulative sum's point is a running total of its series (resource, metric, attributes, start time): its
# fingerprint is the series' and the total's, so a re-export of an unchanged total is the same record.

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

Scalar = str | int | float | bool


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a microsecond more per record
class Record:
    """One log record, span or metric data point, as the mappings see it."""

    signal: str  # "logs", "traces" or "metrics"
    name: str  # the event name of a log record, a span's name, a metric's name
    time_us: int  # when it happened (a span: its start)
    attributes: dict[str, Scalar]
    fingerprint: str  # the same for the same record, whatever its encoding, batch or retry
    end_us: int | None = None  # a span's end
    failed: bool = False  # a span whose status is ERROR
    value: float | None = None  # a metric data point's value
    trace_id: str = ""  # hex; "" when the record carries none
    series: str = ""  # a cumulative sum's point: the fingerprint of its series ("" for any other record)
    start_us: int = 0  # a metric data point's start time (a cumulative series': when its counting began)

    @property
    def agent(self) -> str:
        return str(self.attributes.get("service.name") or "unknown")

    def text(self, key: str) -> str | None:
        """An attribute as non-empty text, or None."""
        value = self.attributes.get(key)
        if value.__class__ is str:  # the hot path: nearly every attribute read is text
            return value or None
        return None if value is None else str(value)

    def number(self, key: str) -> float | None:
        """An attribute as a number (agents send "76" as often as 76), or None when it is not one."""
        value = self.attributes.get(key)
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, int | float):
            return value
        try:
            return float(value)
        except ValueError:
            return None

    def flag(self, key: str) -> bool | None:
        value = self.attributes.get(key)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return None


def log_records(request: Any) -> Iterator[Record]:
    for resource_logs in request.resource_logs:
        resource = attributes_of(resource_logs.resource.attributes)
        resource_key = resource_logs.resource.SerializeToString(deterministic=True)
        for scope_logs in resource_logs.scope_logs:
            for log in scope_logs.log_records:
                attributes = attributes_of(log.attributes, dict(resource))
                yield Record(
                    signal="logs",
                    name=_event_name(log, attributes),
                    time_us=(log.time_unix_nano or log.observed_time_unix_nano) // 1000,
                    attributes=attributes,
                    fingerprint=_fingerprint(resource_key, log.SerializeToString(deterministic=True)),
                    trace_id=log.trace_id.hex() if any(log.trace_id) else "",
                )


def span_records(request: Any) -> Iterator[Record]:
    for resource_spans in request.resource_spans:
        resource = attributes_of(resource_spans.resource.attributes)
        resource_key = resource_spans.resource.SerializeToString(deterministic=True)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield Record(
                    signal="traces",
                    name=span.name,
                    time_us=span.start_time_unix_nano // 1000,
                    end_us=span.end_time_unix_nano // 1000,
                    attributes={**resource, **attributes_of(span.attributes)},
                    failed=span.status.code == 2,  # STATUS_CODE_ERROR
                    fingerprint=_fingerprint(resource_key, span.trace_id + span.span_id),
                    trace_id=span.trace_id.hex(),
                )


def metric_records(request: Any) -> Iterator[Record]:
    """Number data points of sums and gauges (histograms and summaries carry nothing we count yet)."""
    for resource_metrics in request.resource_metrics:
        resource = attributes_of(resource_metrics.resource.attributes)
        resource_key = resource_metrics.resource.SerializeToString(deterministic=True)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                points = getattr(metric, kind).data_points if kind in ("sum", "gauge") else []
                if not points:  # histograms, summaries: one record for the count of ignored records
                    yield Record("metrics", metric.name, 0, resource, _fingerprint(resource_key, metric.name.encode()))
                cumulative = kind == "sum" and metric.sum.aggregation_temporality == _CUMULATIVE
                for point in points:
                    value = point.as_double if point.WhichOneof("value") == "as_double" else point.as_int
                    series = _series(resource_key, metric.name, point) if cumulative else ""
                    yield Record(
                        signal="metrics",
                        name=metric.name,
                        time_us=point.time_unix_nano // 1000,
                        attributes={**resource, **attributes_of(point.attributes)},
                        value=value,
                        fingerprint=_fingerprint(series.encode(), repr(value).encode()) if series
                        else _fingerprint(resource_key, metric.name.encode() + point.SerializeToString()),
                        series=series,
                        start_us=point.start_time_unix_nano // 1000,
                    )  # fmt: skip


_CUMULATIVE = 2  # AGGREGATION_TEMPORALITY_CUMULATIVE


def _series(resource_key: bytes, name: str, point: Any) -> str:
    """A cumulative point's series: resource, metric, attributes, start time (a new start is a reset: a new series).

    Without a start time the point's own time joins it, so that each such point is a series (and a record) of its own.
    """
    key = b"".join(kv.SerializeToString(deterministic=True) for kv in point.attributes)
    start = point.start_time_unix_nano or point.time_unix_nano
    return _fingerprint(resource_key, name.encode() + b"\x00" + key + b"\x00" + str(start).encode())


def attributes_of(key_values: Any, into: dict[str, Scalar] | None = None) -> dict[str, Scalar]:
    """OTLP KeyValues as plain values (added to `into`, over what it holds); arrays and maps become JSON text."""
    found: dict[str, Scalar] = {} if into is None else into
    for kv in key_values:  # the ingest hot path: one WhichOneof and one getattr per scalar
        value = kv.value
        kind = value.WhichOneof("value")
        if kind in _SCALARS:
            found[kv.key] = getattr(value, kind)
        elif kind is not None:
            found[kv.key] = msgspec.json.encode(_plain(value)).decode()
    return found


_SCALARS = frozenset({"string_value", "int_value", "double_value", "bool_value"})


def _plain(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_plain(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def _event_name(log: Any, attributes: dict[str, Scalar]) -> str:
    """The record's event name, from wherever its agent puts it.

    Claude Code: body `claude_code.api_request`, `event.name` = `api_request`. Gemini CLI and Codex: `event.name` =
    `gemini_cli.api_request` / `codex.api_request` (Codex fills OTLP's event_name with a source location). Other
    exporters: OTLP's event_name field.
    """
    name = str(attributes.get("event.name") or "")
    if "." in name:
        return name
    body = log.body.string_value if log.body.WhichOneof("value") == "string_value" else ""
    if name and body.endswith("." + name) and " " not in body:
        return body
    if log.event_name and " " not in log.event_name:
        return str(log.event_name)
    return name or (body if body and " " not in body and len(body) <= 128 else "log")


def _fingerprint(resource_key: bytes, record_key: bytes) -> str:
    return hashlib.blake2b(resource_key + b"\x00" + record_key, digest_size=12).hexdigest()
