"""GET /metrics (Prometheus text format) and GET /readyz on the ingest port; both open, like /healthz and /status:
they are operational and show no org's data."""

from __future__ import annotations

from litestar import Response, get
from litestar.datastructures import State

from agentdash.monitoring import Monitor, Readiness, ReadinessReport

# The classic text format every Prometheus reads (Litestar adds the charset); generate_latest writes it.
TEXT_FORMAT = "text/plain; version=0.0.4"


@get("/metrics", summary="Prometheus metrics of this server (text format)", sync_to_thread=True)
def metrics(state: State) -> Response[bytes]:
    """Scraped values read the log and the projector's checkpoint: off the event loop."""
    monitor: Monitor = state.monitor
    return Response(monitor.exposition(), media_type=TEXT_FORMAT, headers={"cache-control": "no-store"})


@get("/readyz", summary="Readiness: storage reachable, projector running, fold lag under --ready-max-lag",
     sync_to_thread=True)  # fmt: skip
def readyz(state: State) -> Response[ReadinessReport]:
    """200 when every check passes, else 503 naming each failed check in `reasons`."""
    readiness: Readiness = state.readiness
    report = readiness.check()
    return Response(report, status_code=200 if report.ready else 503, headers={"cache-control": "no-store"})


MONITORING_ROUTES = [metrics, readyz]
