"""Dev mode answers only to loopback names, so a page whose DNS name rebinds to 127.0.0.1 cannot use it."""

from __future__ import annotations

import re
from typing import Any

from agentdash.web.asgi import ASGIApp, send_json_error

LOOPBACK_HOST = re.compile(r"(127\.0\.0\.1|localhost|\[::1\])(:\d+)?", re.IGNORECASE)


def loopback_host(host: str) -> bool:
    """`127.0.0.1`, `localhost` or `[::1]`, with or without a port."""
    return LOOPBACK_HOST.fullmatch(host.strip()) is not None


class LoopbackHostOnly:
    """ASGI middleware: 403 for a request (or websocket) whose Host header is not a loopback name.

    The dev issuer hands out admin cookies to loopback clients; a rebinding attacker's page is a loopback client
    too, but its requests carry the attacker's host name.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            host = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
            if not loopback_host(host):
                await self._refuse(scope, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send_json_error(send, 403, "this development server answers only to 127.0.0.1, localhost or [::1]")
