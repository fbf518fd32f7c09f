"""The read API (client port): metrics and breakdowns per SPEC §4, JSON and CSV, behind a bearer JWT."""

from __future__ import annotations

from litestar import Litestar, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi import OpenAPIConfig
from litestar.params import FromPath

from agentdash.auth import FailureLimiter, TokenVerifier
from agentdash.metrics import (
    PR_LIMIT,
    AgentPrs,
    BreakdownRow,
    MetricsQuery,
    OrgMetrics,
    agent_prs,
    breakdown,
    org_metrics,
)
from agentdash.sources import OrgAttribution
from agentdash.storage import AlertStore, SourceStore, Storage
from agentdash.web.alerts_api import ALERT_ROUTES
from agentdash.web.csv_export import CSV_ROUTES
from agentdash.web.dependencies import RowLimit, checked_dimension, provide_query
from agentdash.web.errors import EXCEPTION_HANDLERS
from agentdash.web.schema_page import offline_openapi
from agentdash.web.sources_api import SOURCES_ROUTES


@get("/api/v1/orgs/{org_id:str}/metrics", sync_to_thread=True, summary="Every metric of SPEC §3 and the daily series")
def get_metrics(state: State, metrics_query: NamedDependency[MetricsQuery]) -> OrgMetrics:
    return org_metrics(state.storage, metrics_query)


@get(
    "/api/v1/orgs/{org_id:str}/breakdown/{dimension:str}",
    sync_to_thread=True,
    summary="Metrics per team, user, model, repo or agent",
)
def get_breakdown(
    state: State, metrics_query: NamedDependency[MetricsQuery], dimension: FromPath[str], limit: RowLimit = None
) -> list[BreakdownRow]:
    return breakdown(state.storage, metrics_query, checked_dimension(dimension), limit)


@get(
    "/api/v1/orgs/{org_id:str}/prs",
    sync_to_thread=True,
    summary="Agent pull requests with a fact in range, newest first, with their runs' cost, failures and handoffs",
)
def get_prs(state: State, metrics_query: NamedDependency[MetricsQuery], limit: RowLimit = None) -> AgentPrs:
    return agent_prs(state.storage, metrics_query, limit or PR_LIMIT)


def create_read_api(storage: Storage, verifier: TokenVerifier, failures: FailureLimiter | None = None,
                    source_store: SourceStore | None = None, attribution: OrgAttribution | None = None,
                    alert_store: AlertStore | None = None) -> Litestar:  # fmt: skip
    return Litestar(
        route_handlers=[get_metrics, get_breakdown, get_prs, *CSV_ROUTES, *SOURCES_ROUTES, *ALERT_ROUTES],
        # In a worker thread: verifying a token may fetch the identity provider's keys (rarely, for up to seconds).
        dependencies={"metrics_query": Provide(provide_query, sync_to_thread=True)},
        state=State(
            {
                "storage": storage,
                "verifier": verifier,
                "failures": failures or FailureLimiter(),
                "source_store": source_store,
                "alert_store": alert_store,
                "attribution": attribution or OrgAttribution(None),
            }
        ),
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="agentdash read API", version="1", path="/api/schema", render_plugins=offline_openapi()
        ),
    )
