"""The banner every page shows while alerts fire, scoped by role (alerts.access.firing_for)."""

from __future__ import annotations

import logging
import re

from nicegui import run, ui

from agentdash.alerts.access import firing_for
from agentdash.alerts.views import firing_now
from agentdash.storage import AlertEvent
from agentdash.ui.view import View

log = logging.getLogger(__name__)

_EMOJI = re.compile(r"^:[a-z_]+: ")  # Slack's emoji code at the start of a notification's text


def alert_banner(view: View) -> None:
    """A slot under the page title, filled off the event loop once the page is connected."""
    store = view.sources.alert_store
    if store is None:
        return
    slot = ui.column().classes("w-full gap-1")

    def load() -> list[AlertEvent]:
        return firing_for(view.identity, firing_now(store, view.identity.org_id))

    async def fill() -> None:
        try:
            events = await run.io_bound(load)
        except Exception:
            log.exception("loading the firing alerts failed")
            return
        if slot.is_deleted or not events:
            return
        with slot:
            for event in events or []:
                with (
                    ui.row()
                    .classes("w-full items-center gap-2 q-pa-sm bg-negative text-white rounded-borders")
                    .props(f"role=alert data-testid=alert-banner data-rule={event.rule_id}")
                ):
                    ui.icon("notifications_active").props("aria-hidden=true")
                    ui.label(_EMOJI.sub("", event.text))
                    if view.identity.role in ("org_admin", "manager"):
                        ui.link("Alerts", "/alerts").classes("text-white")

    ui.timer(0.01, fill, once=True)
