"""The real agent CLIs, offline: one prompt against the fake model API, OTLP into the recorder.

Each test checks that the CLI's log records carry its session id and exactly the token counts the fake API
answered with. They skip, saying why, when npm or the CLI is missing (scripts/install-agent-clis).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from agentdash.testing.agent_clis import AgentHome, Telemetry, command, find_cli, prepare, run
from agentdash.testing.fake_model_api import FakeModelApi, Text, Usage
from agentdash.testing.otlp_recorder import OtlpRecorder

USAGE = Usage(input=1234, output=56, cache_read=78, cache_creation=9)


@pytest.fixture
def servers() -> Iterator[tuple[FakeModelApi, OtlpRecorder]]:
    with FakeModelApi() as api, OtlpRecorder() as recorder:
        yield api, recorder


@pytest.fixture
def home() -> Iterator[AgentHome]:
    home = AgentHome()
    yield home
    home.cleanup()


def run_one_prompt(agent: str, api: FakeModelApi, recorder: OtlpRecorder, home: AgentHome) -> str:
    """Run one prompt answered with USAGE; return the session id the CLI reported."""
    cli = find_cli(agent)
    if cli is None:
        reason = "npm is not installed" if shutil.which("npm") is None else "scripts/install-agent-clis was not run"
        pytest.skip(f"{agent} CLI not installed: {reason}")
    api.queue(Text("Hello from the fake model.", USAGE))
    prepare(agent, home)
    result = run(command(agent, cli, "Say hello.", home, api.url, Telemetry(recorder.url)), timeout=45)
    assert result.returncode == 0, (
        f"{agent} exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    )
    assert result.session_id, f"no session id in {agent}'s output:\n{result.stdout[-2000:]}"
    assert len(api.turns()) == 1, [r.path for r in api.requests]
    return result.session_id


def find_record(recorder: OtlpRecorder, event: str, **attrs: Any) -> dict[str, Any]:
    """Wait (the exporters send on their own timers) for the log record of this event with these attributes."""

    def matches(record: dict[str, Any]) -> bool:
        return record["attrs"].get("event.name") == event and all(record["attrs"].get(k) == v for k, v in attrs.items())

    recorder.wait_for(lambda r: any(matches(x) for x in r.log_records()), timeout=15)
    found = [x for x in recorder.log_records() if matches(x)]
    names = sorted({str(x["attrs"].get("event.name")) for x in recorder.log_records()})
    assert found, f"no {event} log record with {attrs}; got {names}, failures {recorder.failures}"
    return found[0]


def test_claude_code_exports_session_and_tokens(servers: tuple[FakeModelApi, OtlpRecorder], home: AgentHome) -> None:
    api, recorder = servers
    session = run_one_prompt("claude", api, recorder, home)
    record = find_record(recorder, "api_request", **{"session.id": session})
    attrs = record["attrs"]
    assert (attrs["input_tokens"], attrs["output_tokens"], attrs["cache_read_tokens"], attrs["cache_creation_tokens"]) == (
        1234, 56, 78, 9)  # fmt: skip
    assert attrs["cost_usd"] > 0 and attrs["prompt.id"]
    assert record["resource"]["service.name"] == "claude-code" and record["resource"]["team.id"] == "platform"
    assert recorder.snapshot()[0].headers.get("Authorization") == "Bearer test-ingest-key"


def test_gemini_cli_exports_session_and_tokens(servers: tuple[FakeModelApi, OtlpRecorder], home: AgentHome) -> None:
    api, recorder = servers
    session = run_one_prompt("gemini", api, recorder, home)
    record = find_record(recorder, "gemini_cli.api_response", **{"session.id": session})
    attrs = record["attrs"]
    assert (attrs["input_token_count"], attrs["output_token_count"], attrs["cached_content_token_count"]) == (
        1234, 56, 78)  # fmt: skip
    assert record["resource"]["service.name"] == "gemini-cli" and record["resource"]["team.id"] == "platform"


def test_codex_exports_session_and_tokens(servers: tuple[FakeModelApi, OtlpRecorder], home: AgentHome) -> None:
    api, recorder = servers
    session = run_one_prompt("codex", api, recorder, home)
    record = find_record(recorder, "codex.sse_event", **{"conversation.id": session, "event.kind": "response.completed",
                                                         "input_token_count": "1234"})  # fmt: skip
    attrs = record["attrs"]  # Codex sends input/output counts as strings, the cached count as an int
    assert (attrs["input_token_count"], attrs["output_token_count"], attrs["cached_token_count"]) == ("1234", "56", 78)
    assert record["resource"]["service.name"] == "codex_exec" and record["resource"]["team.id"] == "platform"
