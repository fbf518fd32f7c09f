"""One page per question of SPEC §3 and §7 from one table: time series, extra charts, breakdown tables, CSV links."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from nicegui import ui

from agentdash.metrics import (
    DIMENSIONS,
    BreakdownRow,
    DurationBucket,
    OrgMetrics,
    breakdown,
    duration_histogram,
    org_metrics,
)
from agentdash.ui import charts
from agentdash.ui.filters import FILTER_KEYS
from agentdash.ui.view import ScopedView, View


@dataclass(frozen=True)
class Series:
    title: str
    metrics: tuple[str, ...]
    unit: str  # a key of charts.UNITS, shared by all the chart's metrics


@dataclass
class PageData:
    current: OrgMetrics
    previous: OrgMetrics
    breakdowns: dict[str, list[BreakdownRow]]  # dimension -> rows, busiest first
    durations: list[DurationBucket]


@dataclass(frozen=True)
class Extra:
    title: str
    option: Callable[[PageData, bool], dict]  # (data, weekly) -> ECharts option


@dataclass(frozen=True)
class Page:
    series: tuple[Series, ...]
    columns: tuple[str, ...]  # the breakdown tables' metric columns (keys of charts.METRICS)
    extras: tuple[Extra, ...] = field(default=())
    linked: bool = False  # team and user rows open that team's or person's page

    @property
    def charts(self) -> int:
        return len(self.series) + len(self.extras)


PAGES: dict[str, Page] = {
    "/adoption": Page(
        (Series("Daily, weekly and 30-day active users", ("dau", "wau", "mau"), "users"),
         Series("Runs per user", ("runs_per_user",), "runs")),
        ("runs", "active_users", "runs_per_user", "sessions_per_user")),
    "/reliability": Page(
        (Series("Success rate", ("success_rate",), "%"),
         Series("Runs by outcome", ("runs_succeeded", "runs_failed", "runs_cancelled"), "runs")),
        ("runs", "success_rate", "runs_failed", "runs_cancelled"),
        (Extra("Failed runs by category", lambda d, weekly: charts.failures_stacked(d.current.series, weekly)),)),
    "/speed": Page(
        (Series("Run duration", ("run_duration_avg_s", "run_duration_p95_s"), "s"),
         Series("Queue wait", ("queue_wait_avg_s", "queue_wait_p95_s"), "s")),
        ("runs", "run_duration_avg_s", "run_duration_p95_s", "queue_wait_avg_s", "queue_wait_p95_s"),
        (Extra("Run durations", lambda d, _: charts.duration_histogram(
            d.durations, d.current.run_duration_avg_s, d.current.run_duration_p95_s)),)),
    "/cost": Page(
        (Series("Cost", ("cost_usd",), "$"),
         Series("Cost per finished run", ("cost_per_run_usd",), "$"),
         Series("Tokens", ("input_tokens", "output_tokens"), "tokens"),
         Series("Cache tokens", ("cache_read_tokens", "cache_write_tokens"), "tokens")),
        ("runs", "cost_usd", "cost_per_run_usd", "input_tokens", "output_tokens", "cache_read_tokens",
         "cache_write_tokens"),
        (Extra("Cost by model", lambda d, _: charts.breakdown_bars(d.breakdowns["model"], "cost_usd", "$")),
         Extra("Most expensive users", lambda d, _: charts.breakdown_bars(d.breakdowns["user"], "cost_usd", "$")))),
    "/human-intervention": Page(
        (Series("Handoff and follow-up rates", ("handoff_rate", "post_handoff_iteration_rate"), "%"),
         Series("Handed-off runs", ("runs_handed_off",), "runs")),
        ("runs_finished", "runs_handed_off", "handoff_rate", "post_handoff_iteration_rate"),
        (Extra("Handoff → follow-up", lambda d, _: charts.handoff_funnel(d.current)),)),
    "/iteration": Page(
        (Series("Runs per session", ("runs_per_session",), "runs"),
         Series("Sessions", ("sessions",), "sessions"),
         Series("Session lifespan", ("session_lifespan_avg_s",), "s")),
        ("runs", "sessions", "runs_per_session", "session_lifespan_avg_s")),
    "/shipping": Page(
        (Series("Agent pull requests", ("agent_prs_opened", "agent_prs_merged", "agent_prs_closed_unmerged"), "PRs"),
         Series("Median time to merge, by day merged", ("agent_pr_time_to_merge_p50_s",), "s")),
        ("agent_prs_opened", "agent_prs_merged", "agent_prs_closed_unmerged", "agent_pr_merge_rate",
         "agent_pr_time_to_merge_p50_s", "cost_per_merged_pr_usd", "runs"),
        (Extra("Median time to merge by repo", lambda d, _: charts.breakdown_bars(
            [r for r in d.breakdowns["repo"] if r.agent_prs_merged], "agent_pr_time_to_merge_p50_s", "s",
            empty_text="No merged agent pull requests in this range")),),
        linked=True),
}  # fmt: skip

DIMENSION_LABELS = {"team": "Team", "user": "User", "model": "Model", "repo": "Repo"}
# A team's or person's own page (people.py): dimension -> (list page, the filter its route pins).
OWN_PAGES = {"user": ("/people", "user_id"), "team": ("/teams", "team_id")}


def load(view: ScopedView) -> PageData:
    """Every query a question page needs (runs in a worker thread)."""
    storage = view.sources.storage
    return PageData(
        org_metrics(storage, view.query), org_metrics(storage, view.previous),
        {dimension: breakdown(storage, view.query, dimension) for dimension in DIMENSIONS},
        duration_histogram(storage, view.query),
    )  # fmt: skip


def csv_url(view: ScopedView, what: str) -> str:
    """The export endpoint for `what` ("metrics" or "breakdown/<dimension>") with the page's scoped filters."""
    q = view.query
    params = {"from": q.date_from.isoformat(), "to": q.date_to.isoformat()}
    params.update({key: value for key in FILTER_KEYS if (value := getattr(q, key))})
    return f"/api/v1/orgs/{quote(q.org_id, safe='')}/{what}.csv?{urlencode(params)}"


