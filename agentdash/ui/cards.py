"""The overview's cards, one per question of SPEC §3 and §7: headline, change badge, sparkline and figures.

The overview, each question's page and every person's and team's page draw with them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nicegui import ui

from agentdash.metrics import OrgMetrics
from agentdash.ui import charts, questions
from agentdash.ui import format as fmt
from agentdash.ui.view import ScopedView, View


@dataclass(frozen=True)
class Figure:
    name: str  # shown, and the `data-metric` attribute tests read
    value: Callable[[OrgMetrics], str]


def is_empty(m: OrgMetrics) -> bool:
    return m.runs == 0 and not m.active_users and not m.sessions


def no_prs(m: OrgMetrics) -> bool:
    return not (m.agent_prs_opened or m.agent_prs_merged or m.agent_prs_closed_unmerged)


@dataclass(frozen=True)
class Empty:
    """What a question's page shows instead of its panels when the range holds nothing for it."""

    test: Callable[[OrgMetrics], bool]
    title: str
    hint: str


NO_RUNS = Empty(is_empty, "No runs in this range", "pick a longer range or another team or user.")
NO_PRS = Empty(no_prs, "No agent pull requests in this range",
               "they arrive from GitHub webhooks or pr.* events; pick a longer range or another team or user.")  # fmt: skip


@dataclass(frozen=True)
class Question:
    path: str
    title: str
    question: str
    main: str  # the metric key behind the sparkline and the change badge
    better: int  # +1: up is good, -1: down is good, 0: neither
    figures: tuple[Figure, ...]
    empty: Empty = NO_RUNS
    note: str = ""  # how to read the figures, under them on the question's page


def _failures(m: OrgMetrics) -> str:
    return ", ".join(f"{f.category} {f.runs}" for f in m.failures_by_category[:3]) or "none"


def _cache_tokens(m: OrgMetrics) -> str:
    return f"{fmt.count(m.cache_read_tokens)} / {fmt.count(m.cache_write_tokens)}"


QUESTIONS = (
    Question("/adoption", "Adoption", "Who uses agents?", "active_users", +1, (
        Figure("Active users", lambda m: fmt.count(m.active_users)),
        Figure("DAU / WAU / 30d", lambda m: f"{m.dau} / {m.wau} / {m.mau}"),
        Figure("Runs per user", lambda m: fmt.count(m.runs_per_user)),
        Figure("Sessions per user", lambda m: fmt.count(m.sessions_per_user)))),
    Question("/reliability", "Reliability", "Are they reliable?", "success_rate", +1, (
        Figure("Success rate", lambda m: fmt.percent(m.success_rate)),
        Figure("Runs", lambda m: fmt.count(m.runs)),
        Figure("Cancelled", lambda m: fmt.count(m.runs_cancelled)),
        Figure("Top failures", _failures))),
    Question("/speed", "Speed", "How long do tasks take?", "run_duration_p95_s", -1, (
        Figure("P95 run", lambda m: fmt.duration(m.run_duration_p95_s)),
        Figure("Avg run", lambda m: fmt.duration(m.run_duration_avg_s)),
        Figure("Avg queue wait", lambda m: fmt.duration(m.queue_wait_avg_s)),
        Figure("Agent time / session", lambda m: fmt.duration(m.active_agent_time_per_session_s)))),
    Question("/cost", "Cost", "What does it cost?", "cost_per_run_usd", -1, (
        Figure("Per run", lambda m: fmt.money(m.cost_per_run_usd)),
        Figure("Total", lambda m: fmt.money(m.cost_usd)),
        Figure("Input tokens", lambda m: fmt.count(m.input_tokens)),
        Figure("Output tokens", lambda m: fmt.count(m.output_tokens)),
        Figure("Cache read / write", _cache_tokens))),
    Question("/human-intervention", "Human intervention", "Do results need human fixes?", "handoff_rate", -1, (
        Figure("Handoff rate", lambda m: fmt.percent(m.handoff_rate)),
        Figure("Iterated within 4 h", lambda m: fmt.percent(m.post_handoff_iteration_rate)))),
    # More runs per session can mean retries or richer work: the badge stays neutral.
    Question("/iteration", "Iteration", "How much iteration?", "runs_per_session", 0, (
        Figure("Runs per session", lambda m: fmt.count(m.runs_per_session)),
        Figure("Session lifespan", lambda m: fmt.duration(m.session_lifespan_avg_s)))),
    Question("/shipping", "Shipping", "Does the work ship?", "agent_pr_merge_rate", +1, (
        Figure("Merge rate", lambda m: fmt.percent(m.agent_pr_merge_rate)),
        Figure("PRs opened", lambda m: fmt.count(m.agent_prs_opened)),
        Figure("PRs merged", lambda m: fmt.count(m.agent_prs_merged)),
        Figure("Closed unmerged", lambda m: fmt.count(m.agent_prs_closed_unmerged)),
        Figure("Median time to merge", lambda m: fmt.duration(m.agent_pr_time_to_merge_p50_s)),
        Figure("Per merged PR", lambda m: fmt.money(m.cost_per_merged_pr_usd)),
        Figure("Lines added / removed", lambda m: f"{fmt.count(m.lines_added)} / {fmt.count(m.lines_removed)}"),
        Figure("Commits", lambda m: fmt.count(m.commits))),
        NO_PRS,
        "Agent-authored pull requests, each counted on the day of its event. Merge rate: merged / (merged + closed "
        "unmerged). Median time to merge: opened → merged, the middle (P50) of the PRs merged in range; their "
        "distribution is below. Per merged PR: all agent cost in range / PRs merged. The table lists each PR with "
        "the cost, failures and handoffs of its branch's runs. Lines and commits: what the agents' own counters reported "
        "(Claude Code, Gemini CLI), on the day of their run or session."),
)  # fmt: skip


