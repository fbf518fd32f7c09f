"""One page per question of SPEC §3 and §7 from one table: time series, extra charts, breakdown tables, CSV links."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from nicegui import ui

from agentdash.alerts.access import shown_rules
from agentdash.alerts.budgets import BudgetProgress, budget_progress
from agentdash.metrics import (
    DIMENSIONS,
    AgentPrs,
    BreakdownRow,
    DurationBucket,
    MergeTimeBucket,
    OrgMetrics,
    agent_prs,
    breakdown,
    duration_histogram,
    org_metrics,
    time_to_merge_histogram,
)
from agentdash.ui import charts
from agentdash.ui import format as fmt
from agentdash.ui.budget_bars import budget_bar
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
    merge_times: list[MergeTimeBucket] = field(default_factory=list)  # pages with prs=True only
    prs: AgentPrs | None = None
    budgets: list[BudgetProgress] = field(default_factory=list)  # pages with budgets=True only


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
    prs: bool = False  # the table of agent pull requests (and their time to merge) under the charts
    budgets: bool = False  # the viewer's budgets: each one's progress and its period's forecast, above the charts

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
        (Extra("Failed runs by category", lambda d, weekly: charts.failures_stacked(d.current.series, weekly)),
         Extra("Success rate by agent", lambda d, _: charts.breakdown_bars(
            [r for r in d.breakdowns["agent"] if r.runs_succeeded + r.runs_failed], "success_rate", "%",
            empty_text="No succeeded or failed runs in this range")))),
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
         Extra("Most expensive users", lambda d, _: charts.breakdown_bars(d.breakdowns["user"], "cost_usd", "$")),
         Extra("Cost by agent", lambda d, _: charts.breakdown_bars(d.breakdowns["agent"], "cost_usd", "$"))),
        budgets=True),
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
         Series("Median time to merge, by day merged", ("agent_pr_time_to_merge_p50_s",), "s"),
         Series("Lines changed by agents", ("lines_added", "lines_removed"), "lines"),
         Series("Commits by agents", ("commits",), "commits")),
        ("agent_prs_opened", "agent_prs_merged", "agent_prs_closed_unmerged", "agent_pr_merge_rate",
         "agent_pr_time_to_merge_p50_s", "cost_per_merged_pr_usd", "runs", "lines_added", "lines_removed", "commits"),
        (Extra("Time to merge", lambda d, _: charts.time_to_merge_histogram(
            d.merge_times, d.current.agent_pr_time_to_merge_p50_s)),
         Extra("Median time to merge by repo", lambda d, _: charts.breakdown_bars(
            [r for r in d.breakdowns["repo"] if r.agent_prs_merged], "agent_pr_time_to_merge_p50_s", "s",
            empty_text="No merged agent pull requests in this range"))),
        linked=True, prs=True),
}  # fmt: skip

DIMENSION_LABELS = {"team": "Team", "user": "User", "model": "Model", "repo": "Repo", "agent": "Agent"}
# A team's or person's own page (people.py): dimension -> (list page, the filter its route pins).
OWN_PAGES = {"user": ("/people", "user_id"), "team": ("/teams", "team_id")}


def load(view: ScopedView) -> PageData:
    """Every query a question page needs (runs in a worker thread)."""
    storage = view.sources.storage
    data = PageData(
        org_metrics(storage, view.query), org_metrics(storage, view.previous),
        {dimension: breakdown(storage, view.query, dimension) for dimension in DIMENSIONS},
        duration_histogram(storage, view.query),
    )  # fmt: skip
    page = PAGES.get(view.path)
    if page is not None and page.prs:
        data.merge_times = time_to_merge_histogram(storage, view.query)
        data.prs = agent_prs(storage, view.query)
    if page is not None and page.budgets:
        data.budgets = budgets(view)
    return data


def budgets(view: ScopedView) -> list[BudgetProgress]:
    """The budget rules the viewer's alert banner would show (alerts.access.shown_rules), with their progress now."""
    store = view.sources.alert_store
    if store is None:
        return []
    rules = shown_rules(view.identity, store.list_rules(view.identity.org_id))
    return budget_progress(view.sources.storage, rules, datetime.now(UTC))


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
    if page.budgets and data.budgets:
        _budgets(data.budgets)
    with ui.grid(columns=2).classes("w-full gap-4"):
        headline()
        for s in page.series:
            _chart(s.title, charts.time_series(data.current.series, list(s.metrics), weekly=weekly, unit=s.unit))
        for extra in page.extras:
            _chart(extra.title, extra.option(data, weekly))
    if page.prs and data.prs is not None:
        _pr_table(view, data.prs)
    _breakdowns(view, data, page)


