"""Security headers on every answer of the client port (dashboard and read API)."""

from __future__ import annotations

# NiceGUI compiles Vue templates in the browser and injects inline scripts and styles, hence 'unsafe-eval' and
# 'unsafe-inline'; everything else is locked to our own origin, and nobody may frame the dashboard.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",  # CSP3: 'self' covers the page's own ws:/wss: origin, which is all NiceGUI needs
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])  # fmt: skip

HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # The demo's sign-in link carries a token in its query: never send our URLs to other sites.
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]
NO_STORE = (b"cache-control", b"no-store")  # figures of an org must not linger in shared caches


class SecurityHeaders:
    """ASGI middleware: adds HEADERS to every HTTP answer, and no-store to those that are not static assets."""

    def __init__(self, app, static_prefixes: tuple[str, ...] = ("/_nicegui/",)) -> None:
        self.app, self.static_prefixes = app, static_prefixes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(HEADERS)
        if not scope["path"].startswith(self.static_prefixes):
            extra.append(NO_STORE)

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message = {
                    **message,
                    "headers": [*message.get("headers", []), *(h for h in extra if h[0] not in present)],
                }
            await send(message)

        await self.app(scope, receive, send_with_headers)
