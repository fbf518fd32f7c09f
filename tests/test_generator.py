"""Tests of the demo history generator (`agentdash.demo.generator`)."""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
from collections import Counter, defaultdict

import msgspec
import pytest

from agentdash.demo.generator import (
    GeneratorConfig,
    generate,
    generate_days,
    incidents,
    window,
)
from agentdash.events import Event, decode_batch, parse_event

SMALL = GeneratorConfig(days=60, scale=0.2, end=dt.date(2025, 6, 30))
DEFAULT_YEAR_BOUNDS = (1_100_000, 1_600_000)
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US


def day_of(occurred_us: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=occurred_us // DAY_US)


@pytest.fixture(scope="module")
def small_events() -> list[dict]:
    return generate(SMALL)


@pytest.fixture(scope="module")
def parsed(small_events) -> list[Event]:
    return [parse_event(msgspec.json.encode(event)) for event in small_events]


@pytest.fixture(scope="module")
def runs(parsed) -> dict[str, list[Event]]:
    by_run: dict[str, list[Event]] = defaultdict(list)
    for event in parsed:
        if event.run_id:
            by_run[event.run_id].append(event)
    return by_run


def finished_event(run: list[Event]) -> Event | None:
    """The run's winning run.finished (the latest, SPEC §2)."""
    finishes = [e for e in run if e.type == "run.finished"]
    return max(finishes, key=lambda e: (e.occurred_us, e.id)) if finishes else None


# --- reproducibility and validity


def test_same_config_gives_identical_events_and_another_seed_does_not():
    config = GeneratorConfig(days=20, scale=0.1, end=dt.date(2025, 3, 31))
    first = generate(config)
    assert first == generate(config)
    assert [e for day in generate_days(config) for e in day] == first
    other = generate(GeneratorConfig(days=20, scale=0.1, end=dt.date(2025, 3, 31), seed=43))
    assert {e["id"] for e in other}.isdisjoint({e["id"] for e in first})


def test_every_event_passes_the_ingest_validator(small_events, parsed):
    assert len(parsed) == len(small_events) > 0
    for start in range(0, len(small_events), 1000):
        body = msgspec.json.encode({"events": small_events[start : start + 1000]})
        assert len(decode_batch(body)) == len(small_events[start : start + 1000])


def test_event_ids_are_unique_and_uuid_shaped(small_events):
    ids = [e["id"] for e in small_events]
    assert len(set(ids)) == len(ids)
    for event_id in ids[:1000]:
        parts = event_id.split("-")
        assert [len(p) for p in parts] == [8, 4, 4, 4, 12]
        assert parts[2][0] == "4" and parts[3][0] in "89ab"


def test_events_stay_inside_the_window_and_each_day_is_sorted():
    days = list(generate_days(SMALL))
    first, last = window(SMALL)
    assert len(days) == SMALL.days
    for events in days:
        times = [parse_event(msgspec.json.encode(e)).occurred_us for e in events]
        assert times == sorted(times)
        assert all(first <= day_of(t) <= last for t in times)


def test_no_event_is_later_than_now_when_the_window_ends_today():
    now_us = time.time_ns() // 1000
    events = generate(GeneratorConfig(days=3, scale=0.5))
    assert events
    assert max(parse_event(msgspec.json.encode(e)).occurred_us for e in events) <= now_us + 1000


# --- shape of the history


def test_volume_is_proportional_to_days_and_scale(small_events):
    share = SMALL.days / 365 * SMALL.scale
    low, high = DEFAULT_YEAR_BOUNDS
    assert low * share <= len(small_events) <= high * share


def test_people_teams_models_and_repos(parsed, runs):
    teams_of_user: dict[str, set] = defaultdict(set)
    for event in parsed:
        teams_of_user[event.user_id].add(event.team_id)
    assert all(len(teams) == 1 for teams in teams_of_user.values())
    assert len({t for teams in teams_of_user.values() for t in teams}) == 8
    assert 100 <= len(teams_of_user) <= 150
    assert all(u.startswith("u-") for u in teams_of_user)
    finished = [f for f in map(finished_event, runs.values()) if f]
    assert set(Counter(f.model for f in finished)) == {"claude-sonnet", "claude-opus", "gpt-large", "fast-small"}
    assert 15 <= len({f.repo for f in finished}) <= 25
    assert all(json.loads(f.attributes)["agent"] for f in finished[:100])


def test_weekdays_are_much_busier_than_weekends(small_events, parsed):
    per_day = Counter(day_of(e.occurred_us) for e in parsed)
    weekdays = [n for day, n in per_day.items() if day.weekday() < 5]
    weekends = [n for day, n in per_day.items() if day.weekday() >= 5]
    assert statistics.mean(weekdays) > 5 * statistics.mean(weekends)


def test_most_activity_falls_in_working_hours(parsed):
    hours = Counter((e.occurred_us % DAY_US) // HOUR_US for e in parsed)
    working = sum(hours[h] for h in range(8, 19))
    assert working / len(parsed) > 0.6


def test_adoption_grows_over_the_window(parsed):
    first, last = window(SMALL)
    early = {e.user_id for e in parsed if day_of(e.occurred_us) < first + dt.timedelta(days=30)}
    late = {e.user_id for e in parsed if day_of(e.occurred_us) > last - dt.timedelta(days=30)}
    assert len(late) > 1.4 * len(early)
    assert len(late) >= 0.8 * SMALL.people


def test_usage_is_skewed_between_heavy_and_light_users(runs):
    per_user = sorted(Counter(run[0].user_id for run in runs.values()).values())
    top_tenth = per_user[-len(per_user) // 10 :]
    assert sum(top_tenth) > 0.25 * sum(per_user)


def test_success_rate_is_high_outside_incidents(runs):
    spikes = incidents(SMALL)
    bad_days = {spikes.bad_model_days, spikes.tool_outage_days}
    statuses = Counter()
    for run in runs.values():
        finish = finished_event(run)
        if finish and not any(a <= day_of(finish.occurred_us) <= b for a, b in bad_days):
            statuses[finish.status] += 1
    assert 0.85 <= statuses["succeeded"] / (statuses["succeeded"] + statuses["failed"]) <= 0.92
    assert statuses["cancelled"] > 0


def test_durations_and_queue_waits_are_plausible(runs):
    durations, waits = [], []
    for run in runs.values():
        times = {e.type: e.occurred_us for e in run if e.type in ("run.queued", "run.started")}
        finish = finished_event(run)
        if finish and "run.started" in times:
            durations.append((finish.occurred_us - times["run.started"]) / 1e6)
        if {"run.queued", "run.started"} <= times.keys():
            waits.append((times["run.started"] - times["run.queued"]) / 1e6)
    assert min(durations) >= 19 and max(durations) <= 1810
    assert 60 <= statistics.median(durations) <= 600
    assert min(waits) > 0 and statistics.median(waits) < 120 and max(waits) > 600


def test_queue_waits_are_worse_during_the_capacity_crunch(runs):
    first, last = incidents(SMALL).capacity_crunch_days
    crunch, normal = [], []
    for run in runs.values():
        times = {e.type: e.occurred_us for e in run}
        if "run.queued" in times and "run.started" in times:
            wait = times["run.started"] - times["run.queued"]
            (crunch if first <= day_of(times["run.queued"]) <= last else normal).append(wait)
    assert statistics.median(crunch) > 2 * statistics.median(normal)


def test_a_bad_model_release_week_spikes_model_errors(runs):
    weekly = defaultdict(Counter)
    for run in runs.values():
        finish = finished_event(run)
        if finish and finish.model == "gpt-large":
            week = day_of(finish.occurred_us).isocalendar()[:2]
            weekly[week]["runs"] += 1
            weekly[week]["model_error"] += finish.failure_category == "model_error"
    rates = {week: c["model_error"] / c["runs"] for week, c in weekly.items() if c["runs"] >= 30}
    worst = max(rates, key=rates.get)
    assert rates[worst] > 0.15 and rates[worst] > 4 * statistics.median(rates.values())
    assert incidents(SMALL).bad_model_days[0].isocalendar()[:2] == worst


def test_a_tool_outage_spikes_tool_and_infra_errors(runs):
    daily = defaultdict(Counter)
    for run in runs.values():
        finish = finished_event(run)
        if finish:
            day = day_of(finish.occurred_us)
            daily[day]["runs"] += 1
            daily[day]["broken"] += finish.failure_category in ("tool_error", "infra_error")
    rates = {day: c["broken"] / c["runs"] for day, c in daily.items() if c["runs"] >= 30}
    first, last = incidents(SMALL).tool_outage_days
    outage = [rate for day, rate in rates.items() if first <= day <= last]
    assert outage and min(outage) > 3 * statistics.median(rates.values())


def test_handoffs_and_follow_up_runs(parsed, runs):
    queued_in_session = defaultdict(list)
    for event in parsed:
        if event.type == "run.queued":
            queued_in_session[(event.user_id, event.session_id)].append(event.occurred_us)
    finished = handed_off = within_4h = only_later = 0
    for run in runs.values():
        finish = finished_event(run)
        if not finish:
            continue
        finished += 1
        handoffs = [e.occurred_us for e in run if e.type == "handoff"]
        if not handoffs:
            continue
        handed_off += 1
        first = min(handoffs)
        assert first > finish.occurred_us - 10_000_000  # minutes after the finish
        later = [t - first for t in queued_in_session[(run[0].user_id, run[0].session_id)] if t > first]
        if any(gap <= 4 * HOUR_US for gap in later):
            within_4h += 1
        elif later:
            only_later += 1
    assert 0.2 <= handed_off / finished <= 0.3
    assert 0.4 <= within_4h / handed_off <= 0.6
    assert only_later > 0.03 * handed_off


def test_realistic_imperfections(small_events, parsed, runs):
    without_queued = sum(1 for run in runs.values() if not any(e.type == "run.queued" for e in run))
    finished_twice = sum(1 for run in runs.values() if sum(e.type == "run.finished" for e in run) == 2)
    assert 0.005 < without_queued / len(runs) < 0.05
    assert finished_twice > 0
    with_messages = {e.session_id for e in parsed if e.type == "message.sent"}
    sessions = {e.session_id for e in parsed}
    assert 0.02 < 1 - len(with_messages) / len(sessions) < 0.15
    suffixes = Counter(e["occurred_at"][23:] for e in small_events)
    assert suffixes["Z"] > 0.85 * len(small_events)
    assert suffixes["+00:00"] > 0 and len(suffixes) >= 4


def test_the_default_year_has_the_expected_volume():
    count = sum(len(day) for day in generate_days(GeneratorConfig(end=dt.date(2026, 6, 30))))
    assert DEFAULT_YEAR_BOUNDS[0] <= count <= DEFAULT_YEAR_BOUNDS[1]


def test_some_runs_report_each_model_call_and_then_no_totals(parsed, runs):
    usage_runs = [run for run in runs.values() if any(e.type == "usage" for e in run)]
    assert 0.1 < len(usage_runs) / len(runs) < 0.3
    calls_per_run = Counter()
    two_models = cached = 0
    for run in runs.values():
        usages = [e for e in run if e.type == "usage"]
        finishes = [e for e in run if e.type == "run.finished"]
        totals = [(f.input_tokens, f.output_tokens, f.cost_usd) for f in finishes]
        if usages:  # nothing counts twice: the run's consumption is its calls'
            assert all(t == (0, 0, 0.0) for t in totals)
            calls_per_run[len(usages)] += 1
            started = next(e.occurred_us for e in run if e.type == "run.started")
            assert all(started < u.occurred_us for u in usages)
            if finishes:
                assert all(u.occurred_us < finish.occurred_us for u in usages for finish in finishes)
            two_models += len({u.model for u in usages}) > 1
            cached += any(u.cache_read_tokens for u in usages) and any(u.cache_write_tokens for u in usages)
            assert all(u.cost_usd > 0 and u.model for u in usages)
        elif finishes:
            assert all(f.cost_usd > 0 and f.input_tokens > 0 for f in finishes)
    assert min(calls_per_run) >= 2 and max(calls_per_run) >= 4
    assert 0.1 < two_models / len(usage_runs) < 0.4
    assert 0.5 < cached / len(usage_runs) < 0.9


def test_some_sessions_have_a_call_of_their_own(parsed):
    own = [e for e in parsed if e.type == "usage" and e.run_id is None]
    sessions = {e.session_id for e in parsed}
    assert 0.03 < len(own) / len(sessions) < 0.2
    assert {e.model for e in own} == {"fast-small"}
    assert all(e.cost_usd > 0 and e.input_tokens > 0 and not e.cache_read_tokens for e in own)


def test_pull_requests_follow_their_sessions_and_merge_more_after_a_success(parsed, runs):
    prs: dict[tuple, list[Event]] = {}
    for e in parsed:
        if e.type.startswith("pr."):
            prs.setdefault((e.repo, e.pr_number), []).append(e)
    assert len(prs) > 100
    assert all(sum(e.type == "pr.opened" for e in events) == 1 for events in prs.values())
    branches = {(r[0].repo, r[0].branch) for r in runs.values() if r[0].branch}
    linked = [key for key, events in prs.items() if (key[0], events[0].branch) in branches]
    marked = [key for key, events in prs.items() if events[0].agent_mark == "claude-code"]
    assert linked and marked and set(linked) | set(marked) == set(prs)  # every demo PR is an agent's, one way or other
    merged = [events for events in prs.values() if any(e.type == "pr.merged" for e in events)]
    assert 0.4 < len(merged) / len(prs) < 0.9
    for events in merged:
        opened = next(e for e in events if e.type == "pr.opened").occurred_us
        assert next(e for e in events if e.type == "pr.merged").occurred_us > opened
    hours = sorted((next(e for e in ev if e.type == "pr.merged").occurred_us
                    - next(e for e in ev if e.type == "pr.opened").occurred_us) / HOUR_US for ev in merged)  # fmt: skip
    assert hours[len(hours) // 4] < 6 and hours[-len(hours) // 4] > 24  # some within hours, some after days


def test_a_share_of_runs_reports_code_more_for_successes_and_commits_on_pr_branches(runs):
    def code(run: list[Event]) -> Event | None:
        return next((e for e in run if e.type == "code.changed"), None)

    with_code = [run for run in runs.values() if code(run)]
    assert 0.2 < len(with_code) / len(runs) < 0.45
    by_status: dict[str, list[int]] = defaultdict(list)
    for run in with_code:
        change, finish = code(run), finished_event(run)
        assert finish is not None and run[0].occurred_us < change.occurred_us < finish.occurred_us  # during the run
        by_status[finish.status].append(change.lines_added)
    assert statistics.median(by_status["succeeded"]) > 2 * statistics.median(by_status["failed"])
    on_branch = [code(run) for run in with_code if run[0].branch and finished_event(run).status == "succeeded"]
    elsewhere = [code(run) for run in with_code if not run[0].branch]
    assert all(c.commits >= 1 for c in on_branch)
    assert 0 < sum(c.commits > 0 for c in elsewhere) / len(elsewhere) < 0.2
