#!/usr/bin/env python3
"""Run each real agent CLI against the fake model API and the OTLP recorder; save what it exports.

Writes tests/data/otlp/<agent>/<scenario>.json: a list of {signal, content_type, body} (body = the decoded
Export…ServiceRequest in OTLP/JSON form). Usage: .venv/bin/python scripts/record_agent_otlp.py [agent ...]
[--scenario NAME ...]. Needs scripts/install-agent-clis first.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agentdash.testing.agent_clis import (
    AGENTS,
    AgentHome,
    Telemetry,
    cli_version,
    command,
    find_cli,
    prepare,
    run,
)
from agentdash.testing.fake_model_api import Answer, FakeModelApi, HttpError, ShellCall, Text, ToolCall, Usage
from agentdash.testing.otlp_recorder import OtlpRecorder

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "otlp"
LONG = 400  # string values longer than this (system prompts, tool descriptions) are cut, to keep files readable
SETTLE_S = 2.5  # after the CLI exits: late exports (a last periodic metric read, batch flushes) still arrive


@dataclass(frozen=True)
class Scenario:
    """Prompts run one after another in one session (the later ones continue it), and the model's answers."""

    name: str
    prompts: tuple[str, ...]
    answers: tuple[Answer, ...]
    protocol: str = "http/json"
    traces: bool = False
    agents: tuple[str, ...] = AGENTS
    env: dict[str, str] = field(default_factory=dict)
    per_agent: dict[str, tuple[Answer, ...]] = field(default_factory=dict)  # answers that differ by agent

    def answers_for(self, agent: str) -> tuple[Answer, ...]:
        return self.per_agent.get(agent, self.answers)


FAILED_TOOL = {  # a call the tool itself fails (a shell command's non-zero exit counts as success for two of them)
    "claude": ToolCall("Read", {"file_path": "/nonexistent/missing.txt"}, Usage(900, 40, 100, 20)),
    "gemini": ToolCall("read_file", {"file_path": "missing.txt"}, Usage(900, 40, 100, 20)),
    "codex": ToolCall("exec_command", {"cmd": "ls", "workdir": "/nonexistent"}, Usage(900, 40, 100, 20)),
}
THEN_TEXT = Text("That file does not exist.", Usage(1000, 25, 900, 0))
NOTES = "first line\nsecond line\nthird line\n"
COMMIT = "git add notes.txt && git -c user.name=Dev -c user.email=dev@example.com commit -q -m 'Add notes'"
CODE_CHANGED = {  # write a 3-line file ({work}: the run's work tree), commit it, answer; Codex has no code counters
    "claude": (ToolCall("Write", {"file_path": "{work}/notes.txt", "content": NOTES}, Usage(900, 40, 100, 20)),
               ShellCall(COMMIT, Usage(950, 30, 100, 0)), Text("Wrote and committed notes.txt.", Usage(1000, 20, 900, 0))),
    "gemini": (ToolCall("write_file", {"file_path": "{work}/notes.txt", "content": NOTES}, Usage(900, 40, 100, 20)),
               ShellCall(COMMIT, Usage(950, 30, 100, 0)), Text("Wrote and committed notes.txt.", Usage(1000, 20, 900, 0))),
}  # fmt: skip
MORE = "alpha\nbeta\n"
CODE_CHANGED_TWICE = {  # two prompts of one session (two processes: Gemini's cumulative counters start again)
    agent: (answers[0], Text("Wrote notes.txt.", Usage(1000, 20, 900, 0)),
            ToolCall(answers[0].name, {"file_path": "{work}/more.txt", "content": MORE}, Usage(950, 30, 100, 0)),
            Text("Wrote more.txt.", Usage(1000, 20, 900, 0)))
    for agent, answers in CODE_CHANGED.items() if isinstance(answers[0], ToolCall)
}  # fmt: skip


SCENARIOS = [
    Scenario("one_prompt", ("Say hello.",), (Text("Hello from the fake model.", Usage(1200, 85, 300, 50)),)),
    Scenario("one_prompt_protobuf", ("Say hello.",), (Text("Hello from the fake model.", Usage(1200, 85, 300, 50)),),
             protocol="http/protobuf", agents=("claude", "codex")),  # Gemini CLI's OTLP/HTTP is JSON only
    Scenario("tool_call_ok", ("Run echo for me.",),
             (ShellCall("echo hello-from-tool", Usage(900, 40, 100, 20)), Text("It printed hello.", Usage(1000, 20, 900, 0)))),
    Scenario("tool_call_failed", ("Show me missing.txt.",), (),
             per_agent={agent: (call, THEN_TEXT) for agent, call in FAILED_TOOL.items()}),
    Scenario("tool_call_nonzero_exit", ("Show me missing.txt.",),
             (ShellCall("cat missing.txt", Usage(900, 40, 100, 20)), THEN_TEXT)),
    Scenario("api_error_exhausted", ("Say hello.",), (HttpError(500, times=40),)),
    Scenario("two_prompts_one_session", ("First question.", "Second question."),
             (Text("First answer.", Usage(1100, 60, 0, 400)), Text("Second answer.", Usage(1300, 70, 1000, 0)))),
    Scenario("traces_on", ("Run echo for me.",),
             (ShellCall("echo traced", Usage(900, 40, 100, 20)), Text("It printed traced.", Usage(1000, 20, 900, 0))),
             traces=True),
    Scenario("code_changed", ("Write notes.txt and commit it.",), (), agents=("claude", "gemini"), per_agent=CODE_CHANGED),
    Scenario("code_changed_two_prompts", ("Write notes.txt.", "Now write more.txt."), (), agents=("claude", "gemini"),
             per_agent=CODE_CHANGED_TWICE),
]  # fmt: skip


