"""Hand-worked cases for the reference metrics (the oracle other tests check the product against)."""

from __future__ import annotations

import itertools
import math
import random
from datetime import date

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

try:  # tests/ as a plain directory (pytest puts it on sys.path) or as a package
    from reference_metrics import METRIC_KEYS, p95, reference_metrics
except ImportError:
    from tests.reference_metrics import METRIC_KEYS, p95, reference_metrics

ORG = "o1"
D1 = date(2026, 3, 1)
D2 = date(2026, 3, 2)
D3 = date(2026, 3, 3)

_ids = itertools.count()


def ev(type_, at, user="u1", session="s1", run=None, team=None, id_=None, org=ORG, **extra):
    """One wire event; ids are generated in creation order unless given."""
    event = {
        "id": id_ or f"e{next(_ids):06d}",
        "type": type_,
        "org_id": org,
        "user_id": user,
        "session_id": session,
        "occurred_at": at,
    }
    if run is not None:
        event["run_id"] = run
    if team is not None:
        event["team_id"] = team
    event.update(extra)
    return event


def run_events(
    run,
    queued=None,
    started=None,
    finished=None,
    status="succeeded",
    handoffs=(),
    user="u1",
    session="s1",
    team=None,
    **finish_fields,
):
    """The events of one run; each time may be None to leave that event out."""
    out = []
    if queued:
        out.append(ev("run.queued", queued, user, session, run, team))
    if started:
        out.append(ev("run.started", started, user, session, run, team))
    if finished:
        if status == "failed":
            finish_fields.setdefault("failure_category", "other")
        out.append(ev("run.finished", finished, user, session, run, team, status=status, **finish_fields))
    for at in handoffs:
        out.append(ev("handoff", at, user, session, run, team))
    return out


def metrics(events, first=D2, last=None, **filters):
    return reference_metrics(events, ORG, first, last or first, **filters)


def no_nan(value):
    if isinstance(value, float):
        return not math.isnan(value)
    if isinstance(value, dict):
        return all(no_nan(v) for v in value.values())
    if isinstance(value, list):
        return all(no_nan(v) for v in value)
    return True


# ---------------------------------------------------------------- shape


def test_shape_of_the_answer():
    events = run_events(
        "r1", "2026-03-02T10:00:00Z", "2026-03-02T10:01:00Z", "2026-03-02T10:02:00Z", cost_usd=1.25, input_tokens=5
    )
    m = reference_metrics(events, ORG, D1, D3, team_id=None, user_id="u1")
    assert list(m) == ["org_id", "from", "to", "team_id", "user_id", "model", "repo", "agent", *METRIC_KEYS, "series"]
    assert (m["org_id"], m["from"], m["to"], m["team_id"], m["user_id"]) == (
        ORG,
        "2026-03-01",
        "2026-03-03",
        None,
        "u1",
    )
    assert [day["date"] for day in m["series"]] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    for day in m["series"]:
        assert list(day) == ["date", *METRIC_KEYS]
    assert isinstance(m["runs"], int) and isinstance(m["input_tokens"], int) and m["output_tokens"] == 0
    assert isinstance(m["cost_usd"], float) and m["cost_usd"] == 1.25
    assert isinstance(m["run_duration_avg_s"], float) and m["run_duration_avg_s"] == 60.0


def test_from_after_to_is_refused():
    with pytest.raises(ValueError):
        reference_metrics([], ORG, D2, D1)


# ---------------------------------------------------------------- days and time zones


def test_utc_day_boundaries_with_offsets():
    events = [
        # 2026-03-02T01:30Z: a 2 March event although sent with a 1 March local date
        ev("message.sent", "2026-03-01T23:30:00-02:00", user="u1", session="s1"),
        # 2026-03-01T22:30Z: a 1 March event although sent with a 2 March local date
        ev("message.sent", "2026-03-02T00:30:00+02:00", user="u2", session="s2"),
        # run anchored 2026-03-01T23:59:59Z, i.e. on 1 March; duration 30 s across offsets
        ev("run.queued", "2026-03-02T00:59:59+01:00", user="u2", session="s2", run="r1"),
        ev("run.started", "2026-03-02T01:00:00+01:00", user="u2", session="s2", run="r1"),
        ev("run.finished", "2026-03-01T20:00:30-04:00", user="u2", session="s2", run="r1", status="succeeded"),
    ]
    m = reference_metrics(events, ORG, D1, D2)
    assert m["active_users"] == 2
    assert m["dau"] == 2  # u1's message and u2's started/finished events fall on 2 March
    assert (m["runs"], m["sessions"]) == (1, 2)
    assert m["run_duration_avg_s"] == 30.0
    assert m["queue_wait_avg_s"] == 1.0
    day1, day2 = m["series"]
    assert (day1["active_users"], day1["sessions"], day1["runs"]) == (1, 1, 1)  # u2 only; s2; r1
    assert (day2["active_users"], day2["sessions"], day2["runs"]) == (2, 1, 0)  # u1 and u2; s1
    assert (day1["dau"], day1["wau"], day2["dau"], day2["wau"]) == (1, 1, 2, 2)


def test_run_belongs_to_the_day_of_its_earliest_event_even_if_that_is_not_queued():
    # the finished event is (odd but possible) earlier than started: anchor = finished, duration negative, kept
    events = run_events("r1", None, "2026-03-03T00:00:10Z", "2026-03-02T23:59:50Z")
    m = reference_metrics(events, ORG, D2, D3)
    assert [d["runs"] for d in m["series"]] == [1, 0]
    assert m["run_duration_avg_s"] == -20.0
    assert m["run_duration_p95_s"] == -20.0


# ---------------------------------------------------------------- runs


