"""Chart options: the plotted values are the inputs, weekly views total as the API would, units are labelled."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from agentdash.metrics import BreakdownRow, DayMetrics, FailureCount, OrgMetrics
from agentdash.ui import charts

START = date(2026, 3, 20)  # a Friday: three days of ISO week 12, then all of week 13


def day(
    i: int, succeeded: int, failed: int, cost: float, handed_off: int = 0, followed: int = 0, **extra
) -> DayMetrics:
    finished = succeeded + failed
    return DayMetrics(
        date=START + timedelta(days=i), runs=finished + 1, runs_finished=finished, runs_succeeded=succeeded,
        runs_failed=failed, runs_cancelled=1, success_rate=succeeded / finished if finished else None,
        cost_usd=cost, cost_per_run_usd=cost / finished if finished else None, runs_handed_off=handed_off,
        handoff_rate=handed_off / finished if finished else None,
        post_handoff_iteration_rate=followed / handed_off if handed_off else None,
        sessions=2, dau=3 + i, wau=10 + i, mau=20 + i, active_users=3 + i, run_duration_p95_s=60.0 + i,
        failures_by_category=[FailureCount("timeout", failed)] if failed else [], **extra,
    )  # fmt: skip


SERIES = [
    day(0, 4, 1, 1.25, handed_off=2, followed=1),
    day(1, 3, 0, 0.5),
    day(2, 0, 0, 0.0),
] + [day(3 + i, 5, 2, 2.0 + i / 10, handed_off=3, followed=i % 4) for i in range(7)]


def js(option: dict) -> str:
    return json.dumps(option)


def test_daily_series_plots_the_inputs_with_units_and_utc_dates():
    option = charts.time_series(SERIES, ["success_rate", "handoff_rate"], unit="%")
    assert [s["data"] for s in option["series"]] == [[d.success_rate for d in SERIES], [d.handoff_rate for d in SERIES]]
    assert option["xAxis"]["data"] == [d.date.isoformat() for d in SERIES]
    assert "UTC" in option["xAxis"]["name"]
    assert option["yAxis"]["name"] == "%" and "100" in option["yAxis"]["axisLabel"][":formatter"]
    assert "80.0%" in option["tooltip"][":formatter"] and "Fri 20 Mar 2026 (UTC)" in option["tooltip"][":formatter"]
    assert option["title"] == []  # no note, not empty


def test_weekly_sums_counts_and_money_and_recomputes_ratios():
    weeks = charts.weekly_totals(SERIES)
    assert [w.date for w in weeks] == [date(2026, 3, 20), date(2026, 3, 23)]
    first, second = weeks
    assert (first.runs, first.runs_succeeded, first.runs_failed, first.sessions) == (11, 7, 1, 6)
    assert first.cost_usd == pytest.approx(1.75)
    assert first.success_rate == 7 / 8  # Σsucceeded / Σ(succeeded + failed), not a mean of daily rates
    assert first.cost_per_run_usd == pytest.approx(1.75 / 8)
    assert first.handoff_rate == 2 / 8 and first.post_handoff_iteration_rate == 1 / 2
    assert (first.dau, first.wau, first.mau) == (5, 12, 22)  # as of the week's last day, like the API's totals
    assert second.success_rate == 35 / 49 and second.runs_failed == 14
    assert second.post_handoff_iteration_rate == (0 + 1 + 2 + 3 + 0 + 1 + 2) / 21
    assert second.failures_by_category == [FailureCount("timeout", 14)]
    assert first.run_duration_p95_s is None and first.active_users is None

    option = charts.time_series(SERIES, ["cost_usd"], weekly=True, unit="$")
    assert option["xAxis"]["data"] == ["2026-W12", "2026-W13"]
    assert option["series"][0]["data"] == [w.cost_usd for w in weeks]
    assert option["yAxis"]["name"] == "USD ($)" and option["xAxis"]["name"] == "ISO week (UTC)"


def test_weekly_sums_pull_requests_and_recomputes_their_ratios():
    prs = [day(i, 1, 0, 2.0, agent_prs_opened=2, agent_prs_merged=i % 2, agent_prs_closed_unmerged=1,
               agent_pr_time_to_merge_p50_s=3600.0) for i in range(10)]  # fmt: skip
    first, second = charts.weekly_totals(prs)
    assert (first.agent_prs_opened, first.agent_prs_merged, first.agent_prs_closed_unmerged) == (6, 1, 3)
    assert first.agent_pr_merge_rate == 1 / 4 and first.cost_per_merged_pr_usd == pytest.approx(6.0)
    assert second.agent_pr_merge_rate == 4 / 11 and first.agent_pr_time_to_merge_p50_s is None
    option = charts.time_series(prs, ["agent_prs_merged", "agent_pr_time_to_merge_p50_s"], weekly=True, unit="s")
    assert [s["data"] for s in option["series"]] == [[1, 4]]
    assert "Median time to merge: daily view only" in json.dumps(option["title"])
    # Pull requests alone are data: a range of PRs without runs draws, no "No runs" over it.
    only_prs = [DayMetrics(date=START, agent_prs_opened=1)]
    assert charts.time_series(only_prs, ["agent_prs_opened"], unit="PRs")["title"] == []


def test_weekly_leaves_out_p95s_with_a_note():
    option = charts.time_series(SERIES, ["run_duration_p95_s", "run_duration_avg_s"], weekly=True, unit="s")
    assert option["series"] == []
    note = " ".join(t.get("subtext", "") for t in option["title"])
    assert "P95 run duration" in note and "daily view only" in note
    daily = charts.time_series(SERIES, ["run_duration_p95_s"], unit="s")
    assert daily["series"][0]["data"] == [d.run_duration_p95_s for d in SERIES]
    assert daily["yAxis"]["name"] == "seconds (s)" and "1m 00s" in daily["tooltip"][":formatter"]


def test_failures_are_stacked_per_category_largest_first():
    series = [
        DayMetrics(date=START, failures_by_category=[FailureCount("tool_error", 2), FailureCount("timeout", 1)]),
        DayMetrics(date=START + timedelta(days=1), failures_by_category=[FailureCount("timeout", 4)]),
    ]
    option = charts.failures_stacked(series)
    assert [(s["name"], s["data"], s["stack"]) for s in option["series"]] == [
        ("timeout", [1, 4], "failures"), ("tool_error", [2, 0], "failures")]  # fmt: skip
    assert option["yAxis"]["name"] == "failed runs"
    weekly = charts.failures_stacked(series, weekly=True)
    assert [s["data"] for s in weekly["series"]] == [[5], [2]]


def test_breakdown_bars_rank_by_the_metric_and_escape_keys():
    rows = [BreakdownRow(key=f"<b>user-{i}</b>", cost_usd=float(i)) for i in range(15)]
    rows.append(BreakdownRow(key=None, cost_usd=0.5))
    option = charts.breakdown_bars(rows, "cost_usd", "$", top=10)
    assert option["series"][0]["data"] == [float(i) for i in range(14, 4, -1)]
    assert option["yAxis"]["data"][0] == "<b>user-14</b>" and option["yAxis"]["inverse"] is True
    assert option["xAxis"]["name"] == "USD ($)"
    assert "<b>" not in option["tooltip"][":formatter"] and "&lt;b&gt;user-14" in option["tooltip"][":formatter"]
    assert any("Top 10 of 16" in t.get("subtext", "") for t in option["title"])
    assert "(none)" in charts.breakdown_bars(rows[:3] + [rows[-1]], "cost_usd", "$")["yAxis"]["data"]


def test_sparkline_has_no_axes():
    option = charts.sparkline(SERIES, "runs")
    assert option["series"][0]["data"] == [d.runs for d in SERIES]
    assert option["xAxis"]["show"] is False and option["yAxis"]["show"] is False
    assert "legend" not in option


def test_handoff_funnel():
    m = OrgMetrics(org_id="acme", from_=START, to=START, team_id=None, user_id=None, series=[], runs_finished=40,
                   runs_handed_off=8, handoff_rate=0.2, post_handoff_iteration_rate=0.375)  # fmt: skip
    option = charts.handoff_funnel(m)
    assert option["series"][0]["data"] == [40, 8, 3]
    assert option["yAxis"]["data"] == ["Finished runs", "Handed off", "Followed up within 4 h"]
    assert option["xAxis"]["name"] == "runs"
    assert "20.0% of finished" in option["series"][0]["label"][":formatter"]
    assert "37.5% of handed off" in js(option)


@pytest.mark.parametrize(
    "build",
    [
        lambda s: charts.time_series(s, ["runs"], unit="runs"),
        lambda s: charts.time_series(s, ["success_rate"], weekly=True, unit="%"),
        lambda s: charts.failures_stacked(s),
        lambda s: charts.breakdown_bars([], "runs", "runs"),
        lambda s: charts.handoff_funnel(
            OrgMetrics(org_id="a", from_=START, to=START, team_id=None, user_id=None, series=s)
        ),
    ],
)
@pytest.mark.parametrize("series", [[], [DayMetrics(date=START), DayMetrics(date=START + timedelta(days=1))]])
def test_empty_input_says_so(build, series):
    option = build(series)
    assert any(t.get("text", "").startswith("No ") for t in option["title"])
    assert all(v in (None, 0) for s in option["series"] for v in s["data"])
    json.dumps(option)  # plain JSON for the browser


def test_sparkline_of_nothing_is_valid():
    assert charts.sparkline([], "cost_usd")["series"][0]["data"] == []


def test_unknown_unit_is_refused():
    with pytest.raises(ValueError, match="unit"):
        charts.time_series(SERIES, ["runs"], unit="furlongs")
