"""The read API (dashboard port): metrics and breakdowns per SPEC §4, behind a bearer JWT."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Annotated

from litestar import Litestar, Request, get
from litestar.di import NamedDependency, Provide
from litestar.datastructures import State
from litestar.exceptions import (
    HTTPException, NotAuthorizedException, NotFoundException, PermissionDeniedException, ServiceUnavailableException,
    TooManyRequestsException,
)  # fmt: skip
from litestar.openapi import OpenAPIConfig
from litestar.params import FromPath, FromQuery, QueryParameter

from agentdash.auth import Identity, NotAuthorized, ProviderUnavailable, TokenVerifier
from agentdash.ingest import error_body
from agentdash.metrics import DIMENSIONS, BreakdownRow, MetricsQuery, OrgMetrics, breakdown, org_metrics
from agentdash.ratelimit import FailureLimiter

MAX_RANGE_DAYS = 3 * 366
RowLimit = Annotated[int | None, QueryParameter(ge=1, le=10_000)]  # `?limit=N` of the breakdowns


def identify(request: Request) -> Identity:
    """The caller's identity from its bearer token (or the dashboard's cookie); 429 after repeated failures."""
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get("agentdash_token")
    if not token:
        raise NotAuthorizedException("missing Authorization: Bearer <token>")
    client, failures = request.client.host if request.client else "", request.app.state.failures
    if wait := failures.retry_after(client):
        raise TooManyRequestsException("too many invalid tokens from this address; try again later",
                                       headers={"Retry-After": str(wait)})  # fmt: skip
    try:
        return request.app.state.verifier.verify(token)
    except ProviderUnavailable as exc:  # not the caller's fault: not counted against it
        raise ServiceUnavailableException(str(exc), headers={"Retry-After": "10"}) from None
    except NotAuthorized as exc:
        failures.failed(client)
        raise NotAuthorizedException(str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None


def scoped_query(identity: Identity, query: MetricsQuery) -> MetricsQuery:
    """Narrow a query to what the identity may see; refuse what it may never see (SPEC §5).

    The one place roles are enforced: the read API, the CSV export and every dashboard page go through it.
    Another org answers 404 so that not even the org's existence leaks.
    """
    if identity.org_id != query.org_id:
        raise NotFoundException("no such organisation")
    if identity.role == "member":
        if query.user_id not in (None, identity.sub):
            raise PermissionDeniedException("members see only their own data")
        return replace(query, user_id=identity.sub, teams=None)
    if identity.role == "manager":
        if query.team_id is not None and query.team_id not in identity.teams:
            raise PermissionDeniedException(f"that team is not one of yours ({', '.join(identity.teams) or 'none'})")
        return replace(query, teams=identity.teams)
    if identity.role == "org_admin":
        return replace(query, teams=None)
    raise PermissionDeniedException(f"unknown role {identity.role!r}")


def build_query(org_id: str, date_from: date | None, date_to: date | None, team_id: str | None = None,
                user_id: str | None = None, model: str | None = None, repo: str | None = None) -> MetricsQuery:  # fmt: skip
    to = date_to or date.today()
    start = date_from or to - timedelta(days=29)
    if start > to:
        raise HTTPException(status_code=400, detail="from must not be after to")
    if (to - start).days >= MAX_RANGE_DAYS:
        raise HTTPException(status_code=400, detail=f"a range covers at most {MAX_RANGE_DAYS} days")
    return MetricsQuery(org_id, start, to, team_id or None, user_id or None, model or None, repo or None)


def provide_query(
    request: Request,
    org_id: FromPath[str],
    date_from: Annotated[date | None, QueryParameter(name="from")] = None,
    date_to: Annotated[date | None, QueryParameter(name="to")] = None,
    team_id: FromQuery[str | None] = None,
    user_id: FromQuery[str | None] = None,
    model: FromQuery[str | None] = None,
    repo: FromQuery[str | None] = None,
) -> MetricsQuery:
    """The request's metrics query, already narrowed to what its identity may see (a dependency)."""
    return scoped_query(identify(request), build_query(org_id, date_from, date_to, team_id, user_id, model, repo))


def checked_dimension(dimension: str) -> str:
    if dimension not in DIMENSIONS:
        raise HTTPException(status_code=400, detail=f"dimension must be one of {', '.join(DIMENSIONS)}")
    return dimension


@get("/api/v1/orgs/{org_id:str}/metrics", sync_to_thread=True, summary="Every metric of SPEC §3 and the daily series")
def get_metrics(state: State, metrics_query: NamedDependency[MetricsQuery]) -> OrgMetrics:
    return org_metrics(state.storage, metrics_query)


@get("/api/v1/orgs/{org_id:str}/breakdown/{dimension:str}", sync_to_thread=True, summary="Metrics per team, user, model or repo")
def get_breakdown(
    state: State, metrics_query: NamedDependency[MetricsQuery], dimension: FromPath[str], limit: RowLimit = None
) -> list[BreakdownRow]:
    return breakdown(state.storage, metrics_query, checked_dimension(dimension), limit)


def create_read_api(storage, verifier: TokenVerifier, failures: FailureLimiter | None = None) -> Litestar:
    from agentdash.export import CSV_ROUTES  # the CSV twins of the routes above

    return Litestar(
        route_handlers=[get_metrics, get_breakdown, *CSV_ROUTES],
        # In a worker thread: verifying a token may fetch the identity provider's keys (rarely, for up to seconds).
        dependencies={"metrics_query": Provide(provide_query, sync_to_thread=True)},
        state=State({"storage": storage, "verifier": verifier, "failures": failures or FailureLimiter()}),
        exception_handlers={Exception: error_body},
        openapi_config=OpenAPIConfig(title="agentdash read API", version="1", path="/api/schema"),
    )