def test_runs_missing_queued_or_started():
    events = [
        *run_events("r1", None, "2026-03-02T10:00:00Z", "2026-03-02T10:05:00Z"),  # no queued: duration 300
        *run_events("r2", "2026-03-02T10:00:00Z", None, "2026-03-02T10:20:00Z"),  # no started: nothing
        *run_events("r3", "2026-03-02T10:00:00Z", "2026-03-02T10:00:30Z", "2026-03-02T10:01:30Z"),  # 60, wait 30
        *run_events("r4", "2026-03-02T09:00:00Z", "2026-03-02T09:02:00Z", None, session="s2"),  # wait 120
    ]
    m = metrics(events)
    assert (m["runs"], m["runs_finished"], m["runs_succeeded"]) == (4, 3, 3)
    assert m["success_rate"] == 1.0
    assert m["run_duration_avg_s"] == 180.0  # (300 + 60) / 2
    assert m["run_duration_p95_s"] == pytest.approx(288.0)  # 60 + 0.95 * 240
    assert m["queue_wait_avg_s"] == 75.0  # (30 + 120) / 2
    assert m["queue_wait_p95_s"] == pytest.approx(115.5)  # 30 + 0.95 * 90
    assert m["runs_per_session"] == 2.0  # 4 runs in sessions s1, s2
    assert m["active_agent_time_per_session_s"] == 180.0  # (300 + 60) / 2 sessions
    assert m["sessions"] == 2
    assert m["active_users"] == 1 and m["runs_per_user"] == 4.0 and m["sessions_per_user"] == 2.0


def test_run_queued_or_started_twice_earliest_counts():
    events = [
        ev("run.queued", "2026-03-02T10:05:00Z", run="r1"),  # re-queue: ignored for the wait
        ev("run.started", "2026-03-02T10:06:00Z", run="r1"),  # second start: ignored
        ev("run.queued", "2026-03-02T10:00:00Z", run="r1"),
        ev("run.started", "2026-03-02T10:01:00Z", run="r1"),
        ev("run.finished", "2026-03-02T10:11:00Z", run="r1", status="succeeded"),
    ]
    m = metrics(events)
    assert m["runs"] == 1
    assert m["queue_wait_avg_s"] == 60.0
    assert m["run_duration_avg_s"] == 600.0


def test_run_finished_twice_latest_wins():
    late = ev(
        "run.finished",
        "2026-03-02T10:20:00Z",
        run="r1",
        status="succeeded",
        cost_usd=2.5,
        input_tokens=100,
        output_tokens=200,
    )
    early = ev(
        "run.finished",
        "2026-03-02T10:10:00Z",
        run="r1",
        status="failed",
        failure_category="timeout",
        cost_usd=1.0,
        input_tokens=10,
        output_tokens=20,
    )
    started = ev("run.started", "2026-03-02T10:00:00Z", run="r1")
    for events in ([late, early, started], [started, early, late]):
        m = metrics(events)
        assert (m["runs"], m["runs_finished"], m["runs_succeeded"], m["runs_failed"]) == (1, 1, 1, 0)
        assert m["failures_by_category"] == []
        assert m["run_duration_avg_s"] == 1200.0
        assert (m["cost_usd"], m["input_tokens"], m["output_tokens"]) == (2.5, 100, 200)
        assert m["cost_per_run_usd"] == 2.5


def test_run_finished_twice_at_the_same_instant_larger_id_wins():
    a = ev("run.finished", "2026-03-02T10:10:00Z", run="r1", id_="fin-a", status="succeeded", cost_usd=1.0)
    b = ev(
        "run.finished",
        "2026-03-02T12:10:00+02:00",
        run="r1",
        id_="fin-b",
        status="failed",
        failure_category="tool_error",
        cost_usd=3.0,
    )
    for events in ([a, b], [b, a]):
        m = metrics(events)
        assert (m["runs_succeeded"], m["runs_failed"]) == (0, 1)
        assert m["failures_by_category"] == [{"category": "tool_error", "runs": 1}]
        assert m["cost_usd"] == 3.0
        assert m["success_rate"] == 0.0


def test_statuses_failures_and_cost():
    t = "2026-03-02T10:00:00Z"
    events = [
        *run_events("r1", t, t, t, "succeeded", cost_usd=1.5, input_tokens=10, output_tokens=1),
        *run_events("r2", t, t, t, "succeeded"),  # no cost, no tokens: 0
        *run_events("r3", t, t, t, "failed", failure_category="timeout", cost_usd=0.5, input_tokens=7),
        *run_events("r4", t, t, t, "failed", failure_category="tool_error"),
        *run_events("r5", t, t, t, "failed", failure_category="timeout"),
        *run_events("r6", t, t, t, "failed", failure_category="model_error"),
        *run_events("r7", t, t, t, "cancelled", cost_usd=0.25),
        *run_events("r8", t, t, None),  # not finished
    ]
    m = metrics(events)
    assert (m["runs"], m["runs_finished"]) == (8, 7)
    assert (m["runs_succeeded"], m["runs_failed"], m["runs_cancelled"]) == (2, 4, 1)
    assert m["success_rate"] == pytest.approx(2 / 6)
    # largest first, ties by category name
    assert m["failures_by_category"] == [
        {"category": "timeout", "runs": 2},
        {"category": "model_error", "runs": 1},
        {"category": "tool_error", "runs": 1},
    ]
    assert m["cost_usd"] == pytest.approx(2.25)
    assert (m["input_tokens"], m["output_tokens"]) == (17, 1)
    assert m["cost_per_run_usd"] == pytest.approx(2.25 / 7)
    assert m["run_duration_avg_s"] == 0.0 and m["queue_wait_p95_s"] == 0.0


