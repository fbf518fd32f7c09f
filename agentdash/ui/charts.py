"""ECharts option dicts for the dashboard (pass them to NiceGUI's `ui.echart`). Pure functions, no NiceGUI.

Data values are the metrics' own (ratios 0–1, USD, seconds), so a plotted value equals the API's;
text for people (ui/format.py) is precomputed here and only shown in tooltips and labels.
Keys starting with ':' hold JavaScript, which NiceGUI evaluates in the browser.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentdash.metrics import (
    BreakdownRow,
    DayMetrics,
    DurationBucket,
    FailureCount,
    MergeTimeBucket,
    MetricSet,
    OrgMetrics,
    ratio,
)
from agentdash.ui import format as fmt


@dataclass(frozen=True)
class Unit:
    axis_name: str
    text: Callable[[float | None], str]
    axis_label: str  # an ECharts label template, or JavaScript when it starts with "js:"


UNITS = {
    "runs": Unit("runs", fmt.count, "{value}"),
    "users": Unit("users", fmt.count, "{value}"),
    "sessions": Unit("sessions", fmt.count, "{value}"),
    "PRs": Unit("pull requests", fmt.count, "{value}"),
    "tokens": Unit("tokens", fmt.count, "{value}"),
    "lines": Unit("lines", fmt.count, "{value}"),
    "commits": Unit("commits", fmt.count, "{value}"),
    "$": Unit("USD ($)", fmt.money, "${value}"),
    "s": Unit("seconds (s)", fmt.duration, "{value} s"),
    "%": Unit("%", fmt.percent, "js:(v) => Math.round(v * 100) + '%'"),
}

METRICS: dict[str, tuple[str, str]] = {  # key: (label, unit)
    "active_users": ("Active users", "users"),
    "dau": ("Daily active users", "users"),
    "wau": ("Weekly active users (7 days)", "users"),
    "mau": ("30-day active users", "users"),
    "runs_per_user": ("Runs per user", "runs"),
    "sessions_per_user": ("Sessions per user", "sessions"),
    "runs": ("Runs", "runs"),
    "runs_finished": ("Finished runs", "runs"),
    "runs_succeeded": ("Succeeded runs", "runs"),
    "runs_failed": ("Failed runs", "runs"),
    "runs_cancelled": ("Cancelled runs", "runs"),
    "success_rate": ("Success rate", "%"),
    "run_duration_avg_s": ("Avg run duration", "s"),
    "run_duration_p95_s": ("P95 run duration", "s"),
    "queue_wait_avg_s": ("Avg queue wait", "s"),
    "queue_wait_p95_s": ("P95 queue wait", "s"),
    "active_agent_time_per_session_s": ("Agent time per session", "s"),
    "cost_usd": ("Cost", "$"),
    "input_tokens": ("Input tokens", "tokens"),
    "output_tokens": ("Output tokens", "tokens"),
    "cache_read_tokens": ("Cache read tokens", "tokens"),
    "cache_write_tokens": ("Cache write tokens", "tokens"),
    "cost_per_run_usd": ("Cost per run", "$"),
    "runs_handed_off": ("Handed-off runs", "runs"),
    "handoff_rate": ("Handoff rate", "%"),
    "post_handoff_iteration_rate": ("Iterated within 4 h of handoff", "%"),
    "sessions": ("Sessions", "sessions"),
    "runs_per_session": ("Runs per session", "runs"),
    "session_lifespan_avg_s": ("Avg session lifespan", "s"),
    "agent_prs_opened": ("Agent PRs opened", "PRs"),
    "agent_prs_merged": ("Agent PRs merged", "PRs"),
    "agent_prs_closed_unmerged": ("Closed unmerged", "PRs"),
    "agent_pr_merge_rate": ("Merge rate", "%"),
    "agent_pr_time_to_merge_p50_s": ("Median time to merge", "s"),
    "cost_per_merged_pr_usd": ("Cost per merged PR", "$"),
    "lines_added": ("Lines added", "lines"),
    "lines_removed": ("Lines removed", "lines"),
    "commits": ("Commits", "commits"),
}

SUMMED = ("runs", "runs_finished", "runs_succeeded", "runs_failed", "runs_cancelled", "input_tokens", "output_tokens",
          "cache_read_tokens", "cache_write_tokens", "runs_handed_off", "sessions", "agent_prs_opened",
          "agent_prs_merged", "agent_prs_closed_unmerged", "lines_added", "lines_removed", "commits")  # fmt: skip
# Distinct counts over a week and averages/P95s need the raw runs: a week's value is not a function of its days'.
NOT_WEEKLY = frozenset({"active_users", "runs_per_user", "sessions_per_user", "run_duration_avg_s", "run_duration_p95_s",
                        "queue_wait_avg_s", "queue_wait_p95_s", "active_agent_time_per_session_s", "runs_per_session",
                        "session_lifespan_avg_s", "agent_pr_time_to_merge_p50_s"})  # fmt: skip
EMPTY_TEXT = "No runs in this range"


def followed_up_runs(m: MetricSet) -> int:
    """Handed-off runs followed up within 4 h: the rate's numerator (rate × denominator is exact after rounding)."""
    return round((m.post_handoff_iteration_rate or 0) * m.runs_handed_off)


