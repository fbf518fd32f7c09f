"""The HTTP edge: the client port's read API (JSON and CSV), its dependencies and error answers, the middleware
around it and the dashboard (body limit, security headers), and both ports' connection deadlines."""

from __future__ import annotations

from agentdash.web.asgi import ASGIApp
from agentdash.web.body_limit import BodyLimit
from agentdash.web.client_port import ClientPortApp
from agentdash.web.errors import EXCEPTION_HANDLERS
from agentdash.web.loopback_host import LoopbackHostOnly
from agentdash.web.read_api import create_read_api
from agentdash.web.schema_page import offline_openapi
from agentdash.web.security_headers import SecurityHeaders
from agentdash.web.slow_clients import ConnectionLimits, protocol_with

__all__ = [
    "ASGIApp",
    "EXCEPTION_HANDLERS",
    "BodyLimit",
    "ClientPortApp",
    "ConnectionLimits",
    "LoopbackHostOnly",
    "SecurityHeaders",
    "create_read_api",
    "offline_openapi",
    "protocol_with",
]