def test_p95_interpolates_on_a_known_list():
    durations = [40, 10, 100, 30, 20]  # sorted: 10 20 30 40 100; rank 0.95 * 4 = 3.8
    events = []
    for i, seconds in enumerate(durations):
        events += run_events(
            f"r{i}", None, "2026-03-02T10:00:00Z", f"2026-03-02T10:{seconds // 60:02d}:{seconds % 60:02d}Z"
        )
    m = metrics(events)
    assert m["run_duration_avg_s"] == 40.0
    assert m["run_duration_p95_s"] == pytest.approx(88.0)  # 40 + 0.8 * (100 - 40)
    assert p95([7.0]) == 7.0
    assert p95([0.0, 100.0]) == pytest.approx(95.0)
    assert p95(list(range(1, 11))) == pytest.approx(9.55)  # rank 8.55 between 9 and 10
    assert p95([]) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=60))
def test_p95_agrees_with_numpy(values):
    assert p95(values) == pytest.approx(float(numpy.percentile(values, 95)), rel=1e-9, abs=1e-6)


# ---------------------------------------------------------------- usage


def usage(at, run=None, cost=0.0, model=None, **extra):
    attributes = {"attributes": {"model": model}} if model else {}
    return ev("usage", at, run=run, cost_usd=cost, **attributes, **extra)


def test_a_runs_usage_adds_to_its_run_finished_amounts_on_the_runs_day():
    events = [
        *run_events(
            "r1",
            "2026-03-02T23:00:00Z",
            None,
            "2026-03-02T23:30:00Z",
            cost_usd=1.0,
            input_tokens=10,
            cache_write_tokens=3,
        ),
        usage("2026-03-02T23:10:00Z", "r1", 0.5, input_tokens=5, cache_read_tokens=100),
        usage("2026-03-03T01:00:00Z", "r1", 0.25, output_tokens=7, cache_write_tokens=1),  # next day, late
    ]
    m = metrics(events, D2, D3)
    assert (m["runs"], m["runs_finished"]) == (1, 1)
    assert m["cost_usd"] == 1.75 and m["cost_per_run_usd"] == 1.75
    assert (m["input_tokens"], m["output_tokens"], m["cache_read_tokens"], m["cache_write_tokens"]) == (15, 7, 100, 4)
    assert [day["cost_usd"] for day in m["series"]] == [1.75, 0.0]
    assert [day["active_users"] for day in m["series"]] == [1, 1]  # the late call makes u1 active on 3 March


def test_a_usage_may_be_the_runs_earliest_event_and_a_run_of_its_own():
    events = [
        usage("2026-03-01T23:59:00Z", "r1", 0.5, user="u2", team="B", session="s2"),  # r1's anchor
        *run_events("r1", "2026-03-02T00:10:00Z", None, "2026-03-02T00:20:00Z", team="A", cost_usd=1.0),
        usage("2026-03-02T09:00:00Z", "r2", 0.125),  # r2 has nothing but this call
    ]
    assert (metrics(events, D1)["runs"], metrics(events, D1)["cost_usd"]) == (1, 1.5)
    assert metrics(events, D1, team_id="B", user_id="u2")["runs"] == 1
    assert metrics(events, D1, team_id="A")["runs"] == 0
    lonely = metrics(events, D2)
    assert (lonely["runs"], lonely["runs_finished"], lonely["cost_usd"]) == (1, 0, 0.125)
    assert lonely["cost_per_run_usd"] is None


def test_a_usage_without_a_run_counts_on_its_sessions_anchor():
    events = [
        ev("session.started", "2026-03-02T23:00:00Z", session="s1", team="A"),
        usage("2026-03-03T08:00:00Z", None, 0.01, session="s1", team="B", input_tokens=40),  # a title, next morning
    ]
    m = metrics(events, D2, D3)
    assert m["cost_usd"] == 0.01 and m["input_tokens"] == 40 and m["runs"] == 0
    assert [day["cost_usd"] for day in m["series"]] == [0.01, 0.0]
    assert metrics(events, D2, D3, team_id="A")["cost_usd"] == 0.01  # the session's team, not the call's
    assert metrics(events, D2, D3, team_id="B")["cost_usd"] == 0.0
    assert metrics(events, D3)["cost_usd"] == 0.0


def test_usage_counts_under_its_own_model_else_its_runs():
    events = [
        ev("run.queued", "2026-03-02T10:00:00Z", run="r1", attributes={"model": "big", "repo": "web"}),
        ev("run.finished", "2026-03-02T10:30:00Z", run="r1", status="succeeded", cost_usd=1.0),
        usage("2026-03-02T10:05:00Z", "r1", 0.25, model="big"),
        usage("2026-03-02T10:06:00Z", "r1", 0.125, model="small"),
        usage("2026-03-02T10:07:00Z", "r1", 0.5),  # no model of its own: the run's
        usage("2026-03-02T10:08:00Z", None, 0.0625, model="small"),  # the session's own
    ]
    assert metrics(events)["cost_usd"] == 1.9375
    assert metrics(events, model="big")["cost_usd"] == 1.75
    small = metrics(events, model="small")
    assert (small["cost_usd"], small["runs"]) == (0.1875, 0)
    assert metrics(events, repo="web")["cost_usd"] == 1.875  # a session's own call has no repo


# ---------------------------------------------------------------- handoffs and the 4-hour follow-up


def handed_off_run(handoffs=("2026-03-02T11:00:00Z",)):
    return run_events(
        "r1",
        "2026-03-02T10:00:00Z",
        "2026-03-02T10:01:00Z",
        "2026-03-02T10:10:00Z",
        handoffs=handoffs,
        user="u1",
        session="s1",
    )


