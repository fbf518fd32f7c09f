"""The frame every dashboard page shares: header, navigation, filter bar, freshness line and sign-in."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import run, ui

from agentdash.auth import Forbidden, Identity, NotAuthorized, NotVisible, ProviderUnavailable, TokenExpired, TokenVerifier, scoped_query
from agentdash.metrics import MetricsQuery, filter_values
from agentdash.ui.filters import PRESETS, Filters
from agentdash.ui.signin import COOKIE, signin_url

log = logging.getLogger(__name__)

NAV = [
    ("/", "Overview", "dashboard"), ("/adoption", "Adoption", "group"), ("/reliability", "Reliability", "verified"),
    ("/speed", "Speed", "speed"), ("/cost", "Cost", "payments"),
    ("/human-intervention", "Human intervention", "back_hand"), ("/iteration", "Iteration", "replay"),
    ("/people", "People", "person"), ("/teams", "Teams", "groups"),
]  # fmt: skip
REFRESH_SECONDS = 3.0
DARK_COOKIE = "agentdash_dark"
ROUTE_PARAMETER = re.compile(r"{(\w+)(?::\w+)?}")  # `{user_id}` or, with a Starlette convertor, `{user_id:path}`
CUSTOM = "custom"


@dataclass(frozen=True)
class Sources:
    """What pages read from: the storage (through metrics.py), the projector's status, who signs in."""

    storage: object
    projector: object
    verifier: TokenVerifier


@dataclass
class View:
    """One page's state: who looks, with which filters, and the queries they may run."""

    identity: Identity
    filters: Filters
    sources: Sources
    route: str  # as registered, e.g. `/people/{user_id}`: its parameters pin filters
    query: MetricsQuery | None = None
    previous: MetricsQuery | None = None
    on_new_data: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    pickers: dict[str, ui.select] = field(default_factory=dict)  # the filter bar's lists
    dark: bool = False  # the person's light/dark choice, from DARK_COOKIE

    @property
    def path(self) -> str:
        """This page's own address: the route with the pinned filters filled in."""
        return self._path_for(self.filters) or self.route

    def url(self, **changes) -> str:
        """This page with the filters changed; changing a pinned filter moves to that person's or team's page,
        clearing it goes back to the list."""
        f = replace(self.filters, **changes) if changes else self.filters
        pinned = ROUTE_PARAMETER.findall(self.route)
        path = self._path_for(f) or self.route.split("/{")[0]
        return f"{path}?{f.to_query(**{key: None for key in pinned})}"

    def _path_for(self, f: Filters) -> str | None:
        values = {key: getattr(f, key) for key in ROUTE_PARAMETER.findall(self.route)}
        if not all(values.values()):
            return None
        return ROUTE_PARAMETER.sub(lambda m: quote(values[m[1]], safe=""), self.route)


class ScopeError(Exception):
    """The identity may not see what the filters ask for; the message says why."""


def scope(identity: Identity, filters: Filters) -> MetricsQuery:
    """The filters' query narrowed by the read API's own rule, so the screen never shows more than the API."""
    try:
        return scoped_query(identity, filters.metrics_query(identity.org_id))
    except (Forbidden, NotVisible) as exc:
        raise ScopeError(str(exc)) from None


@dataclass(frozen=True)
class Picker:
    """One list of the filter bar: which filter it sets and how it is labelled."""

    key: str  # the Filters field and URL name
    label: str
    everything: str  # the label of "no filter"


PICKERS = {
    "team": Picker("team_id", "Team", "All teams"), "user": Picker("user_id", "User", "All users"),
    "model": Picker("model", "Model", "All models"), "repo": Picker("repo", "Repo", "All repos"),
}  # fmt: skip


