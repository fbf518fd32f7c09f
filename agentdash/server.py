"""One process: ingest on the internal port, dashboard and read API on the client port, the projector job."""

from __future__ import annotations

import functools
import logging
import resource
import signal
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from agentdash.alerts.service import AlertService
from agentdash.auth import (
    code_flow_for,
    dev_secret,
    open_ingest_auth,
    open_webhook_auth,
    verifier_for,
)
from agentdash.config import Settings
from agentdash.ingest import create_ingest_app
from agentdash.monitoring import Monitor, Readiness, RequestMetrics
from agentdash.projector import Projector, ProjectorJob
from agentdash.sources import OrgAttribution, SourceKeeper, SourceStats, TranslatePool
from agentdash.storage import Storage, archive_expired, open_agent_rules, open_source_store, open_storage
from agentdash.web import (
    ASGIApp,
    BodyLimit,
    ClientPortApp,
    ConnectionLimits,
    LoopbackHostOnly,
    SecurityHeaders,
    create_read_api,
    protocol_with,
)

log = logging.getLogger("agentdash")


@dataclass
class Running:
    """Handles on a started server, for callers that do more than wait (the demo)."""

    settings: Settings
    storage: Storage
    projector: Projector
    secret: str | None  # the dev secret, for the demo's sign-in link; None outside dev mode
    stop: threading.Event

    @property
    def ingest_url(self) -> str:
        return f"http://{self.settings.ingest_host}:{self.settings.ingest_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"


def _server(app, host: str, port: int, settings: Settings) -> uvicorn.Server:
    # uvicorn by default believes X-Forwarded-For from loopback peers; we believe it only from named proxies.
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    limits = ConnectionLimits(settings.header_timeout, settings.body_timeout, settings.max_connections)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="auto",
                            proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None,
                            http=protocol_with(limits), timeout_keep_alive=settings.keep_alive_timeout)  # fmt: skip
    return uvicorn.Server(config)


def _allow_open_files(settings: Settings) -> None:
    """Raise the soft limit on open files so that both ports' connections fit; warn when the hard limit is lower."""
    needed = 2 * settings.max_connections + 256  # both ports, plus databases, logs and the projector's files
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        log.warning("open-file limit %d is below the %d that --max-connections %d needs on both ports; "
                    "raise it (ulimit -n) or lower --max-connections", target, needed, settings.max_connections)  # fmt: skip


# How the dashboard is made (agentdash.ui.create_dashboard's arguments): handed in by the caller, because importing
# NiceGUI and FastAPI is ~0.7 s of a start, which should not delay the ingest port (cli.serve imports it once that
# port answers).
DashboardFactory = Callable[..., ASGIApp]


@contextmanager
def running(settings: Settings, make_dashboard: Callable[[], DashboardFactory]):
    """Start everything, the ingest port first; on exit stop the servers, fold one last time and close the storage.

    `make_dashboard` is called once the ingest port answers, for the factory of the client port's dashboard."""
    _allow_open_files(settings)
    verifier = verifier_for(settings)  # first: a sign-in setup that cannot work stops us before anything opens
    code_flow = code_flow_for(settings, verifier)
    storage = open_storage(settings)
    alerts = AlertService(storage, settings)  # evaluated after every catch-up of the projector
    monitor = Monitor()  # this server's /metrics: both ports' requests, ingest, folds, and gauges read at scrape
    projector = Projector(storage, settings.fold_chunk, after_fold=alerts.evaluate, on_chunk=monitor.fold_observed)
    archive = functools.partial(archive_expired, storage, settings) if settings.retention_days > 0 else None
    job = ProjectorJob(projector, settings.projector_interval, archive)
    # What the agents send is counted in memory on the ingest path; the keeper moves it to the store.
    source_store = open_source_store(settings)
    source_stats = SourceStats()
    keeper = SourceKeeper(source_stats, source_store)
    secret = dev_secret(settings.secret_path) if settings.dev else None
    webhook_auth = open_webhook_auth(settings)  # GitHub deliveries, checked against the GitHub links
    attribution = OrgAttribution(open_agent_rules(settings))  # which PRs are agents': read by both ports
    readiness = Readiness(storage, projector, max_lag_s=settings.ready_max_lag,
                          max_idle_s=settings.ready_max_lag + settings.projector_interval)  # fmt: skip
    ingest_app = create_ingest_app(storage, projector, open_ingest_auth(settings), source_stats, webhook_auth,
                                   attribution, monitor, readiness,
                                   alert_deliveries=lambda: dict(alerts.notifier.outcomes),
                                   translate_pool=TranslatePool(settings.otlp_workers))  # fmt: skip
    ingest = _server(RequestMetrics(ingest_app, monitor, "ingest"), settings.ingest_host, settings.ingest_port,
                     settings)  # fmt: skip
    started: list[tuple[uvicorn.Server, threading.Thread]] = []
    job.start()
    keeper.start()
    alerts.start()
    try:
        # Servers run off the main thread so that the signal handlers below stay ours. One after the other: two
        # lifespans importing anyio's backend at once broke CPython 3.11's import machinery once in CI.
        _start(ingest, "ingest", started)
        read_api = create_read_api(storage, verifier, source_store=source_store, attribution=attribution,
                                   alert_store=alerts.store)  # fmt: skip
        dashboard = make_dashboard()(storage, projector, verifier, secret, code_flow, source_store, attribution,
                                     alerts.store)  # fmt: skip
        client_app: ASGIApp = SecurityHeaders(BodyLimit(ClientPortApp(read_api, dashboard)))
        if settings.dev:  # against DNS rebinding: the dev issuer must not answer a page served under another name
            client_app = LoopbackHostOnly(client_app)
        # Outermost: the body limit's 413s and the rebinding guard's refusals are requests too (route "unmatched").
        _start(_server(RequestMetrics(client_app, monitor, "dashboard"), settings.host, settings.port, settings),
               "dashboard", started)  # fmt: skip
        yield Running(settings, storage, projector, secret, threading.Event())
    finally:
        for server, _ in started:
            server.should_exit = True
        for _, thread in started:
            thread.join(timeout=10)
        job.stop()
        alerts.stop()  # after the last fold and its evaluation; what is not sent yet stays pending
        keeper.stop()  # after ingest has stopped: the last counts are stored too
        source_store.close()
        attribution.close()
        storage.close()


def _start(server: uvicorn.Server, name: str, started: list[tuple[uvicorn.Server, threading.Thread]]) -> None:
    """Run the server on a thread of its own and wait until it listens (SystemExit when it cannot)."""
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    started.append((server, thread))
    while not server.started:
        if not thread.is_alive():
            raise SystemExit(f"the {name} server could not start (is the port already in use?)")
        time.sleep(0.02)


def serve(settings: Settings, make_dashboard: Callable[[], DashboardFactory],
          after_start: Callable[[Running], None] | None = None) -> None:  # fmt: skip
    """Run until SIGINT or SIGTERM, then shut down cleanly."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with running(settings, make_dashboard) as server:
        server.stop = stop
        log.info("ingest on %s, dashboard on %s", server.ingest_url, server.dashboard_url)
        if after_start:
            after_start(server)
        while not stop.wait(0.5):
            pass
        log.info("shutting down")
