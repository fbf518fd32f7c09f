"""A cap on request bodies for the client port: nothing people send the dashboard is big (a token, a form)."""

from __future__ import annotations

from agentdash.web.asgi import send_json_error

DEFAULT_MAX_BYTES = 64 * 1024


class BodyLimit:
    """ASGI middleware: 413 for an HTTP request whose body is larger than `max_bytes`, declared or streamed.

    The body is read here, before the app sees it (it is small by definition), so that an oversized chunked body
    is refused with a clear 413 instead of failing inside a form parser.
    """

    def __init__(self, app, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(send)
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        buffered = iter(messages)

        async def replay():
            return next(buffered, None) or await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send) -> None:
        await send_json_error(send, 413, f"request body over {self.max_bytes} bytes")