def csv_link(view: ScopedView, what: str, label: str, testid: str) -> None:
    ui.link(label, csv_url(view, what)).props(f"download data-testid={testid}").classes("text-caption")


def draw(view: ScopedView, data: PageData, page: Page, headline: Callable[[], None]) -> None:
    weekly = view.filters.weekly
    with ui.row().classes("w-full items-center justify-between"):
        ui.toggle({0: "Daily", 1: "Weekly"}, value=int(weekly),
                  on_change=lambda e: ui.navigate.to(view.url(weekly=bool(e.value)))).props(
            "dense no-caps aria-label='Daily or weekly' data-testid=granularity")  # fmt: skip
        csv_link(view, "metrics", "Download CSV (daily series)", "csv-series")
    with ui.grid(columns=2).classes("w-full gap-4"):
        headline()
        for s in page.series:
            _chart(s.title, charts.time_series(data.current.series, list(s.metrics), weekly=weekly, unit=s.unit))
        for extra in page.extras:
            _chart(extra.title, extra.option(data, weekly))
    _breakdowns(view, data, page)


def _chart(title: str, option: dict) -> None:
    # Drawn at once (no animation), so a screenshot or a quick look never catches a half-grown chart.
    option = {**option, "animation": False}
    x_axis = option.get("xAxis", {})
    if x_axis.get("type") == "value":  # horizontal bars: the unit goes under the axis, where it has room
        option["xAxis"] = {**x_axis, "nameLocation": "middle", "nameGap": 28}
    with ui.card().classes("w-full gap-1").props(f"data-chart='{title}'"):
        ui.label(title).classes("text-subtitle2")
        ui.echart(option).classes("w-full h-64").props(f"aria-label='{title}'")


def _breakdowns(view: ScopedView, data: PageData, page: Page) -> None:
    with ui.card().classes("w-full gap-2"):
        ui.label("Breakdowns").classes("text-subtitle1 text-weight-medium")
        with ui.tabs().props("dense align=left no-caps").classes("w-full") as tabs:
            tab = {d: ui.tab(d, DIMENSION_LABELS[d]).props(f"data-testid=tab-{d}") for d in DIMENSIONS}
        with ui.tab_panels(tabs, value=tab["team"]).classes("w-full"):
            for dimension in DIMENSIONS:
                with ui.tab_panel(tab[dimension]).classes("q-pa-none gap-1"):
                    rows = data.breakdowns[dimension]
                    testid = f"breakdown-{dimension}"
                    t = (
                        table(DIMENSION_LABELS[dimension], rows, page.columns)
                        .props(f"data-testid={testid}")
                        .mark(testid)
                    )
                    if page.linked and dimension in OWN_PAGES:
                        link_rows(t, [own_page_url(view, *OWN_PAGES[dimension], row.key) for row in rows])
                    csv_link(view, f"breakdown/{dimension}", f"Download CSV (by {dimension})", f"csv-{dimension}")


def table_rows(rows: list[BreakdownRow], columns: tuple[str, ...]) -> list[dict]:
    """Raw values under the metric keys (to sort by) and text for people under `<key>__text` (to show)."""
    out = []
    for i, row in enumerate(rows):
        cells: dict = {"id": i, "key": "(none)" if row.key is None else row.key}
        for key in columns:
            value = getattr(row, key)
            cells[key] = value
            cells[f"{key}__text"] = charts.UNITS[charts.METRICS[key][1]].text(value)
        out.append(cells)
    return out


def table(label: str, rows: list[BreakdownRow], columns: tuple[str, ...]) -> ui.table:
    cols = [{"name": "key", "label": label, "field": "key", "sortable": True, "align": "left"}]
    cols += [
        {"name": key, "label": charts.METRICS[key][0], "field": key, "sortable": True, "align": "right"}
        for key in columns
    ]
    t = (
        ui.table(columns=cols, rows=table_rows(rows, columns), row_key="id", pagination=10)
        .props("dense flat no-data-label='No runs in this range'")
        .classes("w-full")
    )
    t.add_slot("body-cell", """
        <q-td :props="props">{{ props.row[props.col.name + '__text'] ?? props.value }}</q-td>
    """)  # fmt: skip
    return t


def own_page_url(view: View, path: str, pinned: str, key: str | None) -> str | None:
    """The address of a person's or team's page, keeping the other filters; None for runs without a team."""
    if key is None:
        return None
    return f"{path}/{quote(key, safe='')}?{view.filters.to_query(**{pinned: None})}"


def link_rows(t: ui.table, hrefs: list[str | None]) -> ui.table:
    """Make `t`'s rows open `hrefs` (one per row, None: no page): a click anywhere on a row, or Enter on its name."""
    t.rows = [{**cells, "href": href} for cells, href in zip(t.rows, hrefs, strict=True)]
    # The name is a real link, so the keyboard reaches every row with Tab and opens it with Enter.
    t.add_slot("body-cell-key", """
        <q-td :props="props">
            <a v-if="props.row.href" :href="props.row.href" class="text-primary" data-testid="open" @click.stop>{{ props.value }}</a>
            <span v-else>{{ props.value }}</span>
        </q-td>
    """)  # fmt: skip
    t.on("rowClick", lambda e: _open(e.args[1].get("href")), [[], ["href"], None])
    return t


def _open(href: str | None) -> None:
    if href:
        ui.navigate.to(href)