@pytest.mark.parametrize(
    ("follow_up", "expected"),
    [
        pytest.param(ev("run.queued", "2026-03-02T15:00:00Z", run="r2"), 1.0, id="exactly-4h"),
        pytest.param(ev("run.queued", "2026-03-02T17:00:00+02:00", run="r2"), 1.0, id="exactly-4h-other-offset"),
        pytest.param(ev("run.queued", "2026-03-02T12:00:00Z", run="r2"), 1.0, id="1h"),
        pytest.param(ev("run.queued", "2026-03-02T15:00:01Z", run="r2"), 0.0, id="4h-plus-1s"),
        pytest.param(ev("run.queued", "2026-03-02T11:00:00Z", run="r2"), 0.0, id="same-instant"),
        pytest.param(ev("run.queued", "2026-03-02T10:59:59Z", run="r2"), 0.0, id="before-handoff"),
        pytest.param(ev("run.queued", "2026-03-02T12:00:00Z", run="r2", user="u2"), 0.0, id="other-user"),
        pytest.param(ev("run.queued", "2026-03-02T12:00:00Z", run="r2", session="s2"), 0.0, id="other-session"),
        pytest.param(ev("run.queued", "2026-03-02T12:00:00Z", run="r1"), 0.0, id="own-requeue"),
        pytest.param(ev("run.started", "2026-03-02T12:00:00Z", run="r2"), 0.0, id="started-not-queued"),
        pytest.param(ev("message.sent", "2026-03-02T12:00:00Z"), 0.0, id="message-not-run"),
    ],
)
def test_post_handoff_iteration_edges(follow_up, expected):
    m = metrics(handed_off_run() + [follow_up])
    assert m["runs_handed_off"] == 1
    assert m["handoff_rate"] == 1.0
    assert m["post_handoff_iteration_rate"] == expected


def test_follow_up_counts_from_the_first_handoff():
    events = handed_off_run(handoffs=("2026-03-02T14:00:00Z", "2026-03-02T11:00:00Z"))
    events.append(ev("run.queued", "2026-03-02T15:30:00Z", run="r2"))  # 4.5 h after the first handoff
    m = metrics(events)
    assert m["runs_handed_off"] == 1
    assert m["post_handoff_iteration_rate"] == 0.0


def test_follow_up_may_fall_outside_the_range_and_outside_the_team_filter():
    events = run_events(
        "r1",
        "2026-03-02T20:00:00Z",
        "2026-03-02T20:01:00Z",
        "2026-03-02T20:10:00Z",
        handoffs=("2026-03-02T22:00:00Z",),
        team="A",
    )
    events.append(ev("run.queued", "2026-03-03T01:00:00Z", run="r2", team="B"))  # next day, other team
    m = metrics(events, D2, team_id="A")
    assert (m["runs"], m["runs_handed_off"]) == (1, 1)
    assert m["post_handoff_iteration_rate"] == 1.0


def test_follow_up_uses_the_runs_anchor_user_and_session():
    # r1's earliest event is by u1 in s1; a later handoff event of r1 says u2/s2 but does not move the run
    events = [
        ev("run.started", "2026-03-02T10:00:00Z", user="u1", session="s1", run="r1"),
        ev("run.finished", "2026-03-02T10:05:00Z", user="u2", session="s2", run="r1", status="succeeded"),
        ev("handoff", "2026-03-02T11:00:00Z", user="u2", session="s2", run="r1"),
        ev("run.queued", "2026-03-02T12:00:00Z", user="u2", session="s2", run="r2"),
    ]
    m = metrics(events)
    assert m["runs_handed_off"] == 1
    assert m["post_handoff_iteration_rate"] == 0.0
    events.append(ev("run.queued", "2026-03-02T12:00:00Z", user="u1", session="s1", run="r3"))
    assert metrics(events)["post_handoff_iteration_rate"] == 1.0


def test_handoff_rates_over_finished_runs():
    events = [
        *handed_off_run(),  # r1: finished, handed off, followed up by r2 (queued 12:00, unfinished)
        ev("run.queued", "2026-03-02T12:00:00Z", run="r2"),
        ev("handoff", "2026-03-02T12:30:00Z", run="r2"),  # r2 handed off but not finished: not counted
        *run_events("r3", None, "2026-03-02T10:00:00Z", "2026-03-02T10:00:10Z"),  # finished, no handoff
    ]
    m = metrics(events)
    assert (m["runs"], m["runs_finished"], m["runs_handed_off"]) == (3, 2, 1)
    assert m["handoff_rate"] == 0.5
    assert m["post_handoff_iteration_rate"] == 1.0


# ---------------------------------------------------------------- sessions


def test_sessions_without_messages():
    events = [
        ev("session.started", "2026-03-02T09:00:00Z", session="s1"),  # no message: no lifespan
        ev("session.started", "2026-03-02T09:00:00Z", session="s2"),
        ev("message.sent", "2026-03-02T10:00:00Z", session="s2"),
        ev("message.sent", "2026-03-02T10:30:00Z", session="s2"),
        ev("message.sent", "2026-03-02T10:10:00Z", session="s2"),  # lifespan 1800
        ev("message.sent", "2026-03-02T11:00:00Z", session="s3"),  # one message: lifespan 0
        *run_events("r1", "2026-03-02T11:00:00Z", None, None, session="s4"),  # a session of run events only
    ]
    m = metrics(events)
    assert m["sessions"] == 4
    assert m["session_lifespan_avg_s"] == 900.0  # (1800 + 0) / 2
    only_silent = metrics([ev("session.started", "2026-03-02T09:00:00Z", session="s1")])
    assert only_silent["sessions"] == 1
    assert only_silent["session_lifespan_avg_s"] is None


