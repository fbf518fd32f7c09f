"""Plain ASGI, shared by the client port's router and middleware."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

# As both Litestar and FastAPI speak it (their own type aliases disagree in detail).
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


async def send_json_error(send: Any, status: int, message: str) -> None:
    """Answer `{"error": message}` with `status`, as every error of ours answers."""
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
