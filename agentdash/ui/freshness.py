"""The freshness line under every page: how current the data is, and a redraw when the checkpoint moves."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from nicegui import ui

from agentdash.storage import StorageError
from agentdash.ui.view import View

log = logging.getLogger(__name__)

REFRESH_SECONDS = 3.0


def freshness_line(view: View) -> None:
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
        label.text = freshness_text(status.last_fold_at_us, status.lag_events, admin_dead_letters(view))
        moved = seen["projected"] is not None and status.events_projected != seen["projected"]
        seen["projected"] = status.events_projected
        return moved

    async def tick() -> None:
        if read():
            for callback in list(view.on_new_data):
                await callback()

    read()
    ui.timer(REFRESH_SECONDS, tick)


def freshness_text(last_fold_at_us: int | None, lag_events: int, dead_letters: int | None = None) -> str:
    """`dead_letters`: the org's, shown to its admins (None: not shown); the events its figures lack."""
    letters = f" · {dead_letters} dead letters (agentdash dlq list)" if dead_letters else ""
    if last_fold_at_us is None:
        return f"No data folded yet · {lag_events} events behind{letters}"
    at = datetime.fromtimestamp(last_fold_at_us / 1e6, tz=UTC)
    return f"Data as of {at:%Y-%m-%d %H:%M:%S} UTC · {lag_events} events behind{letters}"


def admin_dead_letters(view: View) -> int | None:
    """The org's dead letters for an org admin, who can have them retried; None for everyone else."""
    if view.identity.role != "org_admin":
        return None
    try:
        return view.sources.storage.dead_letters.count(view.identity.org_id)
    except StorageError:  # the line still says how fresh the data is
        log.exception("dead-letter count failed")
        return None
