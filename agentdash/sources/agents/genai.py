"""Any other exporter that follows the OpenTelemetry GenAI conventions: `invoke_agent` spans are runs, the
`gen_ai.usage.*` of model-call spans are usage (of the session: a model call's span does not say which run it
served unless it is nested in one, which a span alone cannot tell)."""

from __future__ import annotations

from agentdash.sources.drafts import Draft, count, span_run
from agentdash.sources.records import Record

SERVICE_NAMES: tuple[str, ...] = ()  # the fallback for every other service
AGENT: str | None = None  # events name the record's own service.name
SESSION_KEYS = ("gen_ai.conversation.id", "session.id")
USER_KEYS: tuple[str, ...] = ()
_MODEL_CALLS = frozenset({"chat", "generate_content", "text_completion"})


def drafts(record: Record) -> list[Draft]:
    if record.signal != "traces":
        return []
    operation = record.text("gen_ai.operation.name")
    if operation == "invoke_agent":
        return span_run(record, record.trace_id)
    if operation in _MODEL_CALLS:
        cached = count(record, "gen_ai.usage.cache_read.input_tokens")
        return [Draft("u", "usage", record.end_us or record.time_us, None,
                      input_tokens=count(record, "gen_ai.usage.input_tokens"),
                      output_tokens=count(record, "gen_ai.usage.output_tokens"), cache_read_tokens=cached,
                      cache_write_tokens=count(record, "gen_ai.usage.cache_write.input_tokens"),
                      model=record.text("gen_ai.response.model") or record.text("gen_ai.request.model"))]  # fmt: skip
    return []
