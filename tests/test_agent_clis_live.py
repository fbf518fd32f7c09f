"""The real agent CLIs exporting straight into a real `agentdash serve`, configured only by the settings it prints.

Each test runs a CLI against the fake model API with the block `agentdash ingest-key create --for AGENT` printed
(a key for the single org "acme"); its OTLP goes through a forwarding recorder (which keeps what the CLI sent,
byte for byte) into agentdash. The read API's numbers must be exactly what those payloads say, by the rules of
`.ai/OTEL_MAPPING.md`, and the fake API's known usage; re-sending every export must move none of them.
One server serves the module; each test has a user of its own (user.email), and its numbers are that user's.
"""

from __future__ import annotations

import gzip
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

from agentdash.testing import ServerProcess, free_port
from agentdash.testing.agent_clis import (
    PRODUCT_NAMES,
    AgentHome,
    AgentResult,
    PrintedSettings,
    find_cli,
    prepare,
    read_settings,
    run,
    settings_command,
)
from agentdash.testing.fake_model_api import Answer, FakeModelApi, HttpError, Text, ToolCall, Usage
from agentdash.testing.otlp_recorder import OtlpRecorder, attributes

pytestmark = pytest.mark.slow  # the real CLIs and a real server

ORG = "acme"
TEAM = "platform"
USAGE = Usage(input=1200, output=85, cache_read=300, cache_creation=50, reasoning=15)
# Claude Code prices each call itself, at list price: claude-sonnet-4-5 in USD per million tokens
# (input, output, cache read, 5-minute cache write).
SONNET_PRICE = (3.0, 15.0, 0.3, 3.75)
# A call the tool itself fails (a shell command's non-zero exit is a success for Gemini CLI and Codex), then text.
FAILED_TOOL = {
    "claude": ToolCall("Read", {"file_path": "/nonexistent/missing.txt"}, Usage(900, 40, 100, 20)),
    "gemini": ToolCall("read_file", {"file_path": "missing.txt"}, Usage(900, 40, 100, 20)),
    "codex": ToolCall("exec_command", {"cmd": "ls", "workdir": "/nonexistent"}, Usage(900, 40, 100, 20)),
}
AFTER_TOOL = Text("That file does not exist.", Usage(1000, 25, 900, 0, reasoning=5))


# -- what the CLIs sent and what agentdash says ---------------------------------------------------------------------


@dataclass(frozen=True)
class Tokens:
    """Tokens and cost as SPEC §3 counts them."""

    input: int
    output: int
    cache_read: int
    cache_write: int
    cost_usd: float

    @staticmethod
    def of_metrics(got: dict[str, Any]) -> Tokens:
        return Tokens(got["input_tokens"], got["output_tokens"], got["cache_read_tokens"], got["cache_write_tokens"],
                      got["cost_usd"])  # fmt: skip

    def matches(self, other: Tokens) -> bool:
        counts = (self.input, self.output, self.cache_read, self.cache_write)
        return counts == (other.input, other.output, other.cache_read, other.cache_write) and (
            self.cost_usd == pytest.approx(other.cost_usd, rel=1e-9, abs=1e-12)
        )


def sent_tokens(agent: str, logs: list[dict[str, Any]]) -> Tokens:
    """The tokens and cost in the log records the CLI sent, by OTEL_MAPPING.md's rule for that agent."""
    if agent == "claude":
        calls = [r for r in logs if r.get("event.name") == "api_request"]
        return Tokens(sum(int(r["input_tokens"]) for r in calls), sum(int(r["output_tokens"]) for r in calls),
                      sum(int(r["cache_read_tokens"]) for r in calls),
                      sum(int(r["cache_creation_tokens"]) for r in calls), sum(float(r["cost_usd"]) for r in calls))  # fmt: skip
    if agent == "gemini":  # its input count holds the cached part; thoughts are billed as output
        calls = [r for r in logs if r.get("event.name") == "gemini_cli.api_response"]
        cached = [int(r.get("cached_content_token_count", 0)) for r in calls]
        return Tokens(sum(int(r["input_token_count"]) for r in calls) - sum(cached),
                      sum(int(r["output_token_count"]) + int(r.get("thoughts_token_count", 0)) for r in calls),
                      sum(cached), 0, 0.0)  # fmt: skip
    calls = [r for r in logs if r.get("event.name") == "codex.sse_event"
             and r.get("event.kind") == "response.completed" and "input_token_count" in r]  # fmt: skip
    cached = [int(r.get("cached_token_count", 0)) for r in calls]
    return Tokens(sum(int(r["input_token_count"]) for r in calls) - sum(cached),
                  sum(int(r["output_token_count"]) for r in calls), sum(cached),
                  sum(int(r.get("cache_write_token_count", 0)) for r in calls), 0.0)  # fmt: skip


