"""A tiny OTLP/HTTP receiver that keeps every export it gets (raw, decoded), for tests and recordings.

With `forward_to` it also passes each export on, byte for byte, to a real receiver (agentdash's ingest port) and
answers the exporter with what that receiver said: a recording on the way, and the bytes to re-send later.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

# path -> (signal, request message type, response message type)
SIGNALS: dict[str, tuple[str, type[Message], type[Message]]] = {
    "/v1/logs": ("logs", logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
    "/v1/metrics": ("metrics", metrics_service_pb2.ExportMetricsServiceRequest,
                    metrics_service_pb2.ExportMetricsServiceResponse),
    "/v1/traces": ("traces", trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
}  # fmt: skip
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# The request headers an OTLP receiver judges an export by; forwarded and re-sent as they came.
FORWARDED_HEADERS = ("Content-Type", "Content-Encoding", "Authorization")


@dataclass(frozen=True)
class Upstream:
    """What the upstream receiver answered a forwarded export."""

    status: int
    content_type: str
    body: bytes
    retry_after: str | None = None


@dataclass(frozen=True)
class Export:
    """One OTLP/HTTP export as received: raw body (decompressed), its headers and the decoded request."""

    signal: str  # logs | metrics | traces
    content_type: str
    content_encoding: str
    headers: dict[str, str]
    raw: bytes
    body: dict[str, Any]  # the Export…ServiceRequest in OTLP/JSON form (MessageToDict)
    received_at: float
    wire: bytes = b""  # the body exactly as it came (compressed when Content-Encoding says so)
    upstream: Upstream | None = None  # the forwarded export's answer (with `forward_to` only)

    @property
    def path(self) -> str:
        return f"/v1/{self.signal}"

    def header(self, name: str) -> str | None:
        """A request header by name, in any case (clients differ: `Authorization`, `authorization`)."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    def forwarded_headers(self) -> dict[str, str]:
        return judged_headers(self.headers)

    def rejected(self) -> tuple[int, str]:
        """The upstream's partial_success: records it dropped and its message ((0, "") for none or no answer)."""
        if self.upstream is None or self.upstream.status != 200:
            return 0, ""
        answer = SIGNALS[self.path][2]()
        if self.upstream.content_type.startswith(JSON):
            json_format.Parse(self.upstream.body or b"{}", answer, ignore_unknown_fields=True)
        else:
            answer.ParseFromString(self.upstream.body)
        partial = to_dict(answer).get("partialSuccess", {})
        counts = [int(partial.get(kind, 0)) for kind in ("rejectedLogRecords", "rejectedDataPoints", "rejectedSpans")]
        return sum(counts), str(partial.get("errorMessage", ""))


def judged_headers(headers: dict[str, str]) -> dict[str, str]:
    """The headers of FORWARDED_HEADERS that the exporter sent, with their values as sent."""
    wanted = {name.lower() for name in FORWARDED_HEADERS}
    return {name: value for name, value in headers.items() if name.lower() in wanted}


def forward(client: httpx.Client, upstream: str, path: str, wire: bytes, headers: dict[str, str]) -> Upstream:
    """POST an export to upstream + path as it came (body and judged headers); the upstream's answer."""
    answer = client.post(upstream.rstrip("/") + path, content=wire, headers=headers)
    return Upstream(answer.status_code, answer.headers.get("content-type", ""), answer.content,
                    answer.headers.get("retry-after"))  # fmt: skip


def decode(signal_path: str, content_type: str, raw: bytes) -> Message:
    """Parse an OTLP request body (protobuf or JSON) into its Export…ServiceRequest message."""
    _, request_type, _ = SIGNALS[signal_path]
    message = request_type()
    if content_type.startswith(JSON):
        # OTLP/JSON puts trace and span ids in hex, protobuf's JSON mapping in base64; the Python
        # parser only knows base64, so ids are read as given and kept exactly in `body` below.
        json_format.Parse(raw, message, ignore_unknown_fields=True)
    else:
        message.ParseFromString(raw)
    return message


