"""Helpers for page tests with NiceGUI's `user` fixture: a filled data dir for tests/dashboard_user_app.py, sign-in."""

from __future__ import annotations

from pathlib import Path

import msgspec

from agentdash.auth import issue_token
from agentdash.config import load_settings
from agentdash.events import parse_event
from agentdash.projector import Projector
from agentdash.storage import open_storage
from agentdash.ui.signin import COOKIE

SECRET = "user-fixture-secret-with-at-least-32-bytes"


def prepare_user_app(events: list[dict], data_dir: Path, monkeypatch) -> None:
    """Store and fold `events` in `data_dir`, and point tests/dashboard_user_app.py at it."""
    storage = open_storage(load_settings(data_dir=data_dir))
    try:
        assert all(storage.submit([parse_event(msgspec.json.encode(e)) for e in events]).result(timeout=30))
        Projector(storage).catch_up()
    finally:
        storage.close()
    monkeypatch.setenv("DASHBOARD_USER_APP_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DASHBOARD_USER_APP_SECRET", SECRET)


def sign_in(user, org: str, role: str = "org_admin", sub: str = "tester", teams: tuple[str, ...] = ()) -> None:
    user.http_client.cookies.set(COOKIE, issue_token(SECRET, org, role, sub, teams))


async def drawn(user, marker: str) -> None:
    await user.should_see(marker=marker, retries=100)  # the figures load in a worker thread after the page opens


def figure(user, name: str) -> str:
    """The text of the overview card figure `name` (the same data-metric the browser tests read)."""
    return next(e.text for e in user.client.elements.values() if e.props.get("data-metric") == name)
