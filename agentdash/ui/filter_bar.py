"""The filter bar: date range, custom dates and the team, user, model, repo and agent lists, all moving the URL."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from nicegui import run, ui

from agentdash.auth import Forbidden, NotVisible
from agentdash.metrics import filter_values
from agentdash.ui.filters import PRESETS
from agentdash.ui.view import View, scope

log = logging.getLogger(__name__)

CUSTOM = "custom"


@dataclass(frozen=True)
class Picker:
    """One list of the filter bar: which filter it sets and how it is labelled."""

    key: str  # the Filters field and URL name
    label: str
    everything: str  # the label of "no filter"


PICKERS = {
    "team": Picker("team_id", "Team", "All teams"), "user": Picker("user_id", "User", "All users"),
    "model": Picker("model", "Model", "All models"), "repo": Picker("repo", "Repo", "All repos"),
    "agent": Picker("agent", "Agent", "All agents"),
}  # fmt: skip


def filter_bar(view: View) -> None:
    """The row of filters; each change navigates to the page's URL with that filter changed."""
    f, identity = view.filters, view.identity

    def go(**changes) -> None:
        ui.navigate.to(view.url(**changes))

    def pick_range(value) -> None:
        go(days=None) if value == CUSTOM else go(days=int(value))

    def pick_dates() -> None:
        try:
            start, end = date.fromisoformat(date_from.value), date.fromisoformat(date_to.value)
        except (TypeError, ValueError):
            ui.notify("Enter dates as YYYY-MM-DD", type="warning")
            return
        if start > end:
            ui.notify("The start date must not be after the end date", type="warning")
        elif (start, end) != (f.date_from, f.date_to):
            go(days=None, date_from=start, date_to=end)

    with ui.row().classes("items-center gap-3 w-full").props("role=search aria-label='Filters'"):
        ranges: dict[int | str, str] = {days: label for days, label in PRESETS.items()}
        ranges[CUSTOM] = "Custom range"
        ui.select(
            ranges, value=f.days or CUSTOM, label="Date range (UTC)", on_change=lambda e: pick_range(e.value)
        ).props("dense outlined options-dense aria-label='Date range' data-testid=range").classes("w-44")
        date_from = _date_input("From", f.date_from, pick_dates)
        date_to = _date_input("To", f.date_to, pick_dates)
        # Members see only their own runs: they narrow by model, repo and agent, never by team or person.
        dimensions = ("model", "repo", "agent") if identity.role == "member" else tuple(PICKERS)
        for dimension in dimensions:
            _picker(view, dimension, go)
        if identity.role == "member":
            ui.label("Showing your own runs").classes("text-caption text-grey")


def _picker(view: View, dimension: str, go: Callable[..., None]) -> None:
    """A filter list; it starts with the current choice only, fill_options() lists the rest off the event loop."""
    picker = PICKERS[dimension]

    def pick(value: str | None) -> None:
        changes = {picker.key: value or None}
        if dimension == "team":  # the person picked may not be in the new team
            changes["user_id"] = None
        go(**changes)

    view.pickers[dimension] = (
        ui.select(
            _labelled(view, dimension, _known(view, dimension)),
            value=getattr(view.filters, picker.key) or "",
            label=picker.label,
            on_change=lambda e: pick(e.value),
        )
        .props(f"dense outlined options-dense aria-label='{picker.label}' data-testid={dimension}")
        .classes("w-40")
    )


def _date_input(label: str, value: date, apply: Callable[[], None]) -> ui.input:
    field_ = (
        ui.input(label, value=value.isoformat())
        .props(f"dense outlined type=date aria-label='{label} date (UTC)' data-testid=date-{label.lower()}")
        .classes("w-40")
    )
    # Apply on Enter or leaving the field, not per keystroke: a half-typed year is a valid date too.
    field_.on("keydown.enter", apply)
    field_.on("blur", apply)
    return field_


def _labelled(view: View, dimension: str, options: dict[str, str]) -> dict[str, str]:
    everything = PICKERS[dimension].everything
    if dimension == "team" and view.identity.role == "manager":
        everything = "All my teams"
    return {"": everything, **options}


def _known(view: View, dimension: str) -> dict[str, str]:
    """The options known without a query: a manager's teams, and the current pick."""
    current = getattr(view.filters, PICKERS[dimension].key)
    keys = list(view.identity.teams) if dimension == "team" and view.identity.role == "manager" else []
    if current and current not in keys:
        keys.append(current)
    return {key: key for key in sorted(keys)}


async def fill_options(view: View) -> None:
    """List the teams, users, models, repos and agents to pick from in a worker thread, then put them in the bar."""
    if not view.pickers:
        return
    found = await run.io_bound(lambda: {dimension: _options(view, dimension) for dimension in view.pickers})
    if found is None:  # the app is stopping: nobody is left to pick
        return
    for dimension, picker in view.pickers.items():
        if not picker.is_deleted:
            picker.set_options(_labelled(view, dimension, found[dimension]))


def _options(view: View, dimension: str) -> dict[str, str]:
    """What the identity may pick, found in the range under the other filters; the current pick always stays."""
    f, identity, key = view.filters, view.identity, PICKERS[dimension].key
    current = getattr(f, key)
    if dimension == "team" and identity.role == "manager":
        keys = list(identity.teams)
    else:
        # Picking a team clears the person (see _picker), so the teams listed are not narrowed by them.
        cleared: dict[str, Any] = {key: None, **({"user_id": None} if dimension == "team" else {})}
        try:
            keys = filter_values(
                view.sources.storage, scope(identity, replace(f, **cleared), view.sources.attribution), dimension
            )
        except (Forbidden, NotVisible):
            keys = []
        except Exception:
            log.exception("listing %s options failed", dimension)
            keys = []
    if current and current not in keys:
        keys.append(current)
    return {value: value for value in sorted(keys)}