def test_session_belongs_to_its_anchor_day_and_lifespan_spans_days():
    events = [
        ev("session.started", "2026-03-01T23:00:00Z", session="s1"),
        ev("message.sent", "2026-03-02T01:00:00Z", session="s1"),
        ev("message.sent", "2026-03-02T03:00:00Z", session="s1"),
    ]
    m = reference_metrics(events, ORG, D1, D2)
    assert [d["sessions"] for d in m["series"]] == [1, 0]
    assert m["series"][0]["session_lifespan_avg_s"] == 7200.0
    assert m["series"][1]["session_lifespan_avg_s"] is None
    assert metrics(events, D2)["sessions"] == 0


# ---------------------------------------------------------------- zero denominators


RATIO_KEYS = (
    "runs_per_user",
    "sessions_per_user",
    "success_rate",
    "run_duration_avg_s",
    "run_duration_p95_s",
    "queue_wait_avg_s",
    "queue_wait_p95_s",
    "active_agent_time_per_session_s",
    "cost_per_run_usd",
    "handoff_rate",
    "post_handoff_iteration_rate",
    "runs_per_session",
    "session_lifespan_avg_s",
)


def test_no_events_gives_zero_counts_and_null_ratios():
    m = reference_metrics([], ORG, D1, D2)
    for key in RATIO_KEYS:
        assert m[key] is None, key
        assert all(day[key] is None for day in m["series"]), key
    for key in (
        "active_users",
        "dau",
        "wau",
        "mau",
        "runs",
        "runs_finished",
        "runs_succeeded",
        "runs_failed",
        "runs_cancelled",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "runs_handed_off",
        "sessions",
    ):
        assert m[key] == 0 and type(m[key]) is int, key
    assert m["cost_usd"] == 0.0 and type(m["cost_usd"]) is float
    assert m["failures_by_category"] == []
    assert len(m["series"]) == 2


def test_partial_zero_denominators():
    events = [
        ev("message.sent", "2026-03-02T08:00:00Z", session="s0"),
        *run_events("r1", "2026-03-02T10:00:00Z", None, "2026-03-02T10:10:00Z", "cancelled"),
    ]
    m = metrics(events)
    assert m["runs_per_user"] == 1.0 and m["sessions_per_user"] == 2.0
    assert m["success_rate"] is None  # only a cancelled run
    assert m["runs_cancelled"] == 1
    assert m["cost_per_run_usd"] == 0.0  # one finished run, no cost
    assert m["handoff_rate"] == 0.0
    assert m["post_handoff_iteration_rate"] is None  # no handed-off run
    assert m["run_duration_avg_s"] is None and m["queue_wait_avg_s"] is None
    assert m["active_agent_time_per_session_s"] == 0.0  # a run without duration contributes 0
    assert no_nan(m)

    active_no_runs = metrics([ev("message.sent", "2026-03-02T08:00:00Z")])
    assert active_no_runs["runs_per_user"] == 0.0 and active_no_runs["runs_per_session"] is None


# ---------------------------------------------------------------- duplicates and other orgs


def test_duplicates_first_copy_wins():
    events = [
        ev("message.sent", "2026-03-02T08:00:00Z", user="u1", id_="m1"),
        ev("message.sent", "2026-03-02T09:00:00Z", user="u2", session="s2", id_="m1"),  # re-sent id: ignored
        ev("run.started", "2026-03-02T10:00:00Z", run="r1", id_="st"),
        ev("run.finished", "2026-03-02T10:10:00Z", run="r1", id_="fin", status="succeeded", cost_usd=1.0),
        ev(
            "run.finished",
            "2026-03-02T10:30:00Z",
            run="r1",
            id_="fin",
            status="failed",
            failure_category="timeout",
            cost_usd=9.0,
        ),  # same id: ignored, not "the latest"
        ev("run.finished", "2026-03-02T10:10:00Z", run="r1", id_="fin", status="succeeded", cost_usd=1.0),
    ]
    m = metrics(events)
    assert (m["active_users"], m["sessions"]) == (1, 1)
    assert (m["runs"], m["runs_succeeded"], m["runs_failed"]) == (1, 1, 0)
    assert m["run_duration_avg_s"] == 600.0
    assert m["cost_usd"] == 1.0


def test_other_orgs_are_ignored_and_do_not_dedupe():
    events = [
        ev("message.sent", "2026-03-02T08:00:00Z", user="x1", id_="m1", org="o2"),
        ev("message.sent", "2026-03-02T08:00:00Z", user="u1", id_="m1"),  # same id, other org: distinct
        *run_events("rx", "2026-03-02T09:00:00Z", None, None, user="x2"),
    ]
    events[2]["org_id"] = "o2"
    m = metrics(events)
    assert (m["active_users"], m["runs"], m["sessions"]) == (1, 0, 1)
    assert metrics(events[:1])["active_users"] == 0


# ---------------------------------------------------------------- filters


def filter_events():
    return [
        ev("session.started", "2026-03-02T09:00:00Z", user="u1", session="s1", team="A"),
        *run_events(
            "r1",
            "2026-03-02T09:10:00Z",
            "2026-03-02T09:11:00Z",
            "2026-03-02T09:20:00Z",
            user="u1",
            session="s1",
            team="A",
        ),
        # u1 moved to team B during the day, still in session s1 (anchored in team A)
        ev("message.sent", "2026-03-02T12:00:00Z", user="u1", session="s1", team="B"),
        *run_events("r2", "2026-03-02T12:05:00Z", None, None, user="u1", session="s1", team="B"),
        # u2's run is anchored in team B; a later event of it says team A
        ev("run.queued", "2026-03-02T10:00:00Z", user="u2", session="s2", run="r3", team="B"),
        ev("run.finished", "2026-03-02T10:30:00Z", user="u2", session="s2", run="r3", team="A", status="succeeded"),
        # u3 has no team
        ev("message.sent", "2026-03-02T11:00:00Z", user="u3", session="s3"),
        *run_events("r4", "2026-03-02T11:05:00Z", None, None, user="u3", session="s3"),
    ]


