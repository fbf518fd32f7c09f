"""Registering a dashboard page: sign-in, scoping, a loading state, data loaded off the event loop, then drawing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import run, ui

from agentdash.auth import Forbidden, NotVisible
from agentdash.ui.filter_bar import fill_options
from agentdash.ui.filters import Filters
from agentdash.ui.layout import DARK_COOKIE, frame
from agentdash.ui.sign_in_redirect import signed_in
from agentdash.ui.view import ScopedView, Sources, View

log = logging.getLogger(__name__)

Data = TypeVar("Data")
LOAD_ERROR = "This panel could not be loaded. Try again in a moment; the server log has the details."


def dashboard_page(path: str, title: str, sources: Sources, load: Callable[[ScopedView], Data],
                   draw: Callable[[ScopedView, Data], None]) -> None:  # fmt: skip
    """Register a signed-in page at `path`: `load(view)` runs the queries in a worker thread (never on the event
    loop) while a spinner shows, then `draw(view, data)` draws the panels; both run again when new data arrives."""

    @ui.page(path, title=f"{title} · agentdash")
    async def page(request: Request) -> RedirectResponse | None:
        identity = signed_in(request, sources.verifier)
        if isinstance(identity, RedirectResponse):
            return identity
        # A path parameter pins its filter: `/people/{user_id}` is about that user, whatever the query says.
        filters = Filters.from_params({**request.query_params, **request.path_params})
        view = View(identity, filters, sources, path, dark=request.cookies.get(DARK_COOKIE) == "1")
        show = None
        with frame(title, view):
            try:
                scoped = ScopedView.of(view)
            except (Forbidden, NotVisible) as exc:
                _message(str(exc), "lock")
            else:
                content = ui.column().classes("w-full gap-3")
                with content:
                    _loading()
                show = _loader(scoped, content, load, draw)
                view.on_new_data.append(show)
        try:
            await ui.context.client.connected(timeout=10)
        except Exception:  # the browser left before connecting: nothing to draw
            return None
        await asyncio.gather(*([show()] if show else []), _fill_quietly(view))
        return None


async def _fill_quietly(view: View) -> None:
    try:
        await fill_options(view)
    except Exception:
        log.exception("filling the filter lists failed")


def _loader(view: ScopedView, content: ui.column, load: Callable[[ScopedView], Data],
            draw: Callable[[ScopedView, Data], None]) -> Callable[[], Awaitable[None]]:  # fmt: skip
    """The page's `show()`: load in a worker thread, then draw into `content`; a call while one runs is dropped."""
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
            if data is not None:  # None: the app is stopping, there is nobody to draw for
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
    with (
        ui.row()
        .classes("w-full justify-center items-center q-pa-xl gap-3")
        .props("data-testid=loading aria-live=polite")
    ):
        ui.spinner(size="lg")
        ui.label("Loading…").classes("text-grey")


def _draw(draw: Callable[[ScopedView, Data], None], view: ScopedView, data: Data, content: ui.column) -> None:
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
