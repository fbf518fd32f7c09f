"""The demo's connected agents: two weeks of Claude Code, Gemini CLI and Codex telemetry as each really exports it
(OTLP/HTTP protobuf, the records of .ai/OTEL_CAPTURES.md), so the Sources page and the agents' numbers show.

Seeded, like the generator: equal arguments give identical exports, and so identical event ids.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from agentdash.demo.generator import TEAMS

DAYS = 14
AGENT_PEOPLE = {"claude-code": 12, "gemini-cli": 6, "codex_exec": 6}
VERSIONS = {"claude-code": "2.1.332", "gemini-cli": "0.61.0", "codex_exec": "0.171.0"}
CLAUDE_PRICES = (3e-6, 15e-6, 0.3e-6, 3.75e-6)  # USD per input, output, cache-read, cache-write token (Sonnet)
HOUR_NS = 3_600_000_000_000


@dataclass(frozen=True)
class Export:
    """One OTLP/HTTP request: its path and protobuf body."""

    path: str
    body: bytes


def agent_exports(end: dt.date, seed: int = 42) -> Iterator[Export]:
    """Per agent, person and day, the exports that agent would have sent."""
    rng = random.Random(seed)
    for agent, people in AGENT_PEOPLE.items():
        for person in range(people):
            email = f"{agent.split('-')[0].split('_')[0]}-dev{person + 1}@demo.example"
            # One Gemini user forgot user.email in OTEL_RESOURCE_ATTRIBUTES: the Sources page shows the reason.
            resource = {"service.name": agent, "service.version": VERSIONS[agent], "team.id": TEAMS[person % 8]}
            if not (agent == "gemini-cli" and person == people - 1):
                resource["user.email"] = email
            for back in range(DAYS):
                day = end - dt.timedelta(days=back)
                if day.weekday() >= 5 and rng.random() < 0.8:
                    continue
                yield from _day(agent, resource, day, rng)


def _day(agent: str, resource: dict[str, str], day: dt.date, rng: random.Random) -> Iterator[Export]:
    start_ns = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1e9)
    t = start_ns + int(rng.uniform(8, 11) * HOUR_NS)
    logs, spans = ExportLogsServiceRequest(), ExportTraceServiceRequest()
    log_list = _resource_logs(logs, resource)
    span_list = _resource_spans(spans, resource)
    session = f"{rng.getrandbits(64):016x}-{day.isoformat()}"
    for prompt in range(rng.randint(1, 4)):
        t += int(rng.uniform(0.2, 2.5) * HOUR_NS)
        if agent == "claude-code":
            t = _claude_prompt(log_list, session, f"{session}-p{prompt}", t, rng)
        elif agent == "gemini-cli":
            t = _gemini_prompt(log_list, session, f"{session}########{prompt}", t, rng)
        else:
            t = _codex_turn(log_list, span_list, session, f"{session}-t{prompt}", t, rng)
    yield Export("/v1/logs", logs.SerializeToString())
    if span_list:
        yield Export("/v1/traces", spans.SerializeToString())


def _claude_prompt(records, session: str, prompt: str, t: int, rng: random.Random) -> int:
    common = {"session.id": session, "prompt.id": prompt}
    _log(records, "claude_code.user_prompt", t, {**common, "event.name": "user_prompt", "prompt_length": "42"})
    failed = rng.random() < 0.06
    for call in range(rng.randint(1, 4)):
        t += int(rng.uniform(4, 40) * 1e9)
        if failed and call > 0:
            _log(records, "claude_code.api_error", t, {**common, "event.name": "api_error", "status_code": 529,
                                                      "error": "Overloaded", "model": "claude-sonnet-4-5"})  # fmt: skip
            return t
        tokens = (rng.randint(800, 4000), rng.randint(40, 900), rng.randint(0, 30_000), rng.randint(0, 3000))
        cost = round(sum(n * p for n, p in zip(tokens, CLAUDE_PRICES, strict=True)), 6)
        _log(records, "claude_code.api_request", t, {**common, "event.name": "api_request",
             "model": "claude-sonnet-4-5", "input_tokens": tokens[0], "output_tokens": tokens[1],
             "cache_read_tokens": tokens[2], "cache_creation_tokens": tokens[3], "cost_usd": cost})  # fmt: skip
        if rng.random() < 0.15:  # a failed tool call the agent recovers from at its next call
            _log(records, "claude_code.tool_result", t + 1_000_000, {**common, "event.name": "tool_result",
                 "tool_name": "Bash", "success": "false", "error_type": "ShellError"})  # fmt: skip
    _log(records, "claude_code.assistant_response", t + 5_000_000, {**common, "event.name": "assistant_response"})
    if rng.random() < 0.3:  # a title generated on the side: usage of the session, of no run
        _log(records, "claude_code.api_request", t + 9_000_000, {"session.id": session, "event.name": "api_request",
             "model": "claude-haiku-4-5", "input_tokens": 300, "output_tokens": 12, "cost_usd": 0.00036})  # fmt: skip
    return t


def _gemini_prompt(records, session: str, prompt: str, t: int, rng: random.Random) -> int:
    common = {"session.id": session, "prompt_id": prompt}
    _log(records, "", t, {**common, "event.name": "gemini_cli.user_prompt", "prompt_length": 30})
    for _ in range(rng.randint(1, 3)):
        t += int(rng.uniform(3, 30) * 1e9)
        cached = rng.randint(0, 2000)
        _log(records, "", t, {**common, "event.name": "gemini_cli.api_response", "model": "gemini-2.5-flash",
             "input_token_count": cached + rng.randint(500, 3000), "output_token_count": rng.randint(30, 600),
             "cached_content_token_count": cached, "thoughts_token_count": rng.randint(0, 200),
             "status_code": 200})  # fmt: skip
    return t


def _codex_turn(records, spans, session: str, turn: str, t: int, rng: random.Random) -> int:
    common = {"conversation.id": session, "model": "gpt-5-codex"}
    began = t
    _log(records, "", t, {**common, "event.name": "codex.user_prompt", "prompt_length": "25"})
    for _ in range(rng.randint(1, 3)):
        t += int(rng.uniform(3, 30) * 1e9)
        cached = rng.randint(0, 2000)
        _log(records, "", t, {**common, "event.name": "codex.sse_event", "event.kind": "response.completed",
             "input_token_count": str(cached + rng.randint(500, 3000)), "output_token_count": str(rng.randint(30, 600)),
             "cached_token_count": cached, "cache_write_token_count": 0})  # fmt: skip
    span = spans.add(name="run_turn", start_time_unix_nano=began, end_time_unix_nano=t + 50_000_000)
    span.trace_id, span.span_id = random.Random(turn).randbytes(16), random.Random(turn + "s").randbytes(8)
    span.attributes.extend(_attributes({"conversation.id": session, "turn.id": turn}))
    if rng.random() < 0.05:
        span.status.code = 2  # ERROR: the turn failed
    return t


def _resource_logs(request: ExportLogsServiceRequest, resource: dict[str, str]):
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend(_attributes(resource))
    return resource_logs.scope_logs.add().log_records


def _resource_spans(request: ExportTraceServiceRequest, resource: dict[str, str]):
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(_attributes(resource))
    return resource_spans.scope_spans.add().spans


def _log(records, body: str, t: int, attributes: dict[str, str | int | float]) -> None:
    record = records.add(time_unix_nano=t)
    if body:
        record.body.string_value = body
    record.attributes.extend(_attributes(attributes))


def _attributes(values: Mapping[str, str | int | float]) -> list[KeyValue]:
    found = []
    for key, value in values.items():
        if isinstance(value, str):
            found.append(KeyValue(key=key, value=AnyValue(string_value=value)))
        elif isinstance(value, int):
            found.append(KeyValue(key=key, value=AnyValue(int_value=value)))
        else:
            found.append(KeyValue(key=key, value=AnyValue(double_value=value)))
    return found