@pytest.mark.parametrize(
    ("filters", "active", "runs", "sessions", "runs_per_user"),
    [
        ({}, 3, 4, 3, 4 / 3),
        ({"team_id": "A"}, 2, 1, 1, 0.5),  # activity: u1 (s1, r1), u2 (r3's finished event)
        ({"team_id": "B"}, 2, 2, 1, 1.0),  # activity: u1 (message, r2), u2; runs r2, r3; sessions s2
        ({"user_id": "u1"}, 1, 2, 1, 2.0),
        ({"user_id": "u3"}, 1, 1, 1, 1.0),
        ({"team_id": "A", "user_id": "u2"}, 1, 0, 0, 0.0),
        ({"team_id": "B", "user_id": "u1"}, 1, 1, 0, 1.0),
        ({"team_id": "Z"}, 0, 0, 0, None),
    ],
)
def test_team_and_user_filters(filters, active, runs, sessions, runs_per_user):
    m = metrics(filter_events(), **filters)
    assert m["team_id"] == filters.get("team_id") and m["user_id"] == filters.get("user_id")
    assert (m["active_users"], m["dau"], m["runs"], m["sessions"]) == (active, active, runs, sessions)
    if runs_per_user is None:
        assert m["runs_per_user"] is None
    else:
        assert m["runs_per_user"] == pytest.approx(runs_per_user)


def test_team_filter_on_durations_and_cost():
    m = metrics(filter_events(), team_id="A")
    assert m["runs_finished"] == 1 and m["run_duration_avg_s"] == 540.0  # r1 only; r3 is team B
    m = metrics(filter_events(), team_id="B")
    assert m["runs_finished"] == 1 and m["run_duration_avg_s"] is None  # r3 has no started event
    assert m["queue_wait_avg_s"] is None
    assert m["runs_per_session"] == 1.0  # r2 in s1, r3 in s2


# ---------------------------------------------------------------- dau / wau / mau


def window_events():
    return [
        ev("message.sent", "2026-03-31T12:00:00Z", user="u1"),  # to
        ev("message.sent", "2026-03-25T00:00:00Z", user="u2"),  # to - 6: in wau
        ev("message.sent", "2026-03-25T01:00:00+02:00", user="u3"),  # 24 March UTC, to - 7: mau only
        ev("message.sent", "2026-03-02T00:00:00Z", user="u4"),  # to - 29: mau
        ev("message.sent", "2026-03-01T23:59:59Z", user="u5"),  # to - 30: outside mau
        ev("message.sent", "2026-04-01T00:00:00Z", user="u6"),  # after to
    ]


def test_wau_mau_windows_reach_before_from():
    m = reference_metrics(window_events(), ORG, date(2026, 3, 31), date(2026, 3, 31))
    assert (m["active_users"], m["dau"], m["wau"], m["mau"]) == (1, 1, 2, 4)


def test_wau_mau_over_a_month_and_per_day():
    m = reference_metrics(window_events(), ORG, date(2026, 3, 1), date(2026, 3, 31))
    assert (m["active_users"], m["dau"], m["wau"], m["mau"]) == (5, 1, 2, 4)
    series = {day["date"]: day for day in m["series"]}
    assert len(series) == 31
    first, second = series["2026-03-01"], series["2026-03-02"]
    assert (first["active_users"], first["dau"], first["wau"], first["mau"]) == (1, 1, 1, 1)
    assert (second["active_users"], second["dau"], second["wau"], second["mau"]) == (1, 1, 2, 2)
    quiet = series["2026-03-10"]  # u4 (2 Mar) is 8 days back: out of wau, in mau; u5 (1 Mar) too
    assert (quiet["active_users"], quiet["dau"], quiet["wau"], quiet["mau"]) == (0, 0, 0, 2)
    assert quiet["runs_per_user"] is None


# ---------------------------------------------------------------- ties


def test_tie_on_occurred_at_smaller_id_is_earlier():
    events = [
        # r1: two events at the same instant; "a" < "b" so the run is u2's, team B, session s2
        ev("run.queued", "2026-03-02T10:00:00Z", user="u1", session="s1", run="r1", team="A", id_="b"),
        ev("run.started", "2026-03-02T12:00:00+02:00", user="u2", session="s2", run="r1", team="B", id_="a"),
        ev(
            "run.finished",
            "2026-03-02T10:01:00Z",
            user="u1",
            session="s1",
            run="r1",
            team="A",
            id_="c",
            status="succeeded",
        ),
        # session s3: tie again, smaller id "m1" decides the session's user
        ev("message.sent", "2026-03-02T11:00:00Z", user="u1", session="s3", id_="m2"),
        ev("message.sent", "2026-03-02T11:00:00Z", user="u2", session="s3", id_="m1"),
    ]
    assert metrics(events, user_id="u2")["runs"] == 1
    assert metrics(events, user_id="u1")["runs"] == 0
    assert metrics(events, team_id="B")["runs"] == 1
    assert metrics(events, team_id="A")["runs"] == 0
    assert metrics(events, user_id="u2")["runs_per_session"] == 1.0
    # sessions: s2 (r1's started event, earliest "a") is u2's; s1 is u1's; s3 is u2's
    assert metrics(events, user_id="u2")["sessions"] == 2
    assert metrics(events, user_id="u1")["sessions"] == 1
    m = metrics(events)
    assert m["run_duration_avg_s"] == 60.0 and m["queue_wait_avg_s"] == 0.0
    assert m["session_lifespan_avg_s"] == 0.0


# ---------------------------------------------------------------- order and duplication do not matter


EVENT_TYPES = ("session.started", "message.sent", "run.queued", "run.started", "run.finished", "handoff", "usage",
               "pr.opened", "pr.merged", "pr.closed", "code.changed")  # fmt: skip


