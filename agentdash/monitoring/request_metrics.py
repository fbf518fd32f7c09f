"""ASGI middleware: every HTTP request's latency into the monitor's histogram, labelled by route template."""

from __future__ import annotations

import time
from typing import Any

from agentdash.monitoring.monitor import Monitor

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # no route: scanners' paths must not become labels


def route_of(scope: dict[str, Any]) -> str:
    """The template the app matched (Litestar: `path_template`; Starlette, under NiceGUI: `route.path`), after the
    app ran; never the raw path, which would make a series per id and per probe."""
    template = scope.get("path_template")
    if isinstance(template, str):
        return template
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class RequestMetrics:
    """Wraps one port's app; `port` names it in the series ("ingest", "dashboard")."""

    def __init__(self, app: Any, monitor: Monitor, port: str) -> None:
        self.app, self.monitor, self.port = app, monitor, port

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # when the app fails before answering (uvicorn then answers 500)
        started = time.perf_counter()

        async def observed(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.monitor.requests.labels(self.port, method, route_of(scope), str(status)).observe(
                time.perf_counter() - started
            )
