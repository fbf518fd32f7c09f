"""The ingest app: its routes, state and OpenAPI schema, plus the operational /healthz and /status."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import msgspec
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from agentdash.auth import IngestAuth, WebhookAuth
from agentdash.events import MAX_BODY_BYTES
from agentdash.ingest.events_api import post_events
from agentdash.ingest.github_webhook import DeliveryCount, DeliveryCounts, github_webhook
from agentdash.ingest.monitoring_api import MONITORING_ROUTES
from agentdash.ingest.otlp_api import otlp_router
from agentdash.monitoring import Monitor, Readiness, Watched, WatchedState
from agentdash.projector import Projector
from agentdash.sources import OrgAttribution, SourceStats, TranslatePool
from agentdash.storage import SourceCount, Storage
from agentdash.web import EXCEPTION_HANDLERS, offline_openapi


class StatusReport(msgspec.Struct):
    events_logged: int
    events_projected: int
    lag_events: int
    lag_seconds: float
    last_fold_at: datetime | None
    otlp_records: list[SourceCount]  # since this process started, per agent and record name
    github_deliveries: list[DeliveryCount]  # since this process started, per event and outcome
    dead_letters: int = 0  # log entries the fold failed on, set aside until retried (agentdash dlq)


@get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/status", summary="Event log and projection progress", sync_to_thread=True)
def status(state: State) -> StatusReport:
    projector: Projector = state.projector
    s = projector.status()
    last = datetime.fromtimestamp(s.last_fold_at_us / 1e6, tz=UTC) if s.last_fold_at_us else None
    sources: SourceStats = state.source_stats
    github: DeliveryCounts = state.github_deliveries
    storage: Storage = state.storage
    return StatusReport(s.events_logged, s.events_projected, s.lag_events, s.lag_seconds, last, sources.report(),
                        github.report(), dead_letters=storage.dead_letters.count())  # fmt: skip


def create_ingest_app(storage: Storage, projector: Projector, auth: IngestAuth, source_stats: SourceStats,
                      webhook_auth: WebhookAuth, attribution: OrgAttribution | None = None,
                      monitor: Monitor | None = None, readiness: Readiness | None = None,
                      alert_deliveries: Callable[[], Mapping[str, int]] | None = None,
                      translate_pool: TranslatePool | None = None) -> Litestar:  # fmt: skip
    """`source_stats` counts what the agents send; the server's source keeper drains it into the source store.
    `webhook_auth` checks GitHub deliveries against the GitHub links; `attribution` finds their agent marks.
    `monitor` (default: a new one) serves /metrics, with the notifier's `alert_deliveries` when given; `readiness`
    (default: the default bounds) answers /readyz; `translate_pool` decodes large OTLP exports (default: all in this
    process)."""
    translate_pool = translate_pool or TranslatePool(0)
    key_scheme = SecurityScheme(
        type="http", scheme="bearer", description="an ingest key: agentdash ingest-key create --org ORG"
    )
    monitor = monitor or Monitor()
    deliveries = DeliveryCounts()
    monitor.watch(Watched(WatchedState(storage, projector, source_stats, monitor.events, deliveries.report,
                                       alert_deliveries)))  # fmt: skip
    shared = {"storage": storage, "projector": projector, "ingest_auth": auth, "source_stats": source_stats,
              "webhook_auth": webhook_auth, "github_deliveries": deliveries,
              "attribution": attribution or OrgAttribution(None), "monitor": monitor,
              "readiness": readiness or Readiness(storage, projector), "translate_pool": translate_pool}  # fmt: skip
    return Litestar(
        route_handlers=[post_events, otlp_router, github_webhook, healthz, status, *MONITORING_ROUTES],
        state=State(shared),
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="agentdash ingest",
            version="1",
            path="/schema",
            components=Components(security_schemes={"ingestKey": key_scheme}),
            render_plugins=offline_openapi(),
        ),
        request_max_body_size=MAX_BODY_BYTES + 1,
        on_shutdown=[auth.close, webhook_auth.close, translate_pool.close],
    )
