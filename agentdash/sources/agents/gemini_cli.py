"""Gemini CLI (`service.name` gemini-cli): logs `gemini_cli.*`.

A run is one user prompt. Interactive sessions give each prompt its own `prompt_id`; a non-interactive run
(`gemini -p`, also when it resumes a session) uses the session id as `prompt_id` for every prompt, and there
one process is one prompt, so the process id tells the prompts apart.
"""

from __future__ import annotations

from agentdash.sources.drafts import Draft, api_failure, code_change, count, finished
from agentdash.sources.records import Record

SERVICE_NAMES = ("gemini-cli",)
AGENT = "gemini-cli"  # the agent its events name, whichever of its service names sent them
SESSION_KEYS = ("session.id",)
USER_KEYS: tuple[str, ...] = ()  # SPEC's user.email, user.account_uuid, user.id are enough


def run_of(record: Record) -> str | None:
    prompt = record.text("prompt_id")
    if prompt is None:
        return None
    if prompt == record.text("session.id") and (pid := record.text("process.pid")):
        return f"{prompt}/{pid}"
    return prompt


LINES = {"added": "lines_added", "removed": "lines_removed"}  # lines.changed's `type`


def drafts(record: Record) -> list[Draft]:
    if record.signal == "metrics":
        # Cumulative for the process (a resumed session is a new process: a new series). No commit counter.
        if record.name == "gemini_cli.lines.changed" and (name := LINES.get(record.text("type") or "")):
            return code_change(record, name, record.text("model"))
        return []
    if record.signal != "logs":
        return []
    run = run_of(record)
    name = record.name
    if name == "gemini_cli.api_response":
        # Gemini's input count includes the cached part; SPEC's input_tokens are the uncached ones, as Claude's.
        cached = count(record, "cached_content_token_count") or 0
        total_in = count(record, "input_token_count")
        output = (count(record, "output_token_count") or 0) + (count(record, "thoughts_token_count") or 0)
        usage = Draft("u", "usage", record.time_us, run,
                      input_tokens=None if total_in is None else max(total_in - cached, 0), output_tokens=output,
                      cache_read_tokens=cached, model=record.text("model"))  # fmt: skip
        return [usage, finished(record, run)] if run else [usage]
    if name == "gemini_cli.user_prompt":
        started = [Draft("s", "run.started", record.time_us, run)] if run else []
        return [Draft("m", "message.sent", record.time_us), *started]
    if run is None:
        return []
    if name == "gemini_cli.api_error":
        return [finished(record, run, api_failure(record.number("status_code"), record.text("error")))]
    if name == "gemini_cli.tool_call" and record.flag("success") is False:
        return [finished(record, run, "tool_error")]
    return []