@st.composite
def event_lists(draw):
    count = draw(st.integers(min_value=0, max_value=40))
    events = []
    for i in range(count):
        type_ = draw(st.sampled_from(EVENT_TYPES))
        minute = draw(st.integers(min_value=0, max_value=3 * 24 * 60))
        offset = draw(st.sampled_from(["Z", "+02:00", "-05:00"]))
        hours = {"Z": 0, "+02:00": 2, "-05:00": -5}[offset]
        local = minute + hours * 60 + 28 * 24 * 60  # from 2026-02-28T00:00Z on
        day, rest = divmod(local, 24 * 60)
        stamp = f"2026-{'02' if day < 28 else '03'}-{(day if day < 28 else day - 28) + 1:02d}T{rest // 60:02d}:{rest % 60:02d}:00{offset}"
        extra = {}
        run = None
        if type_.startswith("run.") or type_ == "handoff":
            run = draw(st.sampled_from(["r1", "r2", "r3", "r4"]))
        if type_ == "usage":
            run = draw(st.sampled_from([None, "r1", "r2", "r3", "r4"]))
            extra["cost_usd"] = draw(st.sampled_from([0.1, 0.2, 0.3, 1e-9, 1e9]))
            extra["cache_read_tokens"] = draw(st.integers(0, 1000))
            extra["attributes"] = {"model": draw(st.sampled_from(["m1", "m2"]))}
            if draw(st.booleans()):  # its own agent, else it counts under its run's
                extra["attributes"]["agent"] = draw(st.sampled_from(["codex", "claude-code"]))
        if type_ == "code.changed":  # counts or running totals of a series, of a run or of the session
            run = draw(st.sampled_from([None, "r1", "r2"]))
            extra["lines_added"] = draw(st.integers(0, 50))
            extra["commits"] = draw(st.integers(0, 2))
            if draw(st.booleans()):
                extra["series"] = draw(st.sampled_from(["sA", "sB"]))
            if draw(st.booleans()):
                extra["attributes"] = {"model": "m1", "repo": "a/w"}
        if type_.startswith("run.") and draw(st.booleans()):
            extra["attributes"] = {
                "repo": draw(st.sampled_from(["a/w", "A/W"])),
                "branch": draw(st.sampled_from(["b1", "b2"])),
            }
            if draw(st.booleans()):  # the run's agent is its earliest event's
                extra["attributes"]["agent"] = draw(st.sampled_from(["codex", "claude-code"]))
        if type_.startswith(
            "pr."
        ):  # PRs before and after their runs, reopened, merged, closed, one number in two repos
            pr_event = {"id": f"id{i:03d}", "type": type_, "org_id": ORG, "occurred_at": stamp,
                        "repo": draw(st.sampled_from(["a/w", "A/W", "a/x"])), "pr_number": draw(st.integers(1, 2)),
                        "head_branch": draw(st.sampled_from(["b1", "b2", "claude/b3"]))}  # fmt: skip
            if draw(st.booleans()):
                pr_event["user_id"] = draw(st.sampled_from(["u1", "u2"]))
            if draw(st.booleans()):
                pr_event["team_id"] = draw(st.sampled_from(["A", "B"]))
            if draw(st.integers(0, 3)) == 0:
                pr_event["attributes"] = {"agent_mark": draw(st.sampled_from(["codex", "copilot"]))}
            events.append(pr_event)
            continue
        if type_ == "run.finished":
            extra["status"] = draw(st.sampled_from(["succeeded", "failed", "cancelled"]))
            if extra["status"] == "failed":
                extra["failure_category"] = draw(st.sampled_from(["timeout", "other"]))
            extra["cost_usd"] = draw(st.sampled_from([0.1, 0.2, 0.3, 1e-9, 1e9]))
            extra["input_tokens"] = draw(st.integers(0, 1000))
        events.append(
            ev(
                type_,
                stamp,
                user=draw(st.sampled_from(["u1", "u2"])),
                session=draw(st.sampled_from(["s1", "s2", "s3"])),
                run=run,
                team=draw(st.sampled_from([None, "A", "B"])),
                id_=f"id{i:03d}",
                **extra,
            )
        )
    return events


@settings(max_examples=60, deadline=None)
@given(
    event_lists(),
    st.randoms(use_true_random=False),
    st.sampled_from([{}, {"team_id": "A"}, {"user_id": "u2"}, {"agent": "codex"}]),
)
def test_order_and_duplicates_do_not_change_the_metrics(events, rnd, filters):
    base = reference_metrics(events, ORG, D1, D3, **filters)
    noisy = events + [dict(e) for e in events if rnd.random() < 0.5]
    rnd.shuffle(noisy)
    assert reference_metrics(noisy, ORG, D1, D3, **filters) == base
    assert no_nan(base)
    # the series splits the range's counts by day
    for key in (
        "runs",
        "runs_finished",
        "runs_failed",
        "sessions",
        "runs_handed_off",
        "input_tokens",
        "cache_read_tokens",
        "agent_prs_opened",
        "agent_prs_merged",
        "agent_prs_closed_unmerged",
        "lines_added",
        "commits",
    ):
        assert sum(day[key] for day in base["series"]) == base[key], key
    assert base["active_users"] <= sum(day["active_users"] for day in base["series"])
    assert base["series"][-1]["dau"] == base["dau"]
    assert base["series"][-1]["wau"] == base["wau"] and base["series"][-1]["mau"] == base["mau"]


def test_shuffled_handworked_case_is_stable():
    events = filter_events() + window_events() + handed_off_run()
    rnd = random.Random(42)
    expected = reference_metrics(events, ORG, D1, date(2026, 3, 31))
    for _ in range(5):
        rnd.shuffle(events)
        assert reference_metrics(events, ORG, D1, date(2026, 3, 31)) == expected


