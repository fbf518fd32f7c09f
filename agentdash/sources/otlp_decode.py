"""OTLP/HTTP bodies into the official protobuf messages (`opentelemetry-proto`): protobuf or JSON, gzip or not.

Answers go back in the request's encoding, as the OTLP/HTTP specification asks: the export response on success,
a `google.rpc.Status` on error.
"""

from __future__ import annotations

import base64
import re
import zlib
from dataclasses import dataclass
from typing import Any

import msgspec
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from agentdash.events import InvalidEvent, NotJson, TooLarge

PROTOBUF, JSON = "application/x-protobuf", "application/json"
MAX_DECODED_BYTES = 16 * 1024 * 1024  # after gzip: 512 records of a few KiB each fit many times over


class InvalidExport(InvalidEvent):
    """A body that is not an OTLP export request (HTTP 400); nothing of it is stored."""


class WrongMediaType(NotJson):
    """A Content-Type or Content-Encoding that OTLP/HTTP does not use (HTTP 415)."""


@dataclass(frozen=True)
class Signal:
    """One of the three OTLP signals: its path, request and response messages, and its partial-success field."""

    name: str
    request: type[Message]
    response: type[Message]
    rejected_field: str


LOGS = Signal("logs", ExportLogsServiceRequest, ExportLogsServiceResponse, "rejected_log_records")
METRICS = Signal("metrics", ExportMetricsServiceRequest, ExportMetricsServiceResponse, "rejected_data_points")
TRACES = Signal("traces", ExportTraceServiceRequest, ExportTraceServiceResponse, "rejected_spans")


def encoding_of(content_type: str) -> str:
    """PROTOBUF or JSON from a Content-Type header; WrongMediaType otherwise."""
    media = content_type.split(";")[0].strip().lower()
    if media in (PROTOBUF, JSON):
        return media
    raise WrongMediaType(f"Content-Type must be {PROTOBUF} or {JSON}, got {media or 'none'!r}")


def decode_request(signal: Signal, body: bytes, encoding: str, content_encoding: str) -> Any:
    """The export request in `body`; InvalidExport, TooLarge or WrongMediaType naming the problem."""
    data = _decompressed(body, content_encoding.strip().lower())
    message = signal.request()
    if encoding == PROTOBUF:
        try:
            message.ParseFromString(data)
        except DecodeError as exc:
            raise InvalidExport(f"body is not a protobuf {signal.request.__name__}: {exc}") from None
        return message
    try:
        tree = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidExport(f"body is not JSON: {exc}") from None
    except RecursionError:
        raise InvalidExport("body nests JSON arrays or objects too deeply") from None
    try:
        json_format.ParseDict(hex_ids_to_base64(tree), message, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, TypeError, ValueError) as exc:
        raise InvalidExport(f"body is not an OTLP JSON {signal.request.__name__}: {exc}") from None
    return message


def encode_answer(message: Message, encoding: str) -> bytes:
    if encoding == PROTOBUF:
        return message.SerializeToString()
    return json_format.MessageToJson(message, indent=None).encode()


def success_answer(signal: Signal, rejected: int, error_message: str) -> Message:
    """The export response: empty when all was taken, else `partial_success` with the count and the reasons."""
    response = signal.response()
    if rejected:
        partial = response.partial_success
        setattr(partial, signal.rejected_field, rejected)
        partial.error_message = error_message
    return response


# gRPC codes for the Status body (the OTLP/HTTP status code is what clients act on; this is for people).
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 413: 8, 415: 3, 429: 8, 503: 14}


def error_answer(http_status: int, message: str) -> Message:
    return Status(code=_GRPC_CODES.get(http_status, 13), message=message)


def _decompressed(body: bytes, content_encoding: str) -> bytes:
    if content_encoding in ("", "identity"):
        if len(body) > MAX_DECODED_BYTES:
            raise TooLarge(f"body is {len(body)} bytes; at most {MAX_DECODED_BYTES}")
        return body
    if content_encoding != "gzip":
        raise WrongMediaType(f"Content-Encoding must be gzip or none, got {content_encoding!r}")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, MAX_DECODED_BYTES + 1)  # bounded: a small bomb cannot fill memory
    except zlib.error as exc:
        raise InvalidExport(f"body is not valid gzip: {exc}") from None
    if len(data) > MAX_DECODED_BYTES:
        raise TooLarge(f"body inflates to more than {MAX_DECODED_BYTES} bytes")
    if not inflater.eof:
        raise InvalidExport("body is truncated gzip")
    return data


_HEX_ID = re.compile(r"[0-9a-fA-F]{16}|[0-9a-fA-F]{32}")
_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})


def hex_ids_to_base64(tree: Any) -> Any:
    """OTLP JSON writes trace and span ids in hex where protobuf's JSON mapping expects base64."""
    if isinstance(tree, dict):
        return {
            key: _hex_to_base64(value) if key in _ID_KEYS and isinstance(value, str) else hex_ids_to_base64(value)
            for key, value in tree.items()
        }
    if isinstance(tree, list):
        return [hex_ids_to_base64(item) for item in tree]
    return tree


def _hex_to_base64(value: str) -> str:
    if not value:
        return value
    if not _HEX_ID.fullmatch(value):
        raise InvalidExport(f"trace and span ids must be 16 or 32 hex digits, got {value[:40]!r}")
    return base64.b64encode(bytes.fromhex(value)).decode()