def _decompress(data: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "deflate":
        return zlib.decompress(data)
    return data


def to_dict(message: Message) -> dict[str, Any]:
    """The OTLP/JSON form of a decoded request: camelCase names, int64 as strings, bytes ids as base64."""
    return json_format.MessageToDict(message)


@dataclass
class OtlpRecorder:
    """An OTLP/HTTP server on 127.0.0.1 (a free port unless given) that records every export.

    Alone it answers 200; with `forward_to` (a receiver's base URL) it forwards each export and answers as that did.
    """

    port: int = 0
    forward_to: str | None = None
    exports: list[Export] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # requests it could not decode (answered 400) or forward
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _client: httpx.Client | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _busy: list[int] = field(default_factory=lambda: [0])  # requests being handled (a box the handler shares)

    @property
    def url(self) -> str:
        """The base URL, what OTEL_EXPORTER_OTLP_ENDPOINT takes (exporters append /v1/<signal>)."""
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> OtlpRecorder:
        if self.forward_to is not None:
            self._client = httpx.Client(timeout=30, trust_env=False)  # loopback: no proxy from the environment
        forwarder = self._forward if self.forward_to is not None else None
        handler = _handler(self._record, self._fail, forwarder, self._busy, self._lock)
        self._server = server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        server.daemon_threads = True
        # A short poll, so that stop() returns at once (tests start and stop one recorder each).
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="otlp-recorder", daemon=True)  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> OtlpRecorder:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _record(self, export: Export) -> None:
        with self._lock:
            self.exports.append(export)

    def _fail(self, reason: str) -> None:
        with self._lock:
            self.failures.append(reason)

    def _forward(self, path: str, wire: bytes, headers: dict[str, str]) -> Upstream:
        assert self._client is not None and self.forward_to is not None
        return forward(self._client, self.forward_to, path, wire, headers)

    def resend(self, to: str | None = None) -> list[Upstream]:
        """Send every recorded export again, byte for byte and in arrival order, to `to` (default: forward_to)."""
        target = to or self.forward_to
        assert target is not None, "nowhere to send: give `to` or forward_to"
        with httpx.Client(timeout=30, trust_env=False) as client:
            return [forward(client, target, e.path, e.wire, e.forwarded_headers()) for e in self.snapshot()]

    def snapshot(self, signal: str | None = None) -> list[Export]:
        """The exports so far (of one signal when given), in arrival order."""
        with self._lock:
            return [e for e in self.exports if signal is None or e.signal == signal]

    def log_records(self) -> list[dict[str, Any]]:
        """Every log record received, each with its resource's attributes under `resource` (flat dicts)."""
        found = []
        for export in self.snapshot("logs"):
            for resource_logs in export.body.get("resourceLogs", []):
                resource = attributes(resource_logs.get("resource", {}).get("attributes", []))
                for scope_logs in resource_logs.get("scopeLogs", []):
                    for record in scope_logs.get("logRecords", []):
                        found.append({**record, "attrs": attributes(record.get("attributes", [])),
                                      "resource": resource, "scope": scope_logs.get("scope", {})})  # fmt: skip
        return found

    def wait_idle(self, quiet: float = 0.3, timeout: float = 15) -> bool:
        """Wait until no request is being handled and none has come for `quiet` seconds (late exports settle)."""
        deadline = time.monotonic() + timeout
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            with self._lock:
                count, busy = len(self.exports) + len(self.failures), self._busy[0]
            if count != seen or busy:
                seen, since = count, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return True
            time.sleep(0.05)
        return False

    def wait_for(self, predicate: Callable[[OtlpRecorder], bool], timeout: float = 15) -> bool:
        """Poll until predicate(self) holds or the timeout passes; the exporters send on their own timers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.1)
        return predicate(self)


def attribute_value(value: dict[str, Any]) -> Any:
    """An OTLP AnyValue (JSON form) as a plain Python value."""
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [attribute_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return attributes(value["kvlistValue"].get("values", []))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def attributes(kvs: list[dict[str, Any]]) -> dict[str, Any]:
    """A list of OTLP KeyValue (JSON form) as a dict."""
    return {kv["key"]: attribute_value(kv.get("value", {})) for kv in kvs}


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, by Content-Length or chunked (Node's exporters stream without a length)."""
    if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
        chunks: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()  # the CRLF after each chunk
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


Forwarder = Callable[[str, bytes, dict[str, str]], Upstream]


def _handler(record: Callable[[Export], None], fail: Callable[[str], None], forwarder: Forwarder | None,
             busy: list[int], lock: threading.Lock) -> type[BaseHTTPRequestHandler]:  # fmt: skip
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the exporters reuse connections

        def do_POST(self) -> None:
            with lock:
                busy[0] += 1
            try:
                self._export()
            finally:
                with lock:
                    busy[0] -= 1

        def _export(self) -> None:
            path = self.path.split("?", 1)[0]
            data = read_body(self)
            if path not in SIGNALS:
                self._answer(404, "text/plain", b"unknown OTLP path")
                return
            content_type = (self.headers.get("Content-Type") or PROTOBUF).split(";", 1)[0].strip().lower()
            encoding = (self.headers.get("Content-Encoding") or "").strip().lower()
            signal, _, response_type = SIGNALS[path]
            headers = dict(self.headers.items())
            upstream = self._forward(forwarder, path, data, headers) if forwarder else None
            if forwarder and upstream is None:
                return  # the upstream could not be reached: answered 502, nothing recorded
            try:
                raw = _decompress(data, encoding)
                message = decode(path, content_type, raw)
            except (DecodeError, json_format.ParseError, OSError, zlib.error, ValueError) as error:
                fail(f"{path} {content_type} {encoding}: {error}")
                if upstream is None:
                    self._answer(400, "text/plain", str(error).encode())
                else:  # the upstream judged it; the exporter hears that
                    self._answer(upstream.status, upstream.content_type, upstream.body, upstream.retry_after)
                return
            body = json.loads(raw) if content_type.startswith(JSON) else to_dict(message)
            record(Export(signal, content_type, encoding, headers, raw, body, time.time(), data, upstream))
            if upstream is not None:
                self._answer(upstream.status, upstream.content_type, upstream.body, upstream.retry_after)
            elif content_type.startswith(JSON):
                self._answer(200, JSON, json_format.MessageToJson(response_type()).encode())
            else:
                self._answer(200, PROTOBUF, response_type().SerializeToString())

        def _forward(self, forwarder: Forwarder, path: str, data: bytes, headers: dict[str, str]) -> Upstream | None:
            try:
                return forwarder(path, data, judged_headers(headers))
            except httpx.HTTPError as error:
                fail(f"{path}: forwarding failed: {error!r}")
                self._answer(502, "text/plain", f"upstream unreachable: {error!r}".encode())
                return None

        def _answer(self, status: int, content_type: str, payload: bytes, retry_after: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the exporters poll often; the recorder's lists are the log

    return Handler