def dashboard_page(path: str, title: str, sources: Sources, load: Callable[[View], Any],
                   draw: Callable[[View, Any], None]) -> None:
    """Register a signed-in page at `path`: `load(view)` runs the queries in a worker thread (never on the event
    loop) while a spinner shows, then `draw(view, data)` draws the panels; both run again when new data arrives."""

    @ui.page(path, title=f"{title} · agentdash")
    async def page(request: Request) -> None:
        identity = _signed_in(request, sources.verifier)
        if isinstance(identity, RedirectResponse):
            return identity
        # A path parameter pins its filter: `/people/{user_id}` is about that user, whatever the query says.
        params = {**request.query_params, **request.path_params}
        filters = Filters.from_params(params)
        view = View(identity, filters, sources, path, dark=request.cookies.get(DARK_COOKIE) == "1")
        show = None
        with frame(title, view):
            try:
                view.query, view.previous = scope(identity, filters), scope(identity, filters.previous_period())
            except ScopeError as exc:
                _message(str(exc), "lock")
            else:
                content = ui.column().classes("w-full gap-3")
                with content:
                    _loading()
                show = _loader(view, content, load, draw)
                view.on_new_data.append(show)
        try:
            await ui.context.client.connected(timeout=10)
        except Exception:  # the browser left before connecting: nothing to draw
            return
        await asyncio.gather(*([show()] if show else []), _fill_quietly(view))


async def _fill_quietly(view: View) -> None:
    try:
        await fill_options(view)
    except Exception:
        log.exception("filling the filter lists failed")


def _loader(view: View, content: ui.column, load: Callable[[View], Any], draw: Callable[[View, Any], None]):
    busy = {"now": False}

    async def show() -> None:
        if busy["now"]:  # a refresh is already under way; it will show the newest data
            return
        busy["now"] = True
        try:
            try:
                data = await run.io_bound(load, view)
            except Exception:
                log.exception("loading %s failed", view.path)
                _replace(content, lambda: _message(LOAD_ERROR, "error"))
                return
            _replace(content, lambda: _draw(draw, view, data, content))
        finally:
            busy["now"] = False

    return show


def _replace(content: ui.column, fill: Callable[[], None]) -> None:
    if content.is_deleted:
        return
    content.clear()
    with content:
        fill()


def _loading() -> None:
    with ui.row().classes("w-full justify-center items-center q-pa-xl gap-3").props("data-testid=loading aria-live=polite"):
        ui.spinner(size="lg")
        ui.label("Loading…").classes("text-grey")


@contextmanager
def frame(title: str, view: View) -> Iterator[None]:
    """Header, navigation and filter bar around a page's content, then the freshness line under it."""
    dark = ui.dark_mode(view.dark)

    def toggle_dark() -> None:
        dark.toggle()
        # Remembered in a plain cookie (not a secret), so the next page is drawn dark at once, without a flash.
        ui.run_javascript(f"document.cookie = '{DARK_COOKIE}={int(bool(dark.value))}; path=/; max-age=31536000; SameSite=Lax'")

    with ui.header().classes("items-center justify-between q-px-md q-py-sm"):
        with ui.row().classes("items-center gap-3"):
            ui.label("agentdash").classes("text-h6 text-weight-bold")
            ui.label(f"{view.identity.org_id}").classes("text-subtitle1").props("data-testid=org")
            ui.badge(f"{view.identity.role} · {view.identity.sub}", color="white", text_color="primary").props(
                "data-testid=role"
            )
        with ui.row().classes("items-center gap-1"):
            ui.button(icon="dark_mode", on_click=toggle_dark).props(
                "flat round color=white aria-label='Toggle dark mode' data-testid=dark-toggle"
            ).tooltip("Light / dark")
            ui.button(icon="logout", on_click=lambda: ui.navigate.to("/logout")).props(
                "flat round color=white aria-label='Sign out' data-testid=logout"
            ).tooltip("Sign out")
    with ui.left_drawer(value=True, fixed=True).props("width=210 bordered breakpoint=700").classes("q-pa-sm"):
        _navigation(view)
    with ui.column().classes("w-full q-px-md q-pt-md gap-3"):
        ui.label(title).classes("text-h5")
        _filter_bar(view)
        yield
        _freshness(view)


def _navigation(view: View) -> None:
    query = view.filters.to_query()
    with ui.element("nav").props("aria-label='Pages'").classes("column gap-1 w-full"):
        for path, label, icon in NAV:
            current = path == view.route or view.route.startswith(f"{path}/")  # a person's page is under People
            with ui.link(target=f"{path}?{query}").classes(
                "row items-center gap-2 q-px-sm q-py-xs rounded-borders no-underline "
                + ("bg-primary text-white" if current else "text-primary")
            ).props(f"data-nav='{label}'" + (" aria-current=page" if current else "")):
                ui.icon(icon).props("aria-hidden=true")
                ui.label(label)


