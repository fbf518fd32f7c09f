"""The demo's agent telemetry: deterministic, shaped as the real CLIs send it, and mapped by the real mapping."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter

from agentdash.demo.agents import AGENT_PEOPLE, agent_exports
from agentdash.sources import LOGS, PROTOBUF, TRACES, decode_request, log_records, span_records, translate
from agentdash.sources.translate import AGENTS

END = dt.date(2026, 12, 2)


def translated():
    events, rejected = [], Counter()
    for export in agent_exports(END):
        signal, records = (LOGS, log_records) if export.path == "/v1/logs" else (TRACES, span_records)
        translation = translate(records(decode_request(signal, export.body, PROTOBUF, "")), frozenset({"demo"}),
                                time.time_ns() // 1000)  # fmt: skip
        events += translation.events
        for key, tally in translation.tallies.items():
            rejected[key.agent] += tally.rejected
    return events, rejected


def test_equal_arguments_give_identical_exports():
    assert [e.body for e in agent_exports(END)] == [e.body for e in agent_exports(END)]
    assert [e.body for e in agent_exports(END, seed=1)] != [e.body for e in agent_exports(END)]


def test_every_agent_gives_runs_usage_and_people_and_one_gemini_user_is_misconfigured():
    events, rejected = translated()
    agent_of = {service: AGENTS[service].AGENT for service in AGENT_PEOPLE}  # codex_exec's events name codex
    assert {e.agent for e in events} == set(agent_of.values()) == {"claude-code", "gemini-cli", "codex"}
    for agent in agent_of.values():
        assert {"usage", "run.started", "run.finished"} <= {e.type for e in events if e.agent == agent}, agent
    people = {e.user_id for e in events}
    assert len(people) == sum(AGENT_PEOPLE.values()) - 1  # the one without user.email is rejected, with the reason
    assert rejected["gemini-cli"] > 0 and rejected["claude-code"] == rejected["codex_exec"] == 0
    assert all(END - dt.timedelta(days=14) <= dt.datetime.fromtimestamp(e.occurred_us / 1e6, dt.UTC).date() <= END
               for e in events)  # fmt: skip