def known_tokens(agent: str, usages: list[Usage]) -> Tokens:
    """What the fake API answered, as each CLI reports it and SPEC §3 counts it (cost: Claude's list price)."""
    if agent == "claude":
        cost = sum(u.input * SONNET_PRICE[0] + u.output * SONNET_PRICE[1] + u.cache_read * SONNET_PRICE[2]
                   + u.cache_creation * SONNET_PRICE[3] for u in usages) / 1e6  # fmt: skip
        return Tokens(sum(u.input for u in usages), sum(u.output for u in usages), sum(u.cache_read for u in usages),
                      sum(u.cache_creation for u in usages), cost)  # fmt: skip
    # Gemini's and OpenAI's prompt counts include the cached tokens; Gemini's thoughts come on top of its output,
    # OpenAI's reasoning tokens are already in its output count. Neither has a cache write count.
    reasoning = sum(u.reasoning for u in usages) if agent == "gemini" else 0
    return Tokens(sum(u.input - u.cache_read for u in usages), sum(u.output for u in usages) + reasoning,
                  sum(u.cache_read for u in usages), 0, 0.0)  # fmt: skip


def spans(recorder: OtlpRecorder) -> list[dict[str, Any]]:
    """Every span received: its name, status code and attributes (flat)."""
    found = []
    for export in recorder.snapshot("traces"):
        for resource_spans in export.body.get("resourceSpans", []):
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    found.append({"name": span.get("name"), "status": span.get("status", {}).get("code", 0),
                                  "attrs": attributes(span.get("attributes", [])),
                                  "start_us": int(span["startTimeUnixNano"]) // 1000,
                                  "end_us": int(span["endTimeUnixNano"]) // 1000})  # fmt: skip
    return found


def sent_duration_s(agent: str, recorder: OtlpRecorder) -> float:
    """One run's duration from what the CLI sent: its latest end minus its earliest start (OTEL_MAPPING.md)."""
    times: dict[str, list[int]] = {}
    for record in recorder.log_records():
        # Codex leaves timeUnixNano 0 and sets only the observed time.
        at = int(record.get("timeUnixNano") or 0) or int(record.get("observedTimeUnixNano") or 0)
        times.setdefault(str(record["attrs"].get("event.name")), []).append(at // 1000)
    sent = spans(recorder)
    if agent == "codex":  # the run_turn span is the run
        (turn,) = [s for s in sent if s["name"] == "run_turn"]
        return (turn["end_us"] - turn["start_us"]) / 1e6
    prompt, answer = ("user_prompt", "assistant_response") if agent == "claude" else (
        "gemini_cli.user_prompt", "gemini_cli.api_response")  # fmt: skip
    starts = times[prompt] + [s["start_us"] for s in sent if s["name"] == "claude_code.interaction"]
    return (max(times[answer]) - min(starts)) / 1e6


def otlp_totals(server: ServerProcess) -> tuple[int, int]:
    """Events the OTLP records became since the server started: (accepted, duplicates), summed over /status."""
    rows = server.status()["otlp_records"]
    return sum(r["events_accepted"] for r in rows), sum(r["events_duplicate"] for r in rows)


# -- one server for the module, one CLI run per test ----------------------------------------------------------------


@dataclass
class Agentdash:
    """The module's server, and per agent the port its recorder listens on and the block printed for it."""

    server: ServerProcess
    token: str  # an org admin's, for the read API
    printed: dict[str, tuple[int, str]] = field(default_factory=dict)

    def settings_text(self, agent: str) -> tuple[int, str]:
        """`agentdash ingest-key create --org acme --for AGENT --endpoint <the recorder>`'s output, made once."""
        if agent not in self.printed:
            port = free_port()
            text = self.server.cli("ingest-key", "create", "--org", ORG, "--name", f"live-{agent}",
                                   "--for", PRODUCT_NAMES[agent], "--endpoint", f"http://127.0.0.1:{port}")  # fmt: skip
            self.printed[agent] = (port, text)
        return self.printed[agent]


@pytest.fixture(scope="module")
def agentdash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agentdash]:
    server = ServerProcess(tmp_path_factory.mktemp("agentdash-live") / "data", ingest_orgs=(ORG,))
    server.start("--projector-interval", "0.2")  # folds often: each test waits for its numbers twice
    try:
        yield Agentdash(server, server.token(ORG))
    finally:
        server.stop()


@dataclass
class Live:
    """One test's CLI: a throwaway home, the fake API, the recorder forwarding into agentdash, the test's user."""

    agent: str
    cli: Path
    server: ServerProcess
    token: str
    api: FakeModelApi
    recorder: OtlpRecorder
    home: AgentHome
    settings: PrintedSettings
    key: str
    user: str
    totals_at_start: tuple[int, int]
    usages: list[Usage] = field(default_factory=list)  # what the fake API answered the turns with

    def prompt(self, text: str, *answers: Answer, continue_last: bool = False, protocol: str | None = None,
               traces: bool = False) -> AgentResult:  # fmt: skip
        """One prompt answered with `answers`, then wait until its exports are in and folded."""
        self.api.queue(*answers)
        self.usages += [a.usage for a in answers if not isinstance(a, HttpError)]
        cmd = settings_command(self.agent, self.cli, text, self.home, self.api.url, self.settings, protocol=protocol,
                               traces=traces, continue_last=continue_last)  # fmt: skip
        result = run(cmd, timeout=50)
        self.recorder.wait_idle()
        self.server.wait_projected()
        return result

    def metrics(self, **filters: str) -> dict[str, Any]:
        """The read API's metrics of this test's user (yesterday to tomorrow, UTC: every record is today's)."""
        today = datetime.now(UTC).date()
        params = {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1)), "user_id": self.user,
                  **filters}  # fmt: skip
        answer = httpx.get(f"{self.server.url}/api/v1/orgs/{ORG}/metrics", params=params, timeout=30, trust_env=False,
                           headers={"authorization": f"Bearer {self.token}"})  # fmt: skip
        assert answer.status_code == 200, answer.text
        return answer.json()

    def logs(self) -> list[dict[str, Any]]:
        """The attributes of every log record the CLI sent, resource attributes under them (record wins)."""
        return [{**r["resource"], **r["attrs"]} for r in self.recorder.log_records()]

    def named(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.logs() if r.get("event.name") == name]


