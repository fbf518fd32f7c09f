"""The layout every dashboard page shares: header, navigation, dark mode, and the frame around the content."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import ui

from agentdash.ui.alert_banner import alert_banner
from agentdash.ui.filter_bar import filter_bar as draw_filter_bar
from agentdash.ui.forms import post_form
from agentdash.ui.freshness import freshness_line
from agentdash.ui.view import View

NAV = [
    ("/", "Overview", "dashboard"), ("/adoption", "Adoption", "group"), ("/reliability", "Reliability", "verified"),
    ("/speed", "Speed", "speed"), ("/cost", "Cost", "payments"),
    ("/human-intervention", "Human intervention", "back_hand"), ("/iteration", "Iteration", "replay"),
    ("/shipping", "Shipping", "rocket_launch"), ("/people", "People", "person"), ("/teams", "Teams", "groups"),
]  # fmt: skip
ADMIN_NAV = [("/sources", "Sources", "cable")]  # org admins' tools, after the pages everyone has
ALERTS_NAV = [("/alerts", "Alerts", "notifications")]  # org admins and managers
DARK_COOKIE = "agentdash_dark"


@contextmanager
def frame(title: str, view: View, filter_bar: bool = True) -> Iterator[None]:
    """Header, navigation and (unless told not to) the filter bar around a page's content, then the freshness
    line under it."""
    dark = ui.dark_mode(view.dark)
    _header(view, dark)
    with ui.left_drawer(value=True, fixed=True).props("width=210 bordered breakpoint=700").classes("q-pa-sm"):
        _navigation(view)
    with ui.column().classes("w-full q-px-md q-pt-md gap-3"):
        ui.label(title).classes("text-h5")
        alert_banner(view)
        if filter_bar:
            draw_filter_bar(view)
        yield
        freshness_line(view)


def _header(view: View, dark: ui.dark_mode) -> None:
    with ui.header().classes("items-center justify-between q-px-md q-py-sm"):
        with ui.row().classes("items-center gap-3"):
            ui.label("agentdash").classes("text-h6 text-weight-bold")
            ui.label(f"{view.identity.org_id}").classes("text-subtitle1").props("data-testid=org")
            ui.badge(f"{view.identity.role} · {view.identity.sub}", color="white", text_color="primary").props(
                "data-testid=role"
            )
        with ui.row().classes("items-center gap-1"):
            ui.button(icon="dark_mode", on_click=lambda: _toggle_dark(dark)).props(
                "flat round color=white aria-label='Toggle dark mode' data-testid=dark-toggle"
            ).tooltip("Light / dark")
            ui.button(icon="logout", on_click=lambda: post_form("/logout")).props(
                "flat round color=white aria-label='Sign out' data-testid=logout"
            ).tooltip("Sign out")


def _toggle_dark(dark: ui.dark_mode) -> None:
    dark.toggle()
    # Remembered in a plain cookie (not a secret), so the next page is drawn dark at once, without a flash.
    ui.run_javascript(
        f"document.cookie = '{DARK_COOKIE}={int(bool(dark.value))}; path=/; max-age=31536000; SameSite=Lax'"
    )


def _navigation(view: View) -> None:
    query = view.filters.to_query()
    with ui.element("nav").props("aria-label='Pages'").classes("column gap-1 w-full"):
        role = view.identity.role
        extra = (ALERTS_NAV if role in ("org_admin", "manager") else []) + (ADMIN_NAV if role == "org_admin" else [])
        for path, label, icon in NAV + extra:
            current = path == view.route or view.route.startswith(f"{path}/")  # a person's page is under People
            with (
                ui.link(target=f"{path}?{query}")
                .classes(
                    "row items-center gap-2 q-px-sm q-py-xs rounded-borders no-underline "
                    + ("bg-primary text-white" if current else "text-primary")
                )
                .props(f"data-nav='{label}'" + (" aria-current=page" if current else ""))
            ):
                ui.icon(icon).props("aria-hidden=true")
                ui.label(label)
