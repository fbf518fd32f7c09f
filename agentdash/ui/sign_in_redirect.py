"""Who is signed in: the session cookie's identity, or the redirect to the sign-in page saying why."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse

from agentdash.auth import Identity, NotAuthorized, ProviderUnavailable, TokenExpired, TokenVerifier
from agentdash.ui.signin import COOKIE, signin_url


def signed_in(request: Request, verifier: TokenVerifier) -> Identity | RedirectResponse:
    """The cookie's identity, or the way to the sign-in page saying why (and coming back here afterwards)."""
    token = request.cookies.get(COOKIE, "")
    try:
        return verifier.verify(token)
    except NotAuthorized as exc:
        reason = _reason(exc, token)
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(signin_url(reason, here), status_code=303)
        if token and reason != "unavailable":
            response.delete_cookie(COOKIE, path="/")
        return response


def _reason(exc: NotAuthorized, token: str) -> str:
    if isinstance(exc, TokenExpired):
        return "expired"
    if isinstance(exc, ProviderUnavailable):
        return "unavailable"
    return "invalid" if token else "required"