def change(current: float | None, previous: float | None) -> float | None:
    """Relative change against the previous period; None when there is nothing to compare with."""
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / abs(previous)


def change_badge(value: float | None, better: int) -> tuple[str, str]:
    """Text and colour of a change badge: green when the change is good, red when bad, grey otherwise."""
    if value is None:
        return "no previous data", "grey"
    arrow = "▲" if value > 0 else "▼" if value < 0 else "■"
    direction = (value > 0) - (value < 0)
    colour = "grey" if direction == 0 or better == 0 else "positive" if direction == better else "negative"
    return f"{arrow} {abs(value) * 100:.1f}%", colour


def no_runs(view: View, empty: Empty = NO_RUNS) -> None:
    with ui.card().classes("w-full items-center q-pa-xl").props("data-testid=empty"):
        ui.icon("event_busy", size="xl").classes("text-grey")
        ui.label(empty.title).classes("text-h6")
        ui.label(f"{view.filters.label}: {empty.hint}").classes("text-grey")


def draw(view: ScopedView, data: tuple[OrgMetrics, OrgMetrics]) -> None:
    """One card per question (headline, change, sparkline, figures), each linking to its page with the filters."""
    current, previous = data
    if is_empty(current):
        no_runs(view)
        return
    query = view.filters.to_query()
    with ui.grid(columns=3).classes("w-full gap-4").mark("overview-ready"):
        for q in QUESTIONS:
            with ui.card().classes("w-full gap-1").props(f"data-card='{q.title}'"):
                ui.label(q.title).classes("text-overline text-grey-7 leading-none")
                ui.link(q.question, f"{q.path}?{query}").classes("text-subtitle1 text-weight-medium")
                headline(q, current, previous)
                _sparkline(current, q.main)
                figures(q.figures[1:], current)
    with ui.row().classes("w-full items-center justify-between"):
        ui.label(f"{view.filters.label}; changes compare with the {days(view)} days before.").classes(
            "text-caption text-grey"
        )
        questions.csv_link(view, "metrics", "Download CSV (daily series)", "csv-series")


def days(view: View) -> int:
    """How many days the range spans: the previous period the changes compare with is as long."""
    return (view.filters.date_to - view.filters.date_from).days + 1


def headline(q: Question, current: OrgMetrics, previous: OrgMetrics) -> None:
    """The question's main figure with its change against the previous period."""
    main = q.figures[0]
    text, colour = change_badge(change(getattr(current, q.main), getattr(previous, q.main)), q.better)
    with ui.row().classes("w-full items-baseline justify-between no-wrap"):
        with ui.column().classes("gap-0"):
            ui.label(main.name).classes("text-caption text-grey-7")
            ui.label(main.value(current)).classes("text-h5 text-weight-bold").props(f"data-metric='{main.name}'")
        ui.badge(text, color=colour).props(
            f"outline data-change='{q.title}' aria-label='Change against the previous period: {text}'"
        )


def _sparkline(m: OrgMetrics, key: str) -> None:
    ui.echart(charts.sparkline(m.series, key)).classes("w-full h-12").props(
        f"aria-label='Daily {key.replace('_', ' ')}, UTC days'"
    )


def figures(shown: tuple[Figure, ...], m: OrgMetrics) -> None:
    """The question's other figures, one labelled row each."""
    for figure in shown:
        with ui.row().classes("w-full justify-between no-wrap"):
            ui.label(figure.name).classes("text-grey-8")
            ui.label(figure.value(m)).classes("text-weight-bold text-right").props(f"data-metric='{figure.name}'")