def weekly_totals(series: list[DayMetrics]) -> list[DayMetrics]:
    """ISO weeks of a daily series, each dated by its first day in the series and totalled as the API totals
    that span: counts and money summed, ratios recomputed from summed parts, DAU/WAU/MAU as of the last day.
    Metrics in NOT_WEEKLY are None."""
    weeks: dict[tuple[int, int], list[DayMetrics]] = {}
    for day in series:
        weeks.setdefault(day.date.isocalendar()[:2], []).append(day)
    return [_week_total(days) for days in weeks.values()]


def _week_total(days: list[DayMetrics]) -> DayMetrics:
    sums: dict[str, Any] = {key: sum(getattr(d, key) or 0 for d in days) for key in SUMMED}  # field name -> total
    w = DayMetrics(date=days[0].date, **sums)
    w.cost_usd = math.fsum(d.cost_usd for d in days)
    w.dau, w.wau, w.mau = days[-1].dau, days[-1].wau, days[-1].mau
    w.active_users = None
    w.success_rate = ratio(w.runs_succeeded, w.runs_succeeded + w.runs_failed)
    w.cost_per_run_usd = ratio(w.cost_usd, w.runs_finished)
    w.handoff_rate = ratio(w.runs_handed_off, w.runs_finished)
    w.post_handoff_iteration_rate = ratio(sum(followed_up_runs(d) for d in days), w.runs_handed_off)
    w.agent_pr_merge_rate = ratio(w.agent_prs_merged, w.agent_prs_merged + w.agent_prs_closed_unmerged)
    w.cost_per_merged_pr_usd = ratio(w.cost_usd, w.agent_prs_merged)
    failures: Counter[str] = Counter()
    for d in days:
        failures.update({f.category: f.runs for f in d.failures_by_category})
    w.failures_by_category = [FailureCount(c, n) for c, n in sorted(failures.items(), key=lambda cn: (-cn[1], cn[0]))]
    return w


def time_series(series: list[DayMetrics], metrics: list[str], *, weekly: bool = False, unit: str) -> dict:
    """One line per metric over days (or ISO weeks); all metrics share `unit`."""
    u = _unit(unit)
    points = weekly_totals(series) if weekly else series
    shown = [m for m in metrics if not (weekly and m in NOT_WEEKLY)]
    left_out = [METRICS[m][0] for m in metrics if m not in shown]
    note = (
        f"{', '.join(left_out)}: daily view only (a week's value cannot be derived from its days)" if left_out else ""
    )
    values = [[getattr(p, m) for p in points] for m in shown]
    names = [METRICS[m][0] for m in shown]
    return {
        **_frame(_x_axis(points, weekly), _value_axis(u), not _has_data(points), note, legend=len(shown) > 1),
        "legend": _legend(names, len(shown) > 1),
        "tooltip": _axis_tooltip(_x_headers(points, weekly), names, [[u.text(v) for v in vs] for vs in values], "line"),
        "series": [
            {"name": n, "type": "line", "data": vs, "showSymbol": len(points) <= 31, "connectNulls": False}
            for n, vs in zip(names, values, strict=True)
        ],
    }