def record(agent: str, scenario: Scenario, log: list[str]) -> list[dict[str, object]]:
    """Run the scenario's prompts and return the exports, in arrival order."""
    cli = find_cli(agent)
    assert cli is not None, f"{agent} is not installed: run scripts/install-agent-clis"
    home = AgentHome()
    with FakeModelApi() as api, OtlpRecorder() as recorder:
        api.queue(*(in_work_tree(answer, home) for answer in scenario.answers_for(agent)))
        telemetry = Telemetry(recorder.url, protocol=scenario.protocol, traces=scenario.traces,
                              key="recording-key")  # fmt: skip
        try:
            prepare(agent, home)
            session: str | None = None
            for index, prompt in enumerate(scenario.prompts):
                cmd = command(agent, cli, prompt, home, api.url, telemetry, continue_last=index > 0)
                cmd = replace(cmd, env={**cmd.env, **scenario.env})
                started = time.monotonic()
                result = run(cmd)
                session = session or result.session_id
                log.append(f"{agent} {scenario.name} prompt {index + 1}: exit {result.returncode} in "
                           f"{time.monotonic() - started:.1f} s, session {result.session_id}")  # fmt: skip
                log.append("  stdout: " + result.stdout.strip()[-600:].replace("\n", "\n          "))
                log.append("  stderr: " + result.stderr.strip()[-600:].replace("\n", "\n          "))
            time.sleep(SETTLE_S)
            for request in api.requests:
                log.append(
                    f"  api: {request.method} {request.path} -> {request.status}{' (turn)' if request.turn else ''}"
                )
            log.append(
                f"  otlp: {[(e.signal, e.content_type) for e in recorder.snapshot()]} failures {recorder.failures}"
            )
        finally:
            home.cleanup()
        return [
            {"signal": e.signal, "content_type": e.content_type, "body": shorten(e.body)} for e in recorder.snapshot()
        ]


def in_work_tree(answer: Answer, home: AgentHome) -> Answer:
    """A tool call's arguments with `{work}` replaced by the run's work tree (tools want absolute paths)."""
    if not isinstance(answer, ToolCall):
        return answer
    arguments = {
        k: v.replace("{work}", str(home.work)) if isinstance(v, str) else v for k, v in answer.arguments.items()
    }
    return replace(answer, arguments=arguments)


def shorten(value: Any) -> Any:
    """The decoded export with long strings cut to LONG characters plus a note of how long they were."""
    if isinstance(value, dict):
        return {k: shorten(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shorten(v) for v in value]
    if isinstance(value, str) and len(value) > LONG:
        return f"{value[:LONG]}…[cut, {len(value)} chars]"
    return value


def dumps(value: Any, depth: int = 0) -> str:
    """JSON, one line for whatever fits in 120 columns (an attribute, a data point), indented otherwise."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(flat) + depth <= 120 or not isinstance(value, dict | list) or not value:
        return flat
    pad = " " * (depth + 1)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k)}: {dumps(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    return "[\n" + ",\n".join(pad + dumps(v, depth + 1) for v in value) + "\n" + " " * depth + "]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("agents", nargs="*", metavar="agent", help=f"any of {', '.join(AGENTS)} (default: all)")
    parser.add_argument("--scenario", action="append", help="only these scenarios (repeatable)")
    args = parser.parse_args()
    log: list[str] = []
    for agent in args.agents or AGENTS:
        if agent not in AGENTS:
            parser.error(f"unknown agent {agent}")
        if find_cli(agent) is None:
            print(f"{agent}: not installed (scripts/install-agent-clis), skipped", file=sys.stderr)
            continue
        print(f"{agent} {cli_version(agent)}", file=sys.stderr)
        for scenario in SCENARIOS:
            if agent not in scenario.agents or (args.scenario and scenario.name not in args.scenario):
                continue
            exports = record(agent, scenario, log)
            path = OUT / agent / f"{scenario.name}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(dumps(exports) + "\n")
            print("\n".join(log), file=sys.stderr)
            log.clear()
            print(f"  wrote {path.relative_to(OUT.parent.parent.parent)}: {len(exports)} exports", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
