"""Deadlines and a connection cap for both ports: uvicorn has no deadline for request headers or bodies.

Without them a client that trickles a byte every few seconds holds a connection (and a file descriptor of the one
process both ports share) for ever. uvicorn lets a server choose its HTTP protocol class, so the deadlines live in
a subclass of its httptools protocol rather than in ASGI middleware, which only sees a request once its headers
are in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_REASONS = {408: b"Request Timeout", 503: b"Service Unavailable"}


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take to send a request, and how many connections one port holds open."""

    header_timeout: float = 10.0  # from connecting (or a kept-alive request's first byte) to the end of headers
    body_timeout: float = 60.0  # from the end of headers to the end of the body
    max_connections: int = 1000


def protocol_with(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """A protocol class for `uvicorn.Config(http=...)` that applies `limits`."""
    return type("LimitedHttpProtocol", (LimitedHttpProtocol,), {"limits": limits})


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines and a cap on open connections."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._request_begun = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._answer_and_close(503, "too many open connections, try again shortly", retry_after=1)
            return
        self._arm(self.limits.header_timeout, self._headers_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_begun = True
        if self._deadline is None:  # a later request on a kept-alive connection: its clock starts with its first byte
            self._arm(self.limits.header_timeout, self._headers_late)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        if not (self.parser.should_upgrade() and self._should_upgrade()):  # a websocket is not a request body
            self._arm(self.limits.body_timeout, self._body_late)

    def on_message_complete(self) -> None:
        self._disarm()
        self._request_begun = False
        super().on_message_complete()

    def _headers_late(self) -> None:
        if self._request_begun:
            self._answer_and_close(408, f"request headers not received within {self.limits.header_timeout:g} s")
        else:  # an idle connection that never asked anything: nothing to answer
            self.transport.close()

    def _body_late(self) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            cycle.disconnected = True  # the app reading the body sees a disconnect; its late answer goes nowhere
            cycle.message_event.set()
            self._answer_and_close(408, f"request body not received within {self.limits.body_timeout:g} s")
        else:
            self.transport.close()

    def _arm(self, seconds: float, on_late: Callable[[], None]) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, on_late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _answer_and_close(self, status: int, message: str, retry_after: int | None = None) -> None:
        if self.transport.is_closing():
            return
        self.transport.write(_error_response(status, message, retry_after))
        self.transport.close()


def _error_response(status: int, message: str, retry_after: int | None) -> bytes:
    body = msgspec.json.encode({"error": message})
    head = [
        b"HTTP/1.1 %d %s" % (status, _REASONS[status]),
        b"content-type: application/json",
        b"content-length: %d" % len(body),
        b"connection: close",
    ]
    if retry_after is not None:
        head.append(b"retry-after: %d" % retry_after)
    return b"\r\n".join(head) + b"\r\n\r\n" + body