def failures_stacked(series: list[DayMetrics], weekly: bool = False) -> dict:
    """Failed runs per day (or ISO week), stacked by failure category, largest category at the bottom."""
    points = weekly_totals(series) if weekly else series
    per_point = [{f.category: f.runs for f in p.failures_by_category} for p in points]
    totals: Counter[str] = Counter()
    for counts in per_point:
        totals.update(counts)
    categories = sorted(totals, key=lambda c: (-totals[c], c))
    values = [[counts.get(c, 0) for counts in per_point] for c in categories]
    return {
        **_frame(
            _x_axis(points, weekly),
            _value_axis(UNITS["runs"], "failed runs"),
            not categories,
            "",
            empty_text="No failed runs in this range",
            legend=bool(categories),
        ),
        "legend": _legend(categories, bool(categories)),
        "tooltip": _axis_tooltip(_x_headers(points, weekly), categories, [[fmt.count(v) for v in vs] for vs in values]),
        "series": [
            {"name": c, "type": "bar", "stack": "failures", "data": vs}
            for c, vs in zip(categories, values, strict=True)
        ],
    }


def breakdown_bars(
    rows: list[BreakdownRow], metric: str, unit: str, top: int = 10, empty_text: str = EMPTY_TEXT
) -> dict:
    """Horizontal bars of one metric per key, largest first; the top `top` keys."""
    u = _unit(unit)
    ranked = sorted(rows, key=lambda r: (getattr(r, metric) is None, -(getattr(r, metric) or 0)))[:top]
    keys = [_key_label(r.key) for r in ranked]
    values = [getattr(r, metric) for r in ranked]
    note = f"Top {len(ranked)} of {len(rows)}" if len(rows) > len(ranked) else ""
    name = METRICS[metric][0]
    return {
        **_frame(
            _value_axis(u),
            {"type": "category", "data": keys, "inverse": True, "axisLabel": {"width": 140, "overflow": "truncate"}},
            not rows,
            note,
            empty_text=empty_text,
        ),
        "tooltip": _axis_tooltip([html.escape(k) for k in keys], [name], [[u.text(v) for v in values]]),
        "series": [{"name": name, "type": "bar", "data": values}],
    }


def duration_histogram(buckets: list[DurationBucket], avg_s: float | None, p95_s: float | None) -> dict:
    """Runs per duration bucket, with the buckets holding the average and the P95 marked."""
    labels = [_bucket_label(b) for b in buckets]
    counts = [b.runs for b in buckets]
    # Labels at different heights: the two marks often stand in neighbouring buckets.
    marks = [{"name": name, "xAxis": labels[_bucket_of(buckets, value)],
              "label": {"formatter": f"{name} {fmt.duration(value)}", "position": position}}
             for name, value, position in (("avg", avg_s, "insideMiddleTop"), ("P95", p95_s, "end"))
             if value is not None]  # fmt: skip
    x_axis = {"type": "category", "data": labels, "name": "run duration", "nameLocation": "middle", "nameGap": 28}
    return {
        **_frame(x_axis, _value_axis(UNITS["runs"]), not any(counts), ""),
        "tooltip": _axis_tooltip(labels, ["Runs"], [[fmt.count(c) for c in counts]]),
        "series": [{"name": "Runs", "type": "bar", "data": counts,
                    "markLine": {"symbol": "none", "lineStyle": {"type": "dashed"}, "data": marks}}],
    }  # fmt: skip


