"""The agents' code counters (Claude Code's lines_of_code/commit counts, Gemini CLI's lines.changed) as code.changed
events, on the exports the real CLIs sent when the fake model had them write a file and commit it."""

from __future__ import annotations

import random
import time
from datetime import UTC, date, datetime

import httpx
import pytest

from agentdash.events import Event
from agentdash.projector import Projector
from agentdash.sources import metric_records, translate
from tests.otlp_captures import as_protobuf, capture, later_totals, message, with_resource
from tests.support import product

ORG = "acme"
ORGS = frozenset({ORG})
NOW_US = time.time_ns() // 1000
USER = {"user.email": "dev@example.com"}  # what the README's settings add (Gemini CLI names no user)


def metric_exports(agent: str, scenario: str) -> list[dict]:
    return [with_resource(e, **USER) for e in capture(agent, scenario) if e["signal"] == "metrics"]


def code_events(exports: list[dict]) -> list[Event]:
    found = [e for export in exports for e in translate(metric_records(message(export)), ORGS, NOW_US).events]
    assert {e.type for e in found} <= {"code.changed"}  # every other metric is ignored
    return found


def totals(events: list[Event]) -> tuple[int, int, int]:
    return sum(e.lines_added for e in events), sum(e.lines_removed for e in events), sum(e.commits for e in events)


def test_claude_code_s_delta_counters_are_one_event_per_point():
    events = code_events(metric_exports("claude", "code_changed"))
    # Write of a 3-line file (Claude counts 4: the line after the last newline), then `git commit` in Bash;
    # its "0 removed" point changes nothing and is left out.
    assert sorted((e.lines_added, e.lines_removed, e.commits) for e in events) == [(0, 0, 1), (4, 0, 0)]
    assert {e.series for e in events} == {None}
    assert {(e.user_id, e.run_id) for e in events} == {("dev@example.com", None)}  # no prompt.id: the session's
    assert len({e.session_id for e in events}) == 1
    assert {e.model for e in events if e.lines_added} == {"claude-sonnet-4-5"}


def test_the_same_point_is_the_same_event_in_json_or_protobuf_and_on_a_retry():
    for agent in ("claude", "gemini"):
        exports = metric_exports(agent, "code_changed")
        first = code_events(exports)
        again = [e for x in exports for e in translate(metric_records(message(x)), ORGS, NOW_US).events]
        assert first == again
        reparsed = [e for x in exports for e in translate(
            metric_records(type(message(x)).FromString(as_protobuf(x))), ORGS, NOW_US).events]  # fmt: skip
        assert reparsed == first


def test_gemini_s_cumulative_counter_is_a_running_total_of_its_series_at_the_series_start():
    export = metric_exports("gemini", "code_changed")[0]
    (event,) = code_events([export])
    assert (event.lines_added, event.lines_removed, event.commits) == (3, 0, 0)
    assert event.series is not None and event.series.startswith("otlp-")
    point = next(p for p in _points(export, "gemini_cli.lines.changed"))
    assert event.occurred_us == int(point["startTimeUnixNano"]) // 1000  # not the export's time: see OTEL_MAPPING.md
    # The next periodic exports of the process: the same total again is the same event (a duplicate), a larger one
    # a new event of the same series.
    same, larger = code_events(later_totals(export, "gemini_cli.lines.changed", [(10, 3), (20, 7)]))
    assert same == event
    assert (larger.series, larger.lines_added, larger.occurred_us) == (event.series, 7, event.occurred_us)
    assert larger.id != event.id


def test_a_new_process_of_the_same_session_is_a_new_series():
    events = code_events(metric_exports("gemini", "code_changed_two_prompts"))
    assert sorted(e.lines_added for e in events) == [2, 3]  # notes.txt, then more.txt after --resume
    assert len({e.series for e in events}) == 2 and len({e.session_id for e in events}) == 1


@pytest.mark.parametrize("shuffle", [False, True])
def test_the_fold_counts_each_series_increase_once_in_any_order(storage, shuffle):
    """Per series: the largest total (3 → 3 → 7 → 12 counts 12); deltas as they are; two processes add up."""
    gemini = metric_exports("gemini", "code_changed")
    gemini += later_totals(gemini[0], "gemini_cli.lines.changed", [(10, 3), (20, 7), (30, 12)])
    resumed = metric_exports("gemini", "code_changed_two_prompts")
    claude = metric_exports("claude", "code_changed") + metric_exports("claude", "code_changed_two_prompts")
    events = code_events(gemini + resumed + claude)
    if shuffle:
        events = events + events[::2]
        random.Random(3).shuffle(events)
    for start in range(0, len(events), 2):  # in small batches, folded between them: series split across chunks
        storage.submit(events[start : start + 2]).result(timeout=30)
        Projector(storage).catch_up()
    day = _day(events)
    got = product(storage, ORG, day, day)
    assert (got["lines_added"], got["lines_removed"], got["commits"]) == (12 + 3 + 2 + 4 + 4 + 3, 0, 1)
    assert sum(d["lines_added"] for d in got["series"]) == got["lines_added"]


def test_over_http_the_counters_reach_the_metrics_and_a_resend_moves_nothing(server):
    key = server.create_ingest_key(ORG, name="otlp")
    exports = metric_exports("claude", "code_changed") + metric_exports("gemini", "code_changed")
    exports += later_totals(exports[-1], "gemini_cli.lines.changed", [(10, 3), (20, 9)])

    def send_all() -> None:
        for export in exports:
            answer = httpx.post(f"{server.ingest_url}/v1/metrics", content=as_protobuf(export), timeout=30,
                                headers={"content-type": "application/x-protobuf", "authorization": f"Bearer {key}"})  # fmt: skip
            assert answer.status_code == 200, answer.text

    send_all()
    server.wait_projected()
    day = _day(code_events(exports))
    got = server.org_metrics(ORG, day, day)
    assert (got["lines_added"], got["lines_removed"], got["commits"]) == (4 + 9, 0, 1)
    send_all()  # an exporter's retry
    server.wait_projected()
    assert server.org_metrics(ORG, day, day) == got


def _points(export: dict, metric: str) -> list[dict]:
    return [p for r in export["body"]["resourceMetrics"] for s in r["scopeMetrics"] for m in s["metrics"]
            if m["name"] == metric for p in m["sum"]["dataPoints"]]  # fmt: skip


def _day(events: list[Event]) -> date:
    (day,) = {datetime.fromtimestamp(e.occurred_us / 1e6, tz=UTC).date() for e in events}
    return day