def needs(agent: str) -> pytest.MarkDecorator:
    """Skip, saying why, when the agent's CLI is not installed (before the module's server starts for nothing)."""
    reason = "npm is not installed" if shutil.which("npm") is None else "scripts/install-agent-clis was not run"
    return pytest.mark.skipif(find_cli(agent) is None, reason=f"{agent} CLI not installed: {reason}")


@pytest.fixture
def live(agentdash: Agentdash, request: pytest.FixtureRequest) -> Iterator[Callable[[str], Live]]:
    """Start one agent's run for this test: `live("claude")`; everything is stopped and removed at the end."""
    opened: list[Live] = []
    user = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:80] + "@example.com"

    def start(agent: str) -> Live:
        cli = find_cli(agent)
        assert cli is not None, "mark the test with needs(agent)"
        port, text = agentdash.settings_text(agent)
        key = re.findall(r"adk_[A-Za-z0-9_-]+", text)[0]
        api = FakeModelApi().start()
        recorder = OtlpRecorder(port=port, forward_to=agentdash.server.ingest_url).start()
        home = AgentHome()
        prepare(agent, home, telemetry_in_files=False)  # only the printed settings turn telemetry on
        settings = read_settings(text, user_email=user, team=TEAM)
        opened.append(Live(agent, cli, agentdash.server, agentdash.token, api, recorder, home, settings, key, user,
                           otlp_totals(agentdash.server)))  # fmt: skip
        return opened[-1]

    yield start
    for one in opened:
        one.recorder.stop()
        one.api.stop()
        one.home.cleanup()