# ---------------------------------------------------------------- model, repo and team-scope filters


def test_a_run_is_its_earliest_agent_s_and_its_calls_count_under_their_own_agent_else_the_run_s():
    events = [
        ev("run.started", "2026-03-02T10:00:00Z", run="r1", id_="b", attributes={"agent": "codex"}),
        ev("run.queued", "2026-03-02T10:00:00Z", run="r1", id_="a", attributes={"agent": "claude-code"}),  # tie: "a"
        ev("run.finished", "2026-03-02T10:30:00Z", run="r1", status="succeeded", cost_usd=1.0,
           attributes={"agent": "gemini-cli"}),
        usage("2026-03-02T10:05:00Z", "r1", 0.25),  # no agent of its own: the run's
        usage("2026-03-02T10:06:00Z", "r1", 0.5, attributes={"agent": "codex"}),
        usage("2026-03-02T10:07:00Z", None, 0.125, attributes={"agent": "codex"}),  # the session's own
        *run_events("r2", "2026-03-02T11:00:00Z", None, "2026-03-02T11:30:00Z", status="failed",
                    failure_category="other", user="u2", session="s2"),  # no agent at all
        ev("message.sent", "2026-03-02T12:00:00Z", user="u3", session="s3"),  # active, ran nothing
    ]  # fmt: skip
    claude = metrics(events, agent="claude-code")
    assert (claude["runs"], claude["cost_usd"], claude["success_rate"]) == (1, 1.25, 1.0)
    assert (claude["active_users"], claude["sessions"], claude["agent"]) == (1, 1, "claude-code")
    codex = metrics(events, agent="codex")
    assert (codex["runs"], codex["cost_usd"], codex["active_users"]) == (0, 0.625, 0)
    assert metrics(events, agent="gemini-cli")["runs"] == 0  # the run.finished is not its earliest event
    everyone = metrics(events)
    assert (everyone["runs"], everyone["cost_usd"], everyone["active_users"]) == (2, 1.875, 3)


def test_a_pr_is_its_runs_agent_else_its_earliest_mark():
    def pr(id_, type_, at, number, branch, mark=None):
        event = {"id": id_, "type": type_, "org_id": ORG, "occurred_at": at, "repo": "a/w", "pr_number": number,
                 "head_branch": branch}  # fmt: skip
        return {**event, "attributes": {"agent_mark": mark}} if mark else event

    codex_run = {"agent": "codex", "repo": "a/w", "branch": "b1"}
    events = [
        ev("run.queued", "2026-03-02T09:00:00Z", run="r1", attributes=codex_run),
        ev("run.queued", "2026-03-02T09:00:00Z", run="r2", attributes={"repo": "a/w", "branch": "b2"}),  # no agent
        pr("p1", "pr.opened", "2026-03-02T10:00:00Z", 1, "b1", mark="claude-code"),  # its run's agent wins
        pr("p2", "pr.opened", "2026-03-02T10:00:00Z", 2, "b2"),  # linked, no agent anywhere
        pr("p3", "pr.merged", "2026-03-02T12:00:00Z", 3, "x", mark="codex"),
        pr("p4", "pr.opened", "2026-03-02T11:00:00Z", 3, "x", mark="copilot"),  # the earliest mark
    ]
    assert metrics(events, agent="codex")["agent_prs_opened"] == 1
    copilot = metrics(events, agent="copilot")
    assert (copilot["agent_prs_opened"], copilot["agent_prs_merged"], copilot["runs"]) == (1, 1, 0)
    assert metrics(events, agent="claude-code")["agent_prs_opened"] == 0
    assert metrics(events)["agent_prs_opened"] == 3


def test_a_model_filter_keeps_matching_runs_their_users_and_the_sessions_that_hold_them():
    fast = {"attributes": {"model": "fast", "repo": "web"}}
    slow = {"attributes": {"model": "slow", "repo": "web"}}
    events = [
        ev("session.started", "2026-03-02T09:00:00Z", user="u1", session="s1"),
        ev("run.queued", "2026-03-02T09:01:00Z", user="u1", session="s1", run="r1", **fast),
        ev("run.finished", "2026-03-02T09:05:00Z", user="u1", session="s1", run="r1", status="succeeded"),
        ev("run.queued", "2026-03-02T10:00:00Z", user="u2", session="s2", run="r2", **slow),
        ev("run.finished", "2026-03-02T10:05:00Z", user="u2", session="s2", run="r2", status="succeeded"),
        ev("message.sent", "2026-03-02T11:00:00Z", user="u3", session="s3"),  # active, but ran nothing
    ]
    everyone = metrics(events)
    assert (everyone["runs"], everyone["active_users"], everyone["sessions"]) == (2, 3, 3)
    only_fast = metrics(events, model="fast")
    assert (only_fast["runs"], only_fast["active_users"], only_fast["dau"], only_fast["sessions"]) == (1, 1, 1, 1)
    assert metrics(events, repo="web")["runs"] == 2
    assert metrics(events, model="fast", repo="api")["runs"] == 0


def test_a_team_scope_keeps_only_those_teams_and_drops_events_without_a_team():
    events = [
        *run_events("r1", "2026-03-02T09:00:00Z", team="a"),
        *run_events("r2", "2026-03-02T09:00:00Z", team="b"),
        *run_events("r3", "2026-03-02T09:00:00Z", team="c"),
        *run_events("r4", "2026-03-02T09:00:00Z"),
    ]
    assert metrics(events, teams=("a", "b"))["runs"] == 2
    assert metrics(events, teams=())["runs"] == 0
    assert metrics(events, teams=("a", "b"), team_id="b")["runs"] == 1
