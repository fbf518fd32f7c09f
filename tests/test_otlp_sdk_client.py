"""The OpenTelemetry Python SDK's own OTLP/HTTP exporters as a second, generic client: GenAI-convention spans,
gzip, logs, and a batch over the size limit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import Status, StatusCode

RESOURCE = {"service.name": "my-agent", "service.version": "0.1", "user.email": "ada@example.com", "team.id": "core"}


@pytest.fixture
def sdk_server(server):
    server.otlp_key = server.create_ingest_key("acme", name="sdk")
    return server


def tracer_provider(server, compression: Compression = Compression.Gzip) -> tuple[TracerProvider, OTLPSpanExporter]:
    exporter = OTLPSpanExporter(endpoint=f"{server.ingest_url}/v1/traces", compression=compression,
                                headers={"Authorization": f"Bearer {server.otlp_key}"})  # fmt: skip
    provider = TracerProvider(resource=Resource.create(RESOURCE))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def metrics(server, day) -> dict:
    return server.org_metrics("acme", day, day)


def test_genai_invoke_agent_spans_are_runs_and_chat_spans_their_usage(sdk_server):
    provider, _ = tracer_provider(sdk_server)
    tracer = provider.get_tracer("my-agent")
    for turn, failed in ((1, False), (2, True)):
        with tracer.start_as_current_span("invoke_agent my-agent") as agent_span:
            agent_span.set_attributes({"gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": "conv-1"})
            with tracer.start_as_current_span("chat claude") as chat:
                chat.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.conversation.id": "conv-1",
                                     "gen_ai.response.model": "claude-x", "gen_ai.usage.input_tokens": 100 * turn,
                                     "gen_ai.usage.output_tokens": 10 * turn,
                                     "gen_ai.usage.cache_read.input_tokens": 7})  # fmt: skip
            if failed:
                agent_span.set_status(Status(StatusCode.ERROR, "the model gave up"))
    provider.shutdown()
    sdk_server.wait_projected()
    got = metrics(sdk_server, datetime.now(UTC).date())
    assert (got["runs"], got["runs_finished"], got["success_rate"], got["sessions"]) == (2, 2, 0.5, 1)
    assert (got["input_tokens"], got["output_tokens"], got["cache_read_tokens"]) == (300, 30, 14)
    assert got["failures_by_category"] == [{"category": "other", "runs": 1}]
    assert got["active_users"] == 1


def test_sdk_logs_are_accepted_and_counted_as_ignored(sdk_server):
    exporter = OTLPLogExporter(endpoint=f"{sdk_server.ingest_url}/v1/logs", compression=Compression.Gzip,
                               headers={"Authorization": f"Bearer {sdk_server.otlp_key}"})  # fmt: skip
    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    provider.get_logger("my-agent").emit(body="tool failed", event_name="my_agent.tool_failed",
                                         attributes={"gen_ai.conversation.id": "conv-9"})  # fmt: skip
    provider.shutdown()
    counts = [c for c in sdk_server.status()["otlp_records"] if c["agent"] == "my-agent"]
    assert sum(c["ignored"] for c in counts) == 1 and sum(c["rejected"] for c in counts) == 0
    assert sdk_server.status()["events_logged"] == 0


def test_a_batch_over_the_size_limit_fails_the_export_and_stores_nothing(sdk_server):
    exporter = OTLPSpanExporter(endpoint=f"{sdk_server.ingest_url}/v1/traces",
                                headers={"Authorization": f"Bearer {sdk_server.otlp_key}"})  # fmt: skip
    tracer = TracerProvider(resource=Resource.create(RESOURCE)).get_tracer("my-agent")  # no processor: we export
    spans = []
    for i in range(3):
        with tracer.start_as_current_span(f"chat {i}") as span:
            span.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.conversation.id": "conv-big",
                                 "padding": "x" * (2 * 1024 * 1024)})  # fmt: skip
        spans.append(span)
    assert exporter.export(spans) == SpanExportResult.FAILURE  # 6 MiB: 413, which the exporter does not retry
    assert exporter.export(spans[:1]) == SpanExportResult.SUCCESS  # one of them alone fits
    sdk_server.wait_projected()
    assert sdk_server.status()["events_logged"] == 1
