"""The Sources page in a real browser against a real server: agents appear as their exports arrive."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from browser import browser_page, chromium_path, screenshot

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="Debian chromium is not installed (.ci/run installs it)"
)
CAPTURES = Path(__file__).parent / "data" / "otlp"


def _send(server, key: str, agent: str, scenario: str = "one_prompt") -> None:
    path = CAPTURES / agent / f"{scenario}.json"
    if not path.exists():
        pytest.skip(f"no recording {path} (scripts/record_agent_otlp.py makes them)")
    for export in json.loads(path.read_text()):
        answer = httpx.post(f"{server.ingest_url}/v1/{export['signal']}", content=json.dumps(export["body"]).encode(),
                            headers={"content-type": "application/json", "authorization": f"Bearer {key}"},
                            timeout=30)  # fmt: skip
        assert answer.status_code == 200, answer.text


def test_the_sources_page_shows_agents_as_they_connect(server):
    key = server.create_ingest_key("acme", name="otlp")
    with browser_page() as page:
        page.goto(f"{server.url}/login?token={server.token('acme')}")
        page.goto(f"{server.url}/sources")
        page.wait_for_selector("[data-testid=no-sources]")
        assert "--org acme --for claude-code" in page.inner_text("[data-testid=no-sources]")
        screenshot(page, "sources-empty")

        _send(server, key, "claude")
        # no reload: the page asks again every few seconds and redraws when the counts changed
        page.wait_for_selector("[data-testid=agent][data-agent=claude-code]", timeout=20_000)
        card = page.locator("[data-testid=agent][data-agent=claude-code]")
        assert card.locator("[data-testid=versions]").inner_text() == "2.1.332"
        assert card.locator("[data-testid=people]").inner_text().startswith("1")
        assert card.locator("[data-testid=status]").get_attribute("data-status") in ("connected", "silent")
        assert "claude_code.api_request" in card.locator("[data-testid=record-table]").inner_text()
        screenshot(page, "sources-claude")
        page.click("[data-nav=Overview]")
        page.wait_for_url("**/?*")
        assert page.locator("[data-nav=Sources]").count() == 1
