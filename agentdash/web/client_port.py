"""The client port's one ASGI app: the read API under /api/, the dashboard everywhere else."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

# Plain ASGI, as both Litestar and FastAPI speak it (their own type aliases disagree in detail).
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


class ClientPortApp:
    """Routes /api/ to the read API (Litestar) and everything else to the dashboard (NiceGUI)."""

    def __init__(self, read_api: ASGIApp, dashboard: ASGIApp) -> None:
        self.read_api, self.dashboard = read_api, dashboard

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            await self.read_api(scope, receive, send)
        else:
            await self.dashboard(scope, receive, send)
