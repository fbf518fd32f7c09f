"""Codex CLI (`service.name` codex_exec for `codex exec`, codex_cli_rs interactive): logs `codex.*`, turn spans.

Codex's log records name the conversation but not the turn, so its runs come from traces: a `run_turn` span is
one run (`turn.id`), with its start, end and status. Its logs give the messages and every model call's tokens
(`codex.sse_event` of kind `response.completed`), which count for the session. Codex reports no cost.
"""

from __future__ import annotations

from agentdash.sources.drafts import Draft, count, span_run
from agentdash.sources.records import Record

SERVICE_NAMES = ("codex_exec", "codex_cli_rs", "codex-cli", "codex")
AGENT = "codex"  # the agent its events name, whichever of its service names sent them
SESSION_KEYS = ("conversation.id",)
USER_KEYS = ("user.account_id",)  # after SPEC's user.email, user.account_uuid, user.id: what a ChatGPT sign-in gives


def drafts(record: Record) -> list[Draft]:
    if record.signal == "traces":
        return _turn(record) if record.name == "run_turn" else []
    if record.signal != "logs":
        return []
    if record.name == "codex.user_prompt":
        return [Draft("m", "message.sent", record.time_us)]
    if record.name == "codex.sse_event" and record.text("event.kind") == "response.completed":
        total_in = count(record, "input_token_count")
        if total_in is None:  # the stream's own completed event; the one with counts follows it
            return []
        cached = count(record, "cached_token_count") or 0
        output = count(record, "output_token_count")  # OpenAI's output count already holds the reasoning tokens
        return [Draft("u", "usage", record.time_us, None, input_tokens=max(total_in - cached, 0),
                      output_tokens=output, cache_read_tokens=cached,
                      cache_write_tokens=count(record, "cache_write_token_count"), model=record.text("model"))]  # fmt: skip
    return []


def _turn(span: Record) -> list[Draft]:
    run = span.text("turn.id")
    return [] if run is None else span_run(span, run)
