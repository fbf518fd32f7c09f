"""The Sources page with NiceGUI's `user` fixture (in-process, no browser): agent cards, status chips, rejection
reasons, the empty state, and that only org admins see it or its link."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from user_fixture import drawn, prepare_user_app, sign_in

from agentdash.config import load_settings
from agentdash.storage import AgentSummary, SourceCount, open_source_store
from agentdash.ui.sources import ago, status

pytest_plugins = ["nicegui.testing.user_plugin"]
pytestmark = pytest.mark.nicegui_main_file("tests/sources_user_app.py")

NO_USER = "no user: set user.email (OTEL_RESOURCE_ATTRIBUTES=user.email=...)"
NOW_US = time.time_ns() // 1000
DAY_US = 86_400_000_000


@pytest.fixture
def user_app(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    prepare_user_app([], data_dir, monkeypatch)
    store = open_source_store(load_settings(data_dir=data_dir))
    store.add([
        SourceCount("acme", "claude-code", "2.1.332", "claude_code.api_request", 5, 5, 0, 0, 5, 0, {}, NOW_US),
        SourceCount("acme", "claude-code", "2.1.332", "claude_code.plugin_loaded", 2, 0, 2, 0, 0, 0, {}, NOW_US),
        SourceCount("acme", "gemini-cli", "0.9.0", "gemini_cli.api_request", 4, 1, 0, 3, 1, 0, {NO_USER: 3},
                    NOW_US - 2 * DAY_US),
        SourceCount("acme", "codex_exec", "0.171.0", "codex.api_request", 1, 1, 0, 0, 1, 0, {}, NOW_US - 3 * DAY_US),
    ], {("acme", "claude-code", "ana@acme.test"): NOW_US})  # fmt: skip
    store.close()


def _texts(user, testid: str) -> list[str]:
    return [e.text for e in user.client.elements.values() if e.props.get("data-testid") == testid]


def _statuses(user) -> dict[str, str]:
    cards = [e for e in user.client.elements.values() if e.props.get("data-testid") == "agent"]
    return {card.props["data-agent"]: next(d.props["data-status"] for d in card.descendants()
                                           if d.props.get("data-testid") == "status") for card in cards}  # fmt: skip


async def test_an_admin_sees_each_agent_with_its_status_and_why_records_were_rejected(user_app, user):
    sign_in(user, "acme")
    await user.open("/sources")
    await drawn(user, "sources-ready")
    assert _statuses(user) == {"claude-code": "connected", "gemini-cli": "misconfigured", "codex_exec": "silent"}
    assert _texts(user, "agent-name") == ["claude-code", "gemini-cli", "codex_exec"]  # most recently seen first
    assert "2.1.332" in _texts(user, "versions")
    assert "1 (ana@acme.test)" in _texts(user, "people")
    assert _texts(user, "reason") == [f"3 records: {NO_USER}"]
    await user.should_see("2 days ago")


async def test_an_org_without_agents_is_told_how_to_connect_one(user_app, user):
    sign_in(user, "globex")
    await user.open("/sources")
    await drawn(user, "sources-ready")
    await user.should_see(marker="no-sources")
    await user.should_see("agentdash ingest-key create --org globex --for claude-code")
    await user.should_see("Connect your agents")


@pytest.mark.parametrize("role", ["manager", "member"])
async def test_managers_and_members_are_refused_and_get_no_link(user_app, user, role):
    sign_in(user, "acme", role, teams=("platform",))
    await user.open("/sources")
    await user.should_see("the Sources page is for org admins")
    await user.should_not_see("claude-code")
    await user.open("/")
    assert not [e for e in user.client.elements.values() if e.props.get("data-nav") == "Sources"]


async def test_admins_find_it_in_the_navigation(user_app, user):
    sign_in(user, "acme")
    await user.open("/")
    assert [e for e in user.client.elements.values() if e.props.get("data-nav") == "Sources"]


def test_status_and_relative_time():
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)

    def agent(last_seen: datetime | None, records: int = 4, rejected: int = 0) -> AgentSummary:
        return AgentSummary("a", [], 0, [], last_seen, records, rejected, [])

    assert status(agent(now - timedelta(minutes=59)), now) == "connected"
    assert status(agent(now - timedelta(minutes=61)), now) == "silent"
    assert status(agent(now, rejected=3), now) == "misconfigured"
    assert status(agent(now, rejected=2), now) == "connected"  # half is not most
    assert [ago(now - d, now) for d in (timedelta(seconds=5), timedelta(minutes=3), timedelta(hours=5),
                                         timedelta(days=1), timedelta(days=9))] == [
        "just now", "3 min ago", "5 h ago", "1 day ago", "9 days ago"]  # fmt: skip
    assert ago(now + timedelta(minutes=2), now) == "just now" and ago(None, now) == "never"