# -- checks every test makes ----------------------------------------------------------------------------------------


def assert_taken_whole(live: Live, content_type: str, may_be_none: bool = False) -> None:
    """Every export came with the printed key and content type, and agentdash took it whole (200, none rejected)."""
    exports = live.recorder.snapshot()
    assert exports or may_be_none, f"{live.agent} sent nothing; failures {live.recorder.failures}"
    assert live.recorder.failures == []
    for export in exports:
        assert export.header("Authorization") == f"Bearer {live.key}"
        assert export.content_type == content_type, export.signal
        assert export.upstream is not None and export.upstream.status == 200, export.upstream
        assert export.upstream.content_type.startswith(content_type)
        assert export.rejected() == (0, ""), export.signal


def assert_who(live: Live, got: dict[str, Any]) -> None:
    """The test's user (user.email from the settings) is the one active user; their work is under team.id."""
    assert got["active_users"] == 1
    in_team = live.metrics(team_id=TEAM)
    assert (in_team["runs"], in_team["sessions"], in_team["cost_usd"]) == (got["runs"], got["sessions"],
                                                                           got["cost_usd"])  # fmt: skip
    assert live.metrics(team_id="elsewhere")["runs"] == 0


def assert_tokens(live: Live, got: dict[str, Any]) -> None:
    """Tokens and cost: the metrics = what the CLI sent = what the fake API answered."""
    sent = sent_tokens(live.agent, live.logs())
    assert Tokens.of_metrics(got).matches(sent), (Tokens.of_metrics(got), sent)
    known = known_tokens(live.agent, live.usages)
    assert sent.matches(known), (sent, known)


def assert_resend_moves_nothing(live: Live) -> None:
    """Every recorded export sent again, byte for byte: all duplicates, no number moves."""
    before = live.metrics()
    start_accepted, start_duplicates = live.totals_at_start
    accepted, duplicates = otlp_totals(live.server)
    made = (accepted - start_accepted) + (duplicates - start_duplicates)  # the events this test's exports became
    assert accepted > start_accepted
    answers = live.recorder.resend()
    assert [a.status for a in answers] == [200] * len(answers)
    live.server.wait_projected()
    assert otlp_totals(live.server) == (accepted, duplicates + made)
    assert live.metrics() == before


def outcome(got: dict[str, Any]) -> tuple[int, int, int, int]:
    """(runs, finished, succeeded, failed)."""
    return got["runs"], got["runs_finished"], got["runs_succeeded"], got["runs_failed"]


# -- the forwarding recorder itself (no CLI needed) -----------------------------------------------------------------


def test_recorder_forwards_byte_for_byte_and_answers_what_the_upstream_said() -> None:
    export = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[
        LogRecord(time_unix_nano=1, body=AnyValue(string_value="hello"))])])])  # fmt: skip
    wire = gzip.compress(export.SerializeToString())
    headers = {"content-type": "application/x-protobuf", "content-encoding": "gzip", "authorization": "Bearer k"}
    with OtlpRecorder() as upstream, OtlpRecorder(forward_to=upstream.url) as recorder:
        answer = httpx.post(f"{recorder.url}/v1/logs", content=wire, headers=headers, trust_env=False)
        assert (answer.status_code, answer.headers["content-type"]) == (200, "application/x-protobuf")
        garbage = httpx.post(f"{recorder.url}/v1/logs", content=b"{nope", trust_env=False,
                             headers={"content-type": "application/json", "authorization": "Bearer k"})  # fmt: skip
        assert garbage.status_code == 400 and garbage.text and garbage.text in upstream.failures[0]
        (forwarded,) = upstream.snapshot()
        (recorded,) = recorder.snapshot()
        assert forwarded.wire == recorded.wire == wire and forwarded.raw == export.SerializeToString()
        assert (forwarded.header("Authorization"), forwarded.content_encoding) == ("Bearer k", "gzip")
        assert recorded.upstream is not None and recorded.upstream.status == 200
        assert [a.status for a in recorder.resend()] == [200]
        assert upstream.snapshot()[1].wire == wire


