"""Self-monitoring (issue 13, item 4): /metrics in the Prometheus text format and /readyz, over real HTTP, on both
backends."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from support import Backend

from agentdash.auth import IngestAuth, LinkedSecrets, WebhookAuth
from agentdash.config import Settings, load_settings
from agentdash.ingest import create_ingest_app
from agentdash.monitoring import Readiness
from agentdash.projector import Projector, ProjectorJob
from agentdash.sources import SourceStats
from agentdash.storage import LoggedEvent, LogPosition, Storage, Unavailable, open_github_links
from agentdash.storage.embedded.storage import EmbeddedStorage
from agentdash.testing import ServerProcess, free_port
from tests.otlp_captures import capture

pytestmark = pytest.mark.slow

GRAFANA = Path(__file__).parent.parent / "packaging" / "grafana-agentdash.json"
SUFFIXES = ("", "_total", "_bucket", "_count", "_sum")  # a family's samples (a counter's family drops _total)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: ServerProcess) -> Samples:
    answer = httpx.get(f"{server.ingest_url}/metrics", timeout=30)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}  # fmt: skip


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def event(id_: str, org: str = "acme", **extra: object) -> dict:
    return {"id": id_, "type": "message.sent", "org_id": org, "user_id": "u1", "session_id": "s1",
            "occurred_at": "2026-11-30T10:00:00Z", **extra}  # fmt: skip


def post(server: ServerProcess, events: list[dict]) -> dict:
    answer = httpx.post(f"{server.ingest_url}/v1/events", json={"events": events}, headers=server.ingest_headers,
                        timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture
def served(backend: Backend):
    """A full server on the backend (the data dir holds only the dev secret on PostgreSQL)."""
    server = ServerProcess(backend.data_dir, database_url=backend.database_url)
    yield server.start()
    server.stop()


def test_counters_move_by_exactly_what_was_sent(served: ServerProcess):
    before = scrape(served)
    a, b = uuid.uuid4().hex, uuid.uuid4().hex
    first = post(served, [event(a), event(b), event(a), event("x", org="elsewhere"), {"id": "y", "org_id": "acme"}])
    assert (first["accepted"], first["duplicates"], len(first["rejected"])) == (2, 1, 2)
    assert post(served, [event(b)])["duplicates"] == 1
    after = scrape(served)
    delta = {name: value(after, name, **labels) - value(before, name, **labels)
             for name, labels in [("agentdash_events_accepted_total", {"source": "events"}),
                                  ("agentdash_events_duplicate_total", {"source": "events"})]}  # fmt: skip
    assert delta == {"agentdash_events_accepted_total": 2, "agentdash_events_duplicate_total": 2}
    rejected = {dict(labels)["reason"]: n for (name, labels), n in after.items()
                if name == "agentdash_events_rejected_total" and dict(labels)["source"] == "events"}  # fmt: skip
    assert rejected == {"org_not_allowed": 1, "missing_field": 1}
    posts = {"port": "ingest", "method": "POST", "route": "/v1/events", "status": "200"}
    assert value(after, "agentdash_http_request_duration_seconds_count", **posts) == 2
    assert value(after, "agentdash_http_request_duration_seconds_bucket", **posts, le="+Inf") == 2
    assert value(before, "agentdash_http_request_duration_seconds_count", **posts) == 0


def test_the_latency_histogram_is_labelled_by_route_template_not_by_path(served: ServerProcess):
    token = served.token("acme")
    for org in ("acme", "globex"):  # another org: 404, still one route
        httpx.get(f"{served.url}/api/v1/orgs/{org}/metrics", headers={"authorization": f"Bearer {token}"}, timeout=30)
    httpx.get(f"{served.url}/no/such/{uuid.uuid4().hex}", timeout=30)
    samples = scrape(served)
    routes = {dict(labels)["route"] for name, labels in samples if name.startswith("agentdash_http_request")}
    template = "/api/v1/orgs/{org_id}/metrics"
    labels = {"port": "dashboard", "method": "GET", "route": template}
    assert value(samples, "agentdash_http_request_duration_seconds_count", **labels, status="200") == 1
    assert value(samples, "agentdash_http_request_duration_seconds_count", **labels, status="404") == 1
    assert "unmatched" in routes and not any("acme" in r or "globex" in r or "/no/such" in r for r in routes)


def test_log_fold_and_dedupe_gauges_follow_the_log(served: ServerProcess):
    post(served, [event(uuid.uuid4().hex) for _ in range(3)])
    served.wait_projected()
    samples = scrape(served)
    assert value(samples, "agentdash_storage_up") == 1
    assert value(samples, "agentdash_log_events") == 3
    assert value(samples, "agentdash_dedupe_index_entries") == 3
    assert value(samples, "agentdash_log_bytes") > 0 and value(samples, "agentdash_dedupe_index_bytes") > 0
    assert value(samples, "agentdash_fold_lag_events") == 0
    assert value(samples, "agentdash_fold_duration_seconds_count") >= 1
    assert value(samples, "agentdash_alert_deliveries_total", outcome="delivered") == 0
    assert value(samples, "agentdash_dead_letters") == 0 and ("agentdash_dead_letters", ()) in samples
    ready = httpx.get(f"{served.ingest_url}/readyz", timeout=30)
    assert ready.status_code == 200 and ready.json()["ready"] is True and ready.json()["reasons"] == []


def test_otlp_records_are_counted_by_agent_as_status_counts_them(server: ServerProcess):
    key = server.create_ingest_key("acme", name="otlp")
    for export in capture("gemini", "one_prompt"):  # with an API key Gemini CLI names no user: rejections too
        answer = httpx.post(f"{server.ingest_url}/v1/{export['signal']}", content=json.dumps(export["body"]),
                            headers={"content-type": "application/json", "authorization": f"Bearer {key}"},
                            timeout=30)  # fmt: skip
        assert answer.status_code == 200, answer.text
    per_agent: dict[tuple[str, str], int] = {}
    for count in server.status()["otlp_records"]:
        for outcome in ("mapped", "ignored", "rejected"):
            per_agent[(count["agent"], outcome)] = per_agent.get((count["agent"], outcome), 0) + count[outcome]
    samples = scrape(server)
    shown = {(dict(labels)["agent"], dict(labels)["outcome"]): n for (name, labels), n in samples.items()
             if name == "agentdash_otlp_records_total"}  # fmt: skip
    assert shown == per_agent and shown[("gemini-cli", "rejected")] > 0
    assert value(samples, "agentdash_events_rejected_total", source="otlp", reason="missing_field") == \
        shown[("gemini-cli", "rejected")]  # fmt: skip


def test_the_grafana_dashboard_shows_only_series_the_server_exports(server: ServerProcess):
    dashboard = json.loads(GRAFANA.read_text())
    queried = set(re.findall(r"agentdash_[a-z_]+", json.dumps([p.get("targets", []) for p in dashboard["panels"]])))
    text = httpx.get(f"{server.ingest_url}/metrics", timeout=30).text
    exported = {f.name + suffix for f in text_string_to_metric_families(text) for suffix in SUFFIXES}
    assert queried and queried <= exported, queried - exported


def test_readyz_is_503_naming_the_lag_when_the_fold_falls_behind(backend: Backend):
    # An hour between folds: what is sent now stays unfolded, and the lag passes the one-second bound.
    server = ServerProcess(backend.data_dir, database_url=backend.database_url)
    server.start("--projector-interval", "3600", "--ready-max-lag", "1")
    try:
        assert httpx.get(f"{server.ingest_url}/readyz", timeout=30).status_code == 200
        post(server, [event(uuid.uuid4().hex), event(uuid.uuid4().hex)])
        deadline = time.monotonic() + 20
        while (answer := httpx.get(f"{server.ingest_url}/readyz", timeout=30)).status_code == 200:
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.2)
        assert answer.status_code == 503
        body = answer.json()
        assert body["ready"] is False and body["lag_events"] == 2
        assert len(body["reasons"]) == 1 and body["reasons"][0].startswith("fold lag")
        assert "--ready-max-lag" in body["reasons"][0]
        assert httpx.get(f"{server.ingest_url}/healthz", timeout=30).status_code == 200  # liveness is not readiness
    finally:
        server.stop()


class IngestOnly:
    """The ingest app alone in this process, on a free port, with a projector job the test can stop."""

    def __init__(
        self, backend: Backend, tmp_path: Path, max_idle_s: float = 60.0, storage: Storage | None = None
    ) -> None:
        self.storage = storage or backend.open()
        self.projector = Projector(self.storage)
        self.job = ProjectorJob(self.projector, 0.1)
        self.job_running = False
        self.links = open_github_links(Settings(data_dir=tmp_path / "links", database_url=backend.database_url))
        app = create_ingest_app(self.storage, self.projector, IngestAuth(None), SourceStats(),
                                WebhookAuth(LinkedSecrets(self.links)),
                                readiness=Readiness(self.storage, self.projector, 60, max_idle_s))  # fmt: skip
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> IngestOnly:
        self.job.start()
        self.job_running = True
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return self

    def stop_projector(self) -> None:
        self.job.stop()
        self.job_running = False

    def __exit__(self, *_: object) -> None:
        if self.job_running:
            self.stop_projector()
        self.server.should_exit = True
        self.thread.join(10)
        self.links.close()
        self.storage.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def readyz(self) -> httpx.Response:
        return httpx.get(f"{self.url}/readyz", timeout=30, trust_env=False)


def test_readyz_is_503_naming_the_projector_when_its_job_stops(backend: Backend, tmp_path):
    with IngestOnly(backend, tmp_path, max_idle_s=1.0) as ingest:
        time.sleep(0.3)
        assert ingest.readyz().status_code == 200
        ingest.stop_projector()
        time.sleep(1.2)
        answer = ingest.readyz()
        assert answer.status_code == 503, answer.text
        (reason,) = answer.json()["reasons"]
        assert reason.startswith("projector not running")


def poisoned_storage(backend: Backend, poisoned: set[str]) -> Storage:
    """The backend's storage whose folds fail on the events with these ids (the backends' `poison` test hook)."""

    def poison(entry: LoggedEvent) -> bool:
        return entry.event.id in poisoned

    if backend.name == "postgres":  # imported here: psycopg is optional
        from agentdash.storage.postgres.storage import PostgresStorage

        return PostgresStorage(backend.database_url, poison=poison)
    return EmbeddedStorage(load_settings(data_dir=backend.data_dir), poison=poison)


def test_the_dead_letter_gauge_reads_the_storage(backend: Backend, tmp_path):
    storage = poisoned_storage(backend, {"bad"})
    with IngestOnly(backend, tmp_path, storage=storage) as ingest:  # no ingest key: IngestAuth(None)
        events = [event("good"), event("bad"), event("fine")]
        assert httpx.post(f"{ingest.url}/v1/events", json={"events": events}, timeout=30).status_code == 200
        deadline = time.monotonic() + 30
        while ingest.projector.status().lag_events:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        text = httpx.get(f"{ingest.url}/metrics", timeout=30).text
    samples = {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples["agentdash_dead_letters"] == 1 and samples["agentdash_log_events"] == 3


class AwayStorage:
    """A storage whose database cannot be reached."""

    def log_position(self, after_seq: int = 0) -> LogPosition:
        raise Unavailable("connection refused")

    def fold_state(self):
        raise Unavailable("connection refused")


def test_an_unreachable_storage_is_not_ready():
    storage = AwayStorage()
    report = Readiness(storage, Projector(storage)).check()  # type: ignore[arg-type]
    assert not report.ready and report.reasons == ["storage unreachable: connection refused"]
