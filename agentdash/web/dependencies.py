"""What the read API's routes share: the caller's identity and its scoped metrics query, as dependencies."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Annotated

from litestar import Request
from litestar.params import FromPath, FromQuery, QueryParameter

from agentdash.auth import (
    Identity,
    NotAuthorized,
    ProviderUnavailable,
    Throttled,
    Unauthenticated,
    client_address,
    scoped_query,
)  # fmt: skip
from agentdash.metrics import DIMENSIONS, EARLIEST_DAY, LATEST_DAY, InvalidQuery, MetricsQuery

MAX_RANGE_DAYS = 3 * 366
MAX_ROWS = 10_000
RowLimit = Annotated[int | None, QueryParameter(ge=1, le=MAX_ROWS)]  # `?limit=N` of the breakdowns and /prs


def identify(request: Request) -> Identity:
    """The caller's identity from its bearer token (or the dashboard's cookie); Throttled after repeated failures."""
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get("agentdash_token")
    if not token:
        raise Unauthenticated("missing Authorization: Bearer <token>")
    client, failures = client_address(request.client.host if request.client else None), request.app.state.failures
    wait = failures.retry_after(client)
    try:
        # A valid token passes even from a throttled address (others behind the same NAT may be guessing).
        return request.app.state.verifier.verify(token)
    except ProviderUnavailable:  # not the caller's fault: not counted against it
        raise
    except NotAuthorized:
        if wait:
            raise Throttled("too many invalid tokens from this address; try again later", wait) from None
        failures.failed(client)
        raise


def build_query(org_id: str, date_from: date | None, date_to: date | None, team_id: str | None = None,
                user_id: str | None = None, model: str | None = None, repo: str | None = None,
                agent: str | None = None) -> MetricsQuery:  # fmt: skip
    for name, day in (("from", date_from), ("to", date_to)):
        if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY:
            raise InvalidQuery(f"{name} must lie between {EARLIEST_DAY} and {LATEST_DAY}")
    to = date_to or date.today()
    start = date_from or to - timedelta(days=29)
    if start > to:
        raise InvalidQuery("from must not be after to")
    if (to - start).days >= MAX_RANGE_DAYS:
        raise InvalidQuery(f"a range covers at most {MAX_RANGE_DAYS} days")
    return MetricsQuery(
        org_id, start, to, team_id or None, user_id or None, model or None, repo or None, agent=agent or None
    )


def provide_query(
    request: Request,
    org_id: FromPath[str],
    date_from: Annotated[date | None, QueryParameter(name="from")] = None,
    date_to: Annotated[date | None, QueryParameter(name="to")] = None,
    team_id: FromQuery[str | None] = None,
    user_id: FromQuery[str | None] = None,
    model: FromQuery[str | None] = None,
    repo: FromQuery[str | None] = None,
    agent: FromQuery[str | None] = None,
) -> MetricsQuery:
    """The request's metrics query, already narrowed to what its identity may see, with the org's agent branch
    prefixes (a dependency)."""
    asked = build_query(org_id, date_from, date_to, team_id, user_id, model, repo, agent)
    query = scoped_query(identify(request), asked)
    return replace(query, branch_prefixes=request.app.state.attribution.of(org_id).branch_prefixes)


def checked_dimension(dimension: str) -> str:
    if dimension not in DIMENSIONS:
        raise InvalidQuery(f"dimension must be one of {', '.join(DIMENSIONS)}")
    return dimension