def time_to_merge_histogram(buckets: list[MergeTimeBucket], p50_s: float | None) -> dict:
    """Agent PRs merged in range per time-to-merge bucket, the bucket holding the median marked."""
    labels = [_span_label(b.low_s, b.high_s) for b in buckets]
    counts = [b.prs for b in buckets]
    marks = []
    if p50_s is not None:
        index = next((i for i, b in enumerate(buckets) if b.high_s is None or p50_s < b.high_s), len(buckets) - 1)
        marks.append({"name": "median", "xAxis": labels[index],
                      "label": {"formatter": f"median {fmt.duration(p50_s)}", "position": "end"}})  # fmt: skip
    x_axis = {"type": "category", "data": labels, "name": "time to merge", "nameLocation": "middle", "nameGap": 28,
              "axisLabel": {"interval": 0}}  # fmt: skip
    return {
        **_frame(x_axis, _value_axis(UNITS["PRs"], "merged PRs"), not any(counts), "",
                 empty_text="No agent pull requests merged in this range"),
        "tooltip": _axis_tooltip(labels, ["Merged PRs"], [[fmt.count(c) for c in counts]]),
        "series": [{"name": "Merged PRs", "type": "bar", "data": counts,
                    "markLine": {"symbol": "none", "lineStyle": {"type": "dashed"}, "data": marks}}],
    }  # fmt: skip


def _span_label(low_s: float | None, high_s: float | None) -> str:
    """A time-to-merge bucket in hours or days, short enough for eight under a half-width chart: "<1h", "1–4h",
    "8h–1d", "≥14d"."""
    if low_s is None:
        return "<" + "".join(_span(high_s))
    if high_s is None:
        return "≥" + "".join(_span(low_s))
    (low, low_unit), (high, high_unit) = _span(low_s), _span(high_s)
    return f"{low}–{high}{high_unit}" if low_unit == high_unit else f"{low}{low_unit}–{high}{high_unit}"


def _span(seconds: float | None) -> tuple[str, str]:
    s = seconds or 0
    return (f"{s / 86400:g}", "d") if s >= 86400 else (f"{s / 3600:g}", "h")


def _bucket_label(b: DurationBucket) -> str:
    if b.low_s is None:
        return f"< {fmt.duration(b.high_s)}"
    if b.high_s is None:
        return f"≥ {fmt.duration(b.low_s)}"
    return f"{fmt.duration(b.low_s)}–{fmt.duration(b.high_s)}"


def _bucket_of(buckets: list[DurationBucket], seconds: float) -> int:
    for i, b in enumerate(buckets):
        if b.high_s is None or seconds < b.high_s:
            return i
    return len(buckets) - 1


def sparkline(series: list[DayMetrics], metric: str) -> dict:
    """A tiny line of one metric per day: no axes, no legend, a tooltip with the day's value."""
    u = UNITS[METRICS[metric][1]]
    values = [getattr(d, metric) for d in series]
    return {
        "animation": False,
        "grid": {"left": 2, "right": 2, "top": 2, "bottom": 2},
        "xAxis": {
            "type": "category",
            "show": False,
            "boundaryGap": False,
            "data": [d.date.isoformat() for d in series],
        },
        "yAxis": {"type": "value", "show": False, "scale": True},
        "tooltip": _axis_tooltip(
            _x_headers(series, False), [METRICS[metric][0]], [[u.text(v) for v in values]], "line"
        ),
        "series": [
            {
                "name": METRICS[metric][0],
                "type": "line",
                "data": values,
                "showSymbol": False,
                "lineStyle": {"width": 1.5},
                "areaStyle": {"opacity": 0.15},
            }
        ],
    }


def handoff_funnel(metrics: OrgMetrics) -> dict:
    """Finished runs → handed off to a person → followed up by the user within 4 h, as bars with shares."""
    stages = ["Finished runs", "Handed off", "Followed up within 4 h"]
    values = [metrics.runs_finished, metrics.runs_handed_off, followed_up_runs(metrics)]
    shares = [
        "",
        f"{fmt.percent(metrics.handoff_rate)} of finished",
        f"{fmt.percent(metrics.post_handoff_iteration_rate)} of handed off",
    ]
    texts = [f"{fmt.count(v)} runs" + (f" · {s}" if s else "") for v, s in zip(values, shares, strict=True)]
    label_js = f"(p) => {json.dumps(texts)}[p.dataIndex]"
    return {
        **_frame(
            _value_axis(UNITS["runs"]),
            {"type": "category", "data": stages, "inverse": True},
            not metrics.runs_finished,
            "",
            empty_text="No finished runs in this range",
        ),
        "grid": {"left": 8, "right": 160, "top": 40, "bottom": 48, "containLabel": True},
        "tooltip": _axis_tooltip(stages, ["Runs"], [texts]),
        "series": [
            {
                "name": "Runs",
                "type": "bar",
                "data": values,
                "label": {"show": True, "position": "right", ":formatter": label_js},
            }
        ],
    }


