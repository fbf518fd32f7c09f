"""State-changing requests from the page as real form POSTs, so the browser sends Origin and Sec-Fetch-Site."""

from __future__ import annotations

import json

from nicegui import ui


def post_form(action: str, fields: dict[str, str] | None = None) -> None:
    """Submit a POST to `action` from the page, as a form would (a navigation, not a fetch)."""
    script = (
        "const f = document.createElement('form'); f.method = 'post'; f.action = " + json.dumps(action) + ";"
        "for (const [k, v] of Object.entries(" + json.dumps(fields or {}) + ")) {"
        " const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i); }"
        "document.body.appendChild(f); f.submit();"
    )
    ui.run_javascript(script)
