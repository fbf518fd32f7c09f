"""People and teams: sortable tables of users and teams, each row opening that person's or team's own dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from nicegui import ui

from agentdash.metrics import BreakdownRow, breakdown
from agentdash.ui import cards, questions
from agentdash.ui.page import dashboard_page
from agentdash.ui.view import ScopedView, Sources, View

# The key number of every question: volume, reach, reliability, speed, cost, human fixes, iteration.
# A person is one active user by definition, so people show sessions where teams show active users.
_KEY_NUMBERS = (
    "success_rate",
    "run_duration_avg_s",
    "run_duration_p95_s",
    "cost_usd",
    "handoff_rate",
    "runs_per_session",
)


@dataclass(frozen=True)
class Subject:
    """What a list page lists (people or teams) and the filter that a row's own page pins."""

    dimension: str  # as in metrics.breakdown
    field: str  # the filter a row's page pins: user_id or team_id
    path: str  # the list page; a row's page is path/<key>
    plural: str
    singular: str
    icon: str
    columns: tuple[str, ...]  # keys of charts.METRICS
    page: questions.Page  # the charts of a row's page, taken from the question pages


def _series(path: str, title: str) -> questions.Series:
    return next(s for s in questions.PAGES[path].series if s.title == title)


def _extra(path: str, title: str) -> questions.Extra:
    return next(e for e in questions.PAGES[path].extras if e.title == title)


# One chart per question; a person's own active-user lines would only ever read 0 or 1, so theirs shows runs instead.
_CHARTS = (_series("/reliability", "Success rate"), _series("/speed", "Run duration"), _series("/cost", "Cost"),
           _series("/human-intervention", "Handoff and follow-up rates"), _series("/iteration", "Runs per session"))  # fmt: skip
_EXTRAS = (_extra("/reliability", "Failed runs by category"), _extra("/speed", "Run durations"))  # fmt: skip

PEOPLE = Subject(
    "user",
    "user_id",
    "/people",
    "People",
    "Person",
    "person",
    ("runs", "sessions", *_KEY_NUMBERS),
    questions.Page((_series("/reliability", "Runs by outcome"), *_CHARTS), ("runs", *_KEY_NUMBERS), _EXTRAS),
)
TEAMS = Subject("team", "team_id", "/teams", "Teams", "Team", "groups", ("runs", "active_users", *_KEY_NUMBERS),
                questions.Page((_series("/adoption", "Daily, weekly and 30-day active users"), *_CHARTS),
                               ("runs", "active_users", *_KEY_NUMBERS), _EXTRAS))  # fmt: skip


def create(sources: Sources) -> None:
    """Register /people, /teams and every person's and team's own page."""
    for subject in (PEOPLE, TEAMS):
        dashboard_page(
            subject.path,
            subject.plural,
            sources,
            partial(load_rows, subject=subject),
            partial(_list_page, subject=subject),
        )
        # `:path`: an id may hold a slash (sent as %2F, which the router sees decoded).
        dashboard_page(f"{subject.path}/{{{subject.field}:path}}", subject.singular, sources, questions.load,
                       partial(_own_page, subject=subject))  # fmt: skip


def load_rows(view: ScopedView, subject: Subject) -> list[BreakdownRow]:
    """The list page's rows, busiest first (runs in a worker thread)."""
    return breakdown(view.sources.storage, view.query, subject.dimension)


def linked_table(view: View, subject: Subject, rows: list[BreakdownRow]) -> ui.table:
    """questions.table whose rows open their own page: a click anywhere on a row, or Enter on the name's link."""
    testid = f"{subject.dimension}-table"
    t = questions.table(subject.singular, rows, subject.columns).props(f"data-testid={testid}").mark(testid)
    return questions.link_rows(t, [questions.own_page_url(view, subject.path, subject.field, row.key) for row in rows])


def _list_page(view: ScopedView, rows: list[BreakdownRow], subject: Subject) -> None:
    with ui.card().classes("w-full gap-2"):
        ui.label(_list_caption(view, subject)).classes("text-caption text-grey")
        table = linked_table(view, subject, rows)
        table.pagination = {"rowsPerPage": 25}  # a list page is all table: show more than the breakdown tabs' 10
        questions.csv_link(view, f"breakdown/{subject.dimension}", f"Download CSV ({subject.plural.lower()})",
                           f"csv-{subject.dimension}")  # fmt: skip


def _list_caption(view: View, subject: Subject) -> str:
    mine = "; your own runs only" if view.identity.role == "member" else ""
    return f"{view.filters.label}{mine}. Sort by any column; click a row to open its own page."


def _own_page(view: ScopedView, data: questions.PageData, subject: Subject) -> None:
    """A person's or team's dashboard: their header, the overview's cards and the question pages' charts."""
    key = getattr(view.filters, subject.field)
    ui.page_title(f"{key} · {subject.singular} · agentdash")
    _header(view, data, subject, key)
    cards.draw(view, (data.current, data.previous))
    if cards.is_empty(data.current):
        return
    if subject is TEAMS:
        with ui.card().classes("w-full gap-2"):
            ui.label("People in this team").classes("text-subtitle1 text-weight-medium")
            linked_table(view, PEOPLE, data.breakdowns["user"])
    questions.draw(view, data, subject.page, headline=lambda: None)


def _header(view: ScopedView, data: questions.PageData, subject: Subject, key: str) -> None:
    back = f"{subject.path}?{view.filters.to_query(**{subject.field: None})}"
    ui.link(f"← All {subject.plural.lower()}", back).classes("text-caption").props("data-testid=back")
    with ui.row().classes("items-center gap-3"):
        ui.icon(subject.icon, size="lg").classes("text-primary").props("aria-hidden=true")
        with ui.column().classes("gap-0"):
            ui.label(key).classes("text-h5 text-weight-bold").props("data-testid=subject").mark("subject")
            ui.label(_context(view, data, subject)).classes("text-caption text-grey").props(
                "data-testid=subject-context"
            )


def _context(view: ScopedView, data: questions.PageData, subject: Subject) -> str:
    """Who or what the page is about, in a line: a person's teams or a team's head count, and any narrowing."""
    if subject is PEOPLE:
        teams = [row.key for row in data.breakdowns["team"] if row.key]
        about = f"teams in this range: {', '.join(teams) or 'none'}"
        narrowed = f" · only their runs in team {view.query.team_id}" if view.query.team_id else ""
    else:
        about = f"{data.current.active_users or 0} active people in this range"
        narrowed = f" · only {view.query.user_id}'s runs" if view.query.user_id else ""
    return f"{subject.singular} · {about}{narrowed}"
