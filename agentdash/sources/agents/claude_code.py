"""Claude Code (`service.name` claude-code): logs `claude_code.*`, the `claude_code.interaction` span.

A run is one user prompt (`prompt.id`; with traces on, the prompt's trace, which its interaction span shares).
A run's end is its latest `run.finished`: each assistant response says "succeeded", each API error and failed
tool call says "failed" — so a failure the agent recovered from is overtaken by the answer that followed it.
"""

from __future__ import annotations

from agentdash.sources.drafts import Draft, api_failure, code_change, count, finished, money
from agentdash.sources.records import Record

SERVICE_NAMES = ("claude-code",)
AGENT = "claude-code"  # the agent its events name, whichever of its service names sent them
SESSION_KEYS = ("session.id",)
USER_KEYS: tuple[str, ...] = ()  # SPEC's user.email, user.account_uuid, user.id are enough


def run_of(record: Record) -> str | None:
    """The run a record belongs to: none without a prompt (title generation and other side requests)."""
    prompt = record.text("prompt.id")
    if prompt is None:
        return None
    return record.trace_id or prompt


def drafts(record: Record) -> list[Draft]:
    if record.signal == "traces":
        return _interaction(record) if record.name == "claude_code.interaction" else []
    if record.signal == "metrics":
        return _code(record)
    if record.signal != "logs":
        return []
    run = run_of(record)
    name = record.name
    if name == "claude_code.api_request":
        return [Draft("u", "usage", record.time_us, run, input_tokens=count(record, "input_tokens"),
                      output_tokens=count(record, "output_tokens"), cache_read_tokens=count(record, "cache_read_tokens"),
                      cache_write_tokens=count(record, "cache_creation_tokens"), cost_usd=money(record, "cost_usd"),
                      model=record.text("model"))]  # fmt: skip
    if name == "claude_code.user_prompt":
        started = [Draft("s", "run.started", record.time_us, run)] if run else []
        return [Draft("m", "message.sent", record.time_us), *started]
    if run is None:
        return []
    if name == "claude_code.assistant_response":
        return [finished(record, run)]
    if name in ("claude_code.api_error", "claude_code.api_retries_exhausted"):
        return [finished(record, run, api_failure(record.number("status_code"), record.text("error")))]
    if name == "claude_code.tool_result" and record.flag("success") is False:
        return [finished(record, run, "tool_error")]
    return []


LINES = {"added": "lines_added", "removed": "lines_removed"}  # lines_of_code.count's `type`


def _code(point: Record) -> list[Draft]:
    """Delta counters: lines an Edit/Write/NotebookEdit changed (by `type`, with its `model`), commits made with Bash.

    They carry no prompt.id: the session's, like a usage without a run. The other metrics repeat the logs: ignored.
    """
    if point.name == "claude_code.lines_of_code.count" and (name := LINES.get(point.text("type") or "")):
        return code_change(point, name, point.text("model"))
    if point.name == "claude_code.commit.count":
        return code_change(point, "commits", point.text("model"))
    return []


def _interaction(span: Record) -> list[Draft]:
    # The span's start is the prompt's true start. Its end says "failed" only with an ERROR status: an unset
    # status at the end must not overrule an API error the logs reported just before.
    run = span.trace_id
    found = [Draft("s", "run.started", span.time_us, run)]
    if span.failed:
        found.append(finished(span, run, "other", at_us=span.end_us))
    return found