# -- Claude Code ----------------------------------------------------------------------------------------------------


@needs("claude")
@pytest.mark.parametrize("traces", [False, True], ids=["traces-off", "traces-on"])
@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_claude_code_one_prompt(live: Callable[[str], Live], protocol: str, traces: bool) -> None:
    claude = live("claude")
    # http/protobuf is what the settings print; JSON is the variable's other value.
    result = claude.prompt("Say hello.", Text("Hello.", USAGE), protocol=None if protocol == "http/protobuf"
                           else protocol, traces=traces)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert_taken_whole(claude, "application/" + ("x-protobuf" if protocol == "http/protobuf" else "json"))
    sent_spans = spans(claude.recorder)
    assert bool(sent_spans) == traces  # the printed optional traces line turns them on
    if traces:
        assert [s["name"] for s in sent_spans].count("claude_code.interaction") == 1
    assert {r["session.id"] for r in claude.logs()} == {result.session_id}
    got = claude.metrics()
    assert outcome(got) == (1, 1, 1, 0) and got["success_rate"] == 1.0
    assert got["sessions"] == 1
    assert got["runs"] == len(claude.named("user_prompt"))
    assert got["run_duration_avg_s"] == pytest.approx(sent_duration_s("claude", claude.recorder), abs=1e-6)
    assert_who(claude, got)
    assert_tokens(claude, got)
    assert got["cost_usd"] > 0
    assert_resend_moves_nothing(claude)


@needs("claude")
def test_claude_code_prompts_continued_are_one_session(live: Callable[[str], Live]) -> None:
    claude = live("claude")
    results = [claude.prompt(f"Question {n}.", Text(f"Answer {n}.", USAGE), continue_last=n > 1) for n in (1, 2, 3)]
    assert [r.returncode for r in results] == [0, 0, 0], results[-1].stderr[-2000:]
    assert len({r.session_id for r in results}) == 1
    assert_taken_whole(claude, "application/x-protobuf")
    assert len({r["prompt.id"] for r in claude.named("user_prompt")}) == 3
    got = claude.metrics()
    assert outcome(got) == (3, 3, 3, 0)
    assert (got["sessions"], got["runs_per_session"]) == (1, 3.0)
    assert got["session_lifespan_avg_s"] > 0  # three messages, the first and the last apart
    assert_who(claude, got)
    assert_tokens(claude, got)
    assert_resend_moves_nothing(claude)


@needs("claude")
@pytest.mark.parametrize("traces", [False, True], ids=["traces-off", "traces-on"])
def test_claude_code_exhausted_api_retries_are_a_failed_run(live: Callable[[str], Live], traces: bool) -> None:
    claude = live("claude")
    result = claude.prompt("Say hello.", HttpError(500, times=40), traces=traces)
    assert result.returncode == 1
    assert_taken_whole(claude, "application/x-protobuf")
    assert len(claude.named("api_retries_exhausted")) == 1 and claude.named("api_request") == []
    got = claude.metrics()
    assert outcome(got) == (1, 1, 0, 1) and got["success_rate"] == 0.0
    assert got["failures_by_category"] == [{"category": "model_error", "runs": 1}]
    assert Tokens.of_metrics(got) == Tokens(0, 0, 0, 0, 0.0)
    assert_who(claude, got)
    assert_resend_moves_nothing(claude)