def _budgets(progress: list[BudgetProgress]) -> None:
    with ui.card().classes("w-full gap-2").props("data-testid=budgets").mark("budgets"):
        ui.label("Budgets").classes("text-subtitle1 text-weight-medium")
        ui.label("Spent in each budget's own period so far (UTC), whatever the date range above; the forecast "
                 "assumes the same pace to the period's end.").classes("text-caption text-grey")  # fmt: skip
        for b in progress:
            budget_bar(b)


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


NO_PRS_TEXT = "No agent pull requests opened, merged or closed in this range"
# (key, label, align); the figures of the runs on the PR's branch that the filters let through.
PR_COLUMNS = (
    ("pr", "Pull request", "left"), ("state", "State", "left"), ("opened_at", "Opened", "left"),
    ("merged_at", "Merged", "left"), ("time_to_merge_s", "To merge", "right"),
    ("user_id", "User", "left"), ("team_id", "Team", "left"), ("runs", "Runs", "right"),
    ("cost_usd", "Cost", "right"), ("runs_failed", "Failed", "right"), ("runs_handed_off", "Handed off", "right"),
)  # fmt: skip
STATE_TEXT = {"open": "Open", "merged": "Merged", "closed": "Closed"}  # closed: closed unmerged


def pr_rows(view: View, table: AgentPrs) -> list[dict]:
    """One row per PR: raw values to sort by, text to show under `<key>__text`, the links of its cells."""
    rows = []
    for i, pr in enumerate(table.prs):
        # A url comes from a producer: only a web address becomes a link (never javascript: or data:).
        url = pr.url if pr.url and pr.url.lower().startswith(("https://", "http://")) else None
        rows.append({
            "id": i, "pr": f"{pr.repo}#{pr.pr_number}", "title": pr.title or "", "url": url,
            "state": pr.state, "state__text": STATE_TEXT.get(pr.state, pr.state),
            "opened_at": _when(pr.opened_at), "merged_at": _when(pr.merged_at),
            "time_to_merge_s": pr.time_to_merge_s, "time_to_merge_s__text": fmt.duration(pr.time_to_merge_s),
            "user_id": pr.user_id or "(none)", "user_href": own_page_url(view, *OWN_PAGES["user"], pr.user_id),
            "team_id": pr.team_id or "(none)", "team_href": own_page_url(view, *OWN_PAGES["team"], pr.team_id),
            "runs": pr.runs, "cost_usd": pr.cost_usd, "cost_usd__text": fmt.money(pr.cost_usd),
            "runs_failed": pr.runs_failed, "runs_handed_off": pr.runs_handed_off,
        })  # fmt: skip
    return rows


def _when(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


def _pr_table(view: ScopedView, table: AgentPrs) -> None:
    with ui.card().classes("w-full gap-2").props("data-testid=prs"):
        ui.label("Agent pull requests").classes("text-subtitle1 text-weight-medium")
        shown = f"the newest {len(table.prs)} of {table.total}" if table.total > len(table.prs) else "all"
        ui.label(
            f"{view.filters.label}: {shown} with an opening, merge or close (unmerged) in range, newest first. Runs, "
            "cost, failed and handed-off runs: those of the PR's branch (any day) that the filters let through."
        ).classes("text-caption text-grey").props("data-testid=prs-caption")
        cols = [{"name": key, "label": label, "field": key, "sortable": True, "align": align}
                for key, label, align in PR_COLUMNS]  # fmt: skip
        t = (
            ui.table(columns=cols, rows=pr_rows(view, table), row_key="id", pagination=25)
            .props(f"dense flat no-data-label='{NO_PRS_TEXT}' data-testid=pr-table")
            .classes("w-full")
            .mark("pr-table")
        )
        t.add_slot("body-cell", """
            <q-td :props="props">{{ props.row[props.col.name + '__text'] ?? props.value }}</q-td>
        """)  # fmt: skip
        t.add_slot("body-cell-pr", """
            <q-td :props="props">
                <a v-if="props.row.url" :href="props.row.url" target="_blank" rel="noopener noreferrer"
                   class="text-primary" data-testid="pr-link">{{ props.value }}</a>
                <span v-else>{{ props.value }}</span>
                <div class="text-caption text-grey ellipsis" style="max-width: 28em">{{ props.row.title }}</div>
            </q-td>
        """)  # fmt: skip
        for key, href in (("user_id", "user_href"), ("team_id", "team_href")):
            t.add_slot(f"body-cell-{key}", f"""
                <q-td :props="props">
                    <a v-if="props.row.{href}" :href="props.row.{href}" class="text-primary"
                       data-testid="open-{key[:4]}">{{{{ props.value }}}}</a>
                    <span v-else>{{{{ props.value }}}}</span>
                </q-td>
            """)  # fmt: skip
        csv_link(view, "prs", "Download CSV (pull requests)", "csv-prs")


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