def _filter_bar(view: View) -> None:
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
        ranges = {**PRESETS, CUSTOM: "Custom range"}
        ui.select(ranges, value=f.days or CUSTOM, label="Date range (UTC)", on_change=lambda e: pick_range(e.value)).props(
            "dense outlined options-dense aria-label='Date range' data-testid=range"
        ).classes("w-44")
        date_from = _date_input("From", f.date_from, pick_dates)
        date_to = _date_input("To", f.date_to, pick_dates)
        # Members see only their own runs: they narrow by model and repo, never by team or person.
        dimensions = ("model", "repo") if identity.role == "member" else tuple(PICKERS)
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

    view.pickers[dimension] = ui.select(
        _labelled(view, dimension, _known(view, dimension)), value=getattr(view.filters, picker.key) or "",
        label=picker.label, on_change=lambda e: pick(e.value),
    ).props(f"dense outlined options-dense aria-label='{picker.label}' data-testid={dimension}").classes("w-40")


def _date_input(label: str, value: date, apply: Callable[[], None]) -> ui.input:
    field_ = ui.input(label, value=value.isoformat()).props(
        f"dense outlined type=date aria-label='{label} date (UTC)' data-testid=date-{label.lower()}"
    ).classes("w-40")
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
    """List the teams, users, models and repos to pick from in a worker thread, then put them in the filter bar."""
    if not view.pickers:
        return
    found = await run.io_bound(lambda: {dimension: _options(view, dimension) for dimension in view.pickers})
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
        others = replace(f, **{key: None}, **({"user_id": None} if dimension == "team" else {}))
        try:
            keys = filter_values(view.sources.storage, scope(identity, others), dimension)
        except ScopeError:
            keys = []
        except Exception:
            log.exception("listing %s options failed", dimension)
            keys = []
    if current and current not in keys:
        keys.append(current)
    return {value: value for value in sorted(keys)}


def _freshness(view: View) -> None:
    """'Data as of …' with the projection lag; redraws the page's panels when the checkpoint moves."""
    label = ui.label().classes("text-caption text-grey q-mt-sm").props("data-testid=freshness aria-live=polite")
    seen: dict[str, int | None] = {"projected": None}

    def read() -> bool:
        """Update the line; True when events were folded since the last look."""
        try:
            status = view.sources.projector.status()
        except Exception:
            log.exception("projector status failed")
            label.text = "Data freshness unknown: the projector's status could not be read"
            return False
        label.text = freshness_text(status.last_fold_at_us, status.lag_events)
        moved = seen["projected"] is not None and status.events_projected != seen["projected"]
        seen["projected"] = status.events_projected
        return moved

    async def tick() -> None:
        if read():
            for callback in list(view.on_new_data):
                await callback()

    read()
    ui.timer(REFRESH_SECONDS, tick)


def freshness_text(last_fold_at_us: int | None, lag_events: int) -> str:
    if last_fold_at_us is None:
        return f"No data folded yet · {lag_events} events behind"
    at = datetime.fromtimestamp(last_fold_at_us / 1e6, tz=timezone.utc)
    return f"Data as of {at:%Y-%m-%d %H:%M:%S} UTC · {lag_events} events behind"


LOAD_ERROR = "This panel could not be loaded. Try again in a moment; the server log has the details."


def _draw(draw: Callable[[View, Any], None], view: View, data: Any, content: ui.column) -> None:
    try:
        draw(view, data)
    except Exception:
        log.exception("drawing %s failed", view.path)
        content.clear()
        with content:
            _message(LOAD_ERROR, "error")


def _message(text: str, icon: str) -> None:
    with ui.card().classes("w-full items-center q-pa-lg"):
        ui.icon(icon, size="lg").classes("text-grey")
        ui.label(text).classes("text-subtitle1").props("data-testid=message")


def _signed_in(request: Request, verifier: TokenVerifier) -> Identity | RedirectResponse:
    """The cookie's identity, or the way to the sign-in page saying why (and coming back here afterwards)."""
    token = request.cookies.get(COOKIE, "")
    try:
        return verifier.verify(token)
    except NotAuthorized as exc:
        if isinstance(exc, TokenExpired):
            reason = "expired"
        elif isinstance(exc, ProviderUnavailable):
            reason = "unavailable"
        else:
            reason = "invalid" if token else "required"
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(signin_url(reason, here), status_code=303)
        if token and reason != "unavailable":
            response.delete_cookie(COOKIE, path="/")
        return response
