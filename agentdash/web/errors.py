"""The edge where domain errors become HTTP answers: every error answers JSON {"error": text} with its status."""

from __future__ import annotations

import logging

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from agentdash.alerts import InvalidRule
from agentdash.auth import (
    BadSignature,
    Forbidden,
    NotAuthorized,
    NotLinked,
    NotVisible,
    ProviderUnavailable,
    Throttled,
    Unauthenticated,
)
from agentdash.events import InvalidEvent, NotJson, TooLarge
from agentdash.metrics import InvalidQuery
from agentdash.sources import InvalidDelivery
from agentdash.storage import AlertRuleError, Overloaded, Unavailable

log = logging.getLogger("agentdash")


def _answer(status: int, headers: dict[str, str] | None = None):
    def handler(request: Request, exc: Exception) -> Response:
        return Response({"error": str(exc)}, status_code=status, headers=headers)

    return handler


def _throttled(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Throttled)
    return Response({"error": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)})


def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return Response({"error": _describe(exc)}, status_code=exc.status_code, headers=exc.headers)


def _internal(request: Request, exc: Exception) -> Response:
    # The caller learns nothing of our insides; the operator gets the whole traceback.
    log.error("internal error answering %s %s", request.method, request.url.path, exc_info=exc)
    return Response({"error": "internal error"}, status_code=HTTP_500_INTERNAL_SERVER_ERROR)


def _describe(exc: HTTPException) -> str:
    """The detail plus, for Litestar's parameter validation, which parameter is wrong and why."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    named = [f"{p['key']}: {p['message']}" for p in problems if isinstance(p, dict) and "key" in p and "message" in p]
    return f"{exc.detail} ({'; '.join(named)})" if named else exc.detail


# Litestar picks the handler of the most specific class in the exception's MRO.
EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    InvalidEvent: _answer(400),
    InvalidQuery: _answer(400),
    InvalidDelivery: _answer(400),
    InvalidRule: _answer(400),
    AlertRuleError: _answer(404),
    TooLarge: _answer(413),
    NotJson: _answer(415),
    Unauthenticated: _answer(401, {"WWW-Authenticate": "Bearer"}),
    NotAuthorized: _answer(401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}),
    BadSignature: _answer(401),  # GitHub's HMAC signature has no WWW-Authenticate scheme to name
    NotLinked: _answer(404),  # no credential could pass: the owner must be linked first (the message says how)
    ProviderUnavailable: _answer(503, {"Retry-After": "10"}),  # not the caller's fault
    Forbidden: _answer(403),
    NotVisible: _answer(404),
    Throttled: _throttled,
    Overloaded: _answer(503, {"Retry-After": "1"}),
    Unavailable: _answer(503, {"Retry-After": "5"}),  # the database is unreachable: not the caller's fault
    HTTPException: _http,
    Exception: _internal,
}
