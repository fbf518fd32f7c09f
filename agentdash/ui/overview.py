"""The overview (one card per question of SPEC §3 and §7) and, from the same table, one page per question."""

from __future__ import annotations

from functools import partial

from nicegui import ui

from agentdash.metrics import OrgMetrics, org_metrics
from agentdash.ui import cards, questions
from agentdash.ui.cards import QUESTIONS, Question
from agentdash.ui.layout import NAV
from agentdash.ui.page import dashboard_page
from agentdash.ui.view import ScopedView, Sources


def create(sources: Sources) -> None:
    """Register the overview and the question pages."""
    dashboard_page("/", "Overview", sources, _metrics, cards.draw)
    titles = {path: title for path, title, _ in NAV}
    for question in QUESTIONS:
        dashboard_page(question.path, titles[question.path], sources, questions.load,
                       partial(_question_page, q=question))  # fmt: skip


def _metrics(view: ScopedView) -> tuple[OrgMetrics, OrgMetrics]:
    storage = view.sources.storage
    return org_metrics(storage, view.query), org_metrics(storage, view.previous)


def _question_page(view: ScopedView, data: questions.PageData, q: Question) -> None:
    """A question's own page: its headline card, then the charts and breakdowns of questions.PAGES."""
    current, previous = data.current, data.previous
    if q.empty.test(current):
        cards.no_runs(view, q.empty)
        return

    def headline() -> None:
        with ui.card().classes("w-full gap-1").props(f"data-card='{q.title}'"):
            ui.label(q.question).classes("text-subtitle1 text-weight-medium")
            cards.headline(q, current, previous)
            cards.figures(q.figures[1:], current)
            if q.note:
                ui.label(q.note).classes("text-caption q-mt-sm").props("data-testid=note").mark("note")
            ui.label(f"{view.filters.label}; the change compares with the {cards.days(view)} days before.").classes(
                "text-caption text-grey q-mt-sm"
            )

    questions.draw(view, data, questions.PAGES[q.path], headline)