# --- the shared parts ---


def _unit(unit: str) -> Unit:
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}")
    return UNITS[unit]


def _has_data(points: list[DayMetrics]) -> bool:
    # A forge reports pull requests whether or not their runs reached us: PRs alone are data too.
    return any(p.runs or p.dau or p.sessions or p.agent_prs_opened or p.agent_prs_merged or p.agent_prs_closed_unmerged
               for p in points)  # fmt: skip


def _legend(names: list[str], show: bool) -> dict:
    # One scrolling line at the top: a wrapped legend would run into the value axis's name below it.
    return {"show": show, "data": names, "top": 0, "type": "scroll"}


def _frame(
    x_axis: dict, y_axis: dict, empty: bool, note: str, empty_text: str = EMPTY_TEXT, legend: bool = False
) -> dict:
    """Axes, grid and titles: the empty-state message centred over the axes, a note as a subtitle.

    Horizontal bar charts pass the value axis as x and the category axis as y."""
    titles: list[dict[str, Any]] = []
    if empty:
        titles.append(
            {"text": empty_text, "left": "center", "top": "middle", "textStyle": {"color": "#888", "fontSize": 14}}
        )
    if note:
        titles.append({"subtext": note, "left": "center", "bottom": 0, "subtextStyle": {"fontSize": 11}})
    return {
        "title": titles,
        "grid": {"left": 8, "right": 24, "top": 56 if legend else 40, "bottom": 48, "containLabel": True},
        "xAxis": x_axis,
        "yAxis": y_axis,
        "aria": {"enabled": True},
    }


def _x_axis(points: list[DayMetrics], weekly: bool) -> dict:
    labels = [_week_label(p) for p in points] if weekly else [p.date.isoformat() for p in points]
    return {"type": "category", "name": "ISO week (UTC)" if weekly else "Date (UTC)", "nameLocation": "middle",
            "nameGap": 28, "data": labels}  # fmt: skip


def _value_axis(u: Unit, name: str | None = None) -> dict:
    label = {":formatter": u.axis_label[3:]} if u.axis_label.startswith("js:") else {"formatter": u.axis_label}
    axis: dict[str, Any] = {"type": "value", "name": name or u.axis_name, "axisLabel": label}
    return axis | ({"min": 0, "max": 1} if u.axis_name == "%" else {})


def _week_label(p: DayMetrics) -> str:
    year, week, _ = p.date.isocalendar()
    return f"{year}-W{week:02d}"


def _x_headers(points: list[DayMetrics], weekly: bool) -> list[str]:
    if weekly:
        return [f"Week {_week_label(p)}, from {p.date:%a %d %b %Y} (UTC)" for p in points]
    return [f"{p.date:%a %d %b %Y} (UTC)" for p in points]


def _key_label(key: str | None) -> str:
    return "(none)" if key is None else key


def _axis_tooltip(headers: list[str], names: list[str], texts: list[list[str]], pointer: str = "shadow") -> dict:
    """An axis tooltip showing precomputed text: headers per point, texts per series and point.

    Names and keys come from events (repos, teams), so they are HTML-escaped: the tooltip renders HTML.
    """
    names = [html.escape(n) for n in names]
    js = (f"(ps) => {{ const h = {json.dumps(headers)}, n = {json.dumps(names)}, t = {json.dumps(texts)};"
          " ps = [].concat(ps);"
          " return h[ps[0].dataIndex] + ps.map((p) => '<br>' + p.marker + n[p.seriesIndex] + ': '"
          " + t[p.seriesIndex][p.dataIndex]).join(''); }")  # fmt: skip
    return {"trigger": "axis", "axisPointer": {"type": pointer}, ":formatter": js}
