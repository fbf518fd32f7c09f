"""Any order, duplication and batching of the agents' OTLP exports gives the same events, and so the same metrics
on every backend as the reference oracle computes from them."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from functools import cache

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from agentdash.events import Event
from agentdash.projector import Projector
from agentdash.sources import log_records, metric_records, span_records, translate
from tests.otlp_captures import (
    AGENTS,
    REQUESTS,
    as_protobuf,
    capture,
    later_totals,
    message,
    scenarios,
    split,
    with_resource,
)
from tests.reference_metrics import reference_metrics
from tests.support import assert_same, product

ORG = "acme"
ORGS = frozenset({ORG})
NOW_US = time.time_ns() // 1000
RECORDS = {"logs": log_records, "traces": span_records, "metrics": metric_records}


def all_exports() -> list[dict]:
    """Every recorded export, each agent's with a user (as the README's settings give it), and a longer cumulative
    series: Gemini's lines.changed as a process that kept running would have re-exported it."""
    found = []
    for agent in AGENTS:
        for scenario in scenarios(agent):
            for export in capture(agent, scenario):
                if export["signal"] in RECORDS:
                    found.append(with_resource(export, **{"user.email": f"dev-{agent}@example.com"}))
    gemini = next(e for e in found if e["signal"] == "metrics" and "gemini_cli.lines.changed" in str(e["body"]))
    return found + later_totals(gemini, "gemini_cli.lines.changed", [(10, 3), (20, 8), (30, 8), (40, 20)])


EXPORTS = all_exports()


def events_of(requests: Iterable[tuple[str, object]]) -> dict[str, Event]:
    """The events of (signal, export request) pairs; an id that comes back must come back as the same event."""
    found: dict[str, Event] = {}
    for signal, request in requests:
        for event in translate(RECORDS[signal](request), ORGS, NOW_US).events:
            assert found.setdefault(event.id, event) == event, "one id, two different events"
    return found


BASELINE = events_of((export["signal"], message(export)) for export in EXPORTS)


@cache
def on_the_wire(index: int, one_per_record: bool) -> tuple[tuple[str, bytes], ...]:
    """EXPORTS[index] as protobuf bodies: whole, or split one record per export. Made once per export and split:
    the recordings' JSON to protobuf costs several times what translating them does, and never changes."""
    export = EXPORTS[index]
    return tuple((part["signal"], as_protobuf(part)) for part in (split(export) if one_per_record else [export]))


@settings(max_examples=40, deadline=None)
@given(st.randoms(use_true_random=False), st.floats(0, 1), st.floats(0, 1))
def test_order_duplication_and_batching_give_the_same_events(rnd, duplicate_share, split_share):
    sent = [part for index in range(len(EXPORTS)) for part in on_the_wire(index, rnd.random() < split_share)]
    sent += [export for export in sent if rnd.random() < duplicate_share]
    rnd.shuffle(sent)
    assert events_of((signal, REQUESTS[signal].FromString(body)) for signal, body in sent) == BASELINE


def test_the_recordings_give_runs_usage_and_messages_of_every_agent():
    kinds = {(e.attributes and msgspec.json.decode(e.attributes)["agent"], e.type) for e in BASELINE.values()}
    for agent in ("claude-code", "gemini-cli", "codex"):  # Codex's service names are one agent
        assert {(agent, "usage"), (agent, "message.sent"), (agent, "run.finished")} <= kinds, agent
    assert {("claude-code", "code.changed"), ("gemini-cli", "code.changed")} <= kinds  # Codex counts no code


def test_metrics_on_every_backend_match_the_oracle_in_any_arrival_order(storage):
    events = list(BASELINE.values())
    days = sorted({_day(e.occurred_us) for e in events})
    wire = [_wire(e) for e in events]
    expected = reference_metrics(wire, ORG, days[0], days[-1])
    assert expected["lines_added"] > 0 and expected["commits"] > 0  # the code_changed recordings' counters
    noisy = events + events[::3]
    random.Random(7).shuffle(noisy)
    for start in range(0, len(noisy), 50):  # batches, as exports arrive
        storage.submit(noisy[start : start + 50]).result(timeout=30)
    Projector(storage).catch_up()
    assert_same(product(storage, ORG, days[0], days[-1]), expected)


def _day(us: int) -> date:
    return datetime.fromtimestamp(us / 1e6, tz=UTC).date()


def _wire(event: Event) -> dict:
    """The event as a producer would have sent it to /v1/events (what the oracle reads)."""
    at = datetime.fromtimestamp(event.occurred_us / 1e6, tz=UTC).isoformat().replace("+00:00", "Z")
    wire = {"id": event.id, "type": event.type, "org_id": event.org_id, "user_id": event.user_id,
            "session_id": event.session_id, "occurred_at": at,
            "attributes": msgspec.json.decode(event.attributes) if event.attributes else {}}  # fmt: skip
    for name in ("run_id", "team_id", "status", "failure_category"):
        if getattr(event, name) is not None:
            wire[name] = getattr(event, name)
    if event.type in ("usage", "run.finished"):
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd"):
            wire[name] = getattr(event, name)
    if event.type == "code.changed":
        for name in ("lines_added", "lines_removed", "commits", "series"):
            if getattr(event, name) is not None:
                wire[name] = getattr(event, name)
    return wire
