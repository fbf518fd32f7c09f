"""The overview (one card per question of SPEC §3) and, from the same table, one page per question."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nicegui import ui

from agentdash.auth import TokenVerifier
from agentdash.metrics import OrgMetrics, org_metrics
from agentdash.ui import charts
from agentdash.ui import format as fmt
from agentdash.ui import questions
from agentdash.ui.frame import NAV, Sources, View, dashboard_page


@dataclass(frozen=True)
class Figure:
    name: str  # shown, and the `data-metric` attribute tests read
    value: Callable[[OrgMetrics], str]


@dataclass(frozen=True)
class Question:
    path: str
    title: str
    question: str
    main: str  # the metric key behind the sparkline and the change badge
    better: int  # +1: up is good, -1: down is good, 0: neither
    figures: tuple[Figure, ...]


def _failures(m: OrgMetrics) -> str:
    return ", ".join(f"{f.category} {f.runs}" for f in m.failures_by_category[:3]) or "none"


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
        Figure("Output tokens", lambda m: fmt.count(m.output_tokens)))),
    Question("/human-intervention", "Human intervention", "Do results need human fixes?", "handoff_rate", -1, (
        Figure("Handoff rate", lambda m: fmt.percent(m.handoff_rate)),
        Figure("Iterated within 4 h", lambda m: fmt.percent(m.post_handoff_iteration_rate)))),
    # More runs per session can mean retries or richer work: the badge stays neutral.
    Question("/iteration", "Iteration", "How much iteration?", "runs_per_session", 0, (
        Figure("Runs per session", lambda m: fmt.count(m.runs_per_session)),
        Figure("Session lifespan", lambda m: fmt.duration(m.session_lifespan_avg_s)))),
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


def install(storage, projector, verifier: TokenVerifier) -> None:
    """Register the overview, the question pages and the people and team pages."""
    sources = Sources(storage, projector, verifier)

    dashboard_page("/", "Overview", sources, _metrics, cards)
    titles = {path: title for path, title, _ in NAV}
    for question in QUESTIONS:
        dashboard_page(question.path, titles[question.path], sources, questions.load,
                       lambda view, data, q=question: _question_page(view, data, q))  # fmt: skip
    from agentdash.ui import people  # it draws with this module's cards

    people.install(sources)


def _metrics(view: View) -> tuple[OrgMetrics, OrgMetrics]:
    storage = view.sources.storage
    return org_metrics(storage, view.query), org_metrics(storage, view.previous)


def is_empty(m: OrgMetrics) -> bool:
    return m.runs == 0 and not m.active_users and not m.sessions


def _no_runs(view: View) -> None:
    with ui.card().classes("w-full items-center q-pa-xl").props("data-testid=empty"):
        ui.icon("event_busy", size="xl").classes("text-grey")
        ui.label("No runs in this range").classes("text-h6")
        ui.label(f"{view.filters.label}: pick a longer range or another team or user.").classes("text-grey")


def cards(view: View, data: tuple[OrgMetrics, OrgMetrics]) -> None:
    """One card per question (headline, change, sparkline, figures), each linking to its page with the filters."""
    current, previous = data
    if is_empty(current):
        _no_runs(view)
        return
    query = view.filters.to_query()
    with ui.grid(columns=3).classes("w-full gap-4").mark("overview-ready"):
        for q in QUESTIONS:
            with ui.card().classes("w-full gap-1").props(f"data-card='{q.title}'"):
                ui.label(q.title).classes("text-overline text-grey-7 leading-none")
                ui.link(q.question, f"{q.path}?{query}").classes("text-subtitle1 text-weight-medium")
                _headline(q, current, previous)
                _sparkline(current, q.main)
                _figures(q.figures[1:], current)
    with ui.row().classes("w-full items-center justify-between"):
        ui.label(f"{view.filters.label}; changes compare with the {_days(view)} days before.").classes("text-caption text-grey")
        questions.csv_link(view, "metrics", "Download CSV (daily series)", "csv-series")


def _days(view: View) -> int:
    return (view.filters.date_to - view.filters.date_from).days + 1


def _headline(q: Question, current: OrgMetrics, previous: OrgMetrics) -> None:
    main = q.figures[0]
    text, colour = change_badge(change(getattr(current, q.main), getattr(previous, q.main)), q.better)
    with ui.row().classes("w-full items-baseline justify-between no-wrap"):
        with ui.column().classes("gap-0"):
            ui.label(main.name).classes("text-caption text-grey-7")
            ui.label(main.value(current)).classes("text-h5 text-weight-bold").props(f"data-metric='{main.name}'")
        ui.badge(text, color=colour).props(f"outline data-change='{q.title}' aria-label='Change against the previous period: {text}'")


def _sparkline(m: OrgMetrics, key: str) -> None:
    ui.echart(charts.sparkline(m.series, key)).classes("w-full h-12").props(
        f"aria-label='Daily {key.replace('_', ' ')}, UTC days'"
    )


def _figures(figures: tuple[Figure, ...], m: OrgMetrics) -> None:
    for figure in figures:
        with ui.row().classes("w-full justify-between no-wrap"):
            ui.label(figure.name).classes("text-grey-8")
            ui.label(figure.value(m)).classes("text-weight-bold text-right").props(f"data-metric='{figure.name}'")


def _question_page(view: View, data, q: Question) -> None:
    """A question's own page: its headline card, then the charts and breakdowns of questions.PAGES."""
    current, previous = data.current, data.previous
    if is_empty(current):
        _no_runs(view)
        return

    def headline() -> None:
        with ui.card().classes("w-full gap-1").props(f"data-card='{q.title}'"):
            ui.label(q.question).classes("text-subtitle1 text-weight-medium")
            _headline(q, current, previous)
            _figures(q.figures[1:], current)
            ui.label(f"{view.filters.label}; the change compares with the {_days(view)} days before.").classes(
                "text-caption text-grey q-mt-sm"
            )

    questions.draw(view, data, questions.PAGES[q.path], headline)