@needs("claude")
def test_claude_code_failed_tool_call_it_recovered_from_is_a_succeeded_run(live: Callable[[str], Live]) -> None:
    claude = live("claude")
    result = claude.prompt("Show me missing.txt.", FAILED_TOOL["claude"], AFTER_TOOL)
    assert result.returncode == 0, result.stderr[-2000:]
    assert_taken_whole(claude, "application/x-protobuf")
    assert [r["success"] for r in claude.named("tool_result")] == ["false"]  # the failure was reported
    got = claude.metrics()
    assert outcome(got) == (1, 1, 1, 0) and got["failures_by_category"] == []
    assert_who(claude, got)
    assert_tokens(claude, got)
    assert_resend_moves_nothing(claude)


# -- Gemini CLI (OTLP/HTTP with JSON bodies only) -------------------------------------------------------------------


@needs("gemini")
def test_gemini_cli_one_prompt(live: Callable[[str], Live]) -> None:
    gemini = live("gemini")
    result = gemini.prompt("Say hello.", Text("Hello.", USAGE))
    assert result.returncode == 0, result.stderr[-2000:]
    assert_taken_whole(gemini, "application/json")
    assert {r["session.id"] for r in gemini.logs()} == {result.session_id}
    got = gemini.metrics()
    assert outcome(got) == (1, 1, 1, 0) and got["sessions"] == 1
    assert got["run_duration_avg_s"] == pytest.approx(sent_duration_s("gemini", gemini.recorder), abs=1e-6)
    assert_who(gemini, got)
    assert_tokens(gemini, got)
    assert got["cost_usd"] == 0  # Gemini CLI reports no cost
    assert_resend_moves_nothing(gemini)


@needs("gemini")
def test_gemini_cli_prompts_resumed_are_one_session(live: Callable[[str], Live]) -> None:
    gemini = live("gemini")
    results = [gemini.prompt(f"Question {n}.", Text(f"Answer {n}.", USAGE), continue_last=n > 1) for n in (1, 2)]
    assert [r.returncode for r in results] == [0, 0], results[-1].stderr[-2000:]
    assert len({r.session_id for r in results}) == 1
    assert_taken_whole(gemini, "application/json")
    assert len(gemini.named("gemini_cli.user_prompt")) == 2
    got = gemini.metrics()
    assert outcome(got) == (2, 2, 2, 0)
    assert (got["sessions"], got["runs_per_session"]) == (1, 2.0)
    assert_who(gemini, got)
    assert_tokens(gemini, got)
    assert_resend_moves_nothing(gemini)


@needs("gemini")
def test_gemini_cli_failed_tool_call_it_recovered_from_is_a_succeeded_run(live: Callable[[str], Live]) -> None:
    gemini = live("gemini")
    result = gemini.prompt("Show me missing.txt.", FAILED_TOOL["gemini"], AFTER_TOOL)
    assert result.returncode == 0, result.stderr[-2000:]
    assert_taken_whole(gemini, "application/json")
    assert [r["success"] for r in gemini.named("gemini_cli.tool_call")] == [False]
    got = gemini.metrics()
    assert outcome(got) == (1, 1, 1, 0) and got["failures_by_category"] == []
    assert_who(gemini, got)
    assert_tokens(gemini, got)
    assert_resend_moves_nothing(gemini)


@needs("gemini")
def test_gemini_cli_fatal_api_error_counts_what_arrived(live: Callable[[str], Live]) -> None:
    gemini = live("gemini")
    result = gemini.prompt("Say hello.", HttpError(500, times=40))
    assert result.returncode == 244  # 500 mod 256
    # Gemini exits without its shutdown flush: the logs arrive only when the 5 s batch timer fired before the exit.
    assert_taken_whole(gemini, "application/json", may_be_none=True)
    got = gemini.metrics()
    prompts, errors = gemini.named("gemini_cli.user_prompt"), gemini.named("gemini_cli.api_error")
    if errors:
        assert outcome(got) == (1, 1, 0, 1)
        assert got["failures_by_category"] == [{"category": "model_error", "runs": 1}]
    else:  # the turn arrived without its error, or nothing of it did: a run that never finished, or none
        assert outcome(got) == (len(prompts), 0, 0, 0)
    assert Tokens.of_metrics(got) == Tokens(0, 0, 0, 0, 0.0)
    if prompts:
        assert_who(gemini, got)
        assert_resend_moves_nothing(gemini)


