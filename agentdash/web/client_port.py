"""The client port's one ASGI app: the read API under /api/, the dashboard everywhere else."""

from __future__ import annotations

from typing import Any

from agentdash.web.asgi import ASGIApp


class ClientPortApp:
    """Routes /api/ to the read API (Litestar) and everything else to the dashboard (NiceGUI)."""

    def __init__(self, read_api: ASGIApp, dashboard: ASGIApp) -> None:
        self.read_api, self.dashboard = read_api, dashboard

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            await self.read_api(scope, receive, send)
        else:
            await self.dashboard(scope, receive, send)