# -- Codex (the printed [otel] block appended to config.toml; traces on: they name the turns) -----------------------


@needs("codex")
@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"], ids=["binary", "json"])
def test_codex_one_prompt(live: Callable[[str], Live], protocol: str) -> None:
    codex = live("codex")
    result = codex.prompt("Say hello.", Text("Hello.", USAGE), protocol=None if protocol == "http/protobuf"
                          else protocol)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert_taken_whole(codex, "application/" + ("x-protobuf" if protocol == "http/protobuf" else "json"))
    assert {r["conversation.id"] for r in codex.logs() if "conversation.id" in r} == {result.session_id}
    turns = [s for s in spans(codex.recorder) if s["name"] == "run_turn"]
    assert len(turns) == 1
    got = codex.metrics()
    assert outcome(got) == (1, 1, 1, 0) and got["sessions"] == 1
    assert got["run_duration_avg_s"] == pytest.approx(sent_duration_s("codex", codex.recorder), abs=1e-6)
    assert_who(codex, got)
    assert_tokens(codex, got)
    assert got["cost_usd"] == 0  # Codex reports no cost
    assert_resend_moves_nothing(codex)


@needs("codex")
def test_codex_prompts_resumed_are_one_session(live: Callable[[str], Live]) -> None:
    codex = live("codex")
    results = [codex.prompt(f"Question {n}.", Text(f"Answer {n}.", USAGE), continue_last=n > 1) for n in (1, 2)]
    assert [r.returncode for r in results] == [0, 0], results[-1].stderr[-2000:]
    assert len({r.session_id for r in results}) == 1
    assert_taken_whole(codex, "application/x-protobuf")
    assert len({s["attrs"]["turn.id"] for s in spans(codex.recorder) if s["name"] == "run_turn"}) == 2
    got = codex.metrics()
    assert outcome(got) == (2, 2, 2, 0)
    assert (got["sessions"], got["runs_per_session"]) == (1, 2.0)
    assert_who(codex, got)
    assert_tokens(codex, got)
    assert_resend_moves_nothing(codex)


@needs("codex")
def test_codex_failed_tool_call_it_recovered_from_is_a_succeeded_run(live: Callable[[str], Live]) -> None:
    codex = live("codex")
    result = codex.prompt("Show me missing.txt.", FAILED_TOOL["codex"], AFTER_TOOL)
    assert result.returncode == 0, result.stderr[-2000:]
    assert_taken_whole(codex, "application/x-protobuf")
    assert [r["success"] for r in codex.named("codex.tool_result")] == ["false"]
    got = codex.metrics()
    assert outcome(got) == (1, 1, 1, 0) and got["failures_by_category"] == []
    assert_who(codex, got)
    assert_tokens(codex, got)
    assert_resend_moves_nothing(codex)


@needs("codex")
def test_codex_failed_turn_counts_what_arrived(live: Callable[[str], Live]) -> None:
    codex = live("codex")
    result = codex.prompt("Say hello.", HttpError(500, times=40))
    assert result.returncode == 1
    # Codex exits without flushing what is still batched: its turn span (the run) is lost at the source.
    assert_taken_whole(codex, "application/x-protobuf", may_be_none=True)
    turns = [s for s in spans(codex.recorder) if s["name"] == "run_turn"]
    got = codex.metrics()
    assert outcome(got) == (len(turns), len(turns), 0, len(turns))
    assert Tokens.of_metrics(got) == Tokens(0, 0, 0, 0, 0.0)
    assert got["sessions"] == (1 if codex.named("codex.user_prompt") else 0)
    if got["sessions"]:
        assert_who(codex, got)
        assert_resend_moves_nothing(codex)
