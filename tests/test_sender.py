"""Tests of the sender (`agentdash.demo.sender`): retries against a scripted server, then a real one."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from agentdash.demo import GeneratorConfig, SendError, generate, send

SMALL = GeneratorConfig(days=60, scale=0.2, end=dt.date(2025, 6, 30))


class FakeIngest(BaseHTTPRequestHandler):
    """Answers like the ingest port; `script` lists status codes to give before the 200s."""

    script: list[int] = []
    received: list[dict] = []
    auth: list[str | None] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        FakeIngest.auth.append(self.headers.get("authorization"))
        status = FakeIngest.script.pop(0) if FakeIngest.script else 200
        if status == 200:
            FakeIngest.received.extend(body["events"])
            rejected = [
                {"index": i, "id": e["id"], "error": "no"}
                for i, e in enumerate(body["events"])
                if e["id"].startswith("bad-")  # generated ids are UUIDs, which may start with "bad"
            ]
            answer = {"accepted": len(body["events"]) - len(rejected), "duplicates": 0, "rejected": rejected}
        else:
            answer = {"error": f"status {status}"}
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def ingest_url():
    FakeIngest.script, FakeIngest.received, FakeIngest.auth = [], [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeIngest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/events"
    server.shutdown()
    server.server_close()


def test_send_batches_retries_busy_answers_and_reports(ingest_url):
    events = generate(GeneratorConfig(days=5, scale=0.1, end=dt.date(2025, 3, 7)))[:450]
    events[3] = {**events[3], "id": "bad-1"}
    FakeIngest.script = [503, 429]
    seen = []
    stats = send(ingest_url, events, batch_size=100, concurrency=2, token="t0k", progress=seen.append)
    assert sorted(e["id"] for e in FakeIngest.received) == sorted(e["id"] for e in events)
    assert (stats.accepted, stats.rejected, stats.batches, stats.retries) == (449, 1, 5, 2)
    assert stats.rejections[0]["id"] == "bad-1"
    assert sorted(seen) == [50, 100, 100, 100, 100]
    assert set(FakeIngest.auth) == {"Bearer t0k"}
    assert stats.seconds > 0


def test_send_stops_on_an_answer_that_retrying_cannot_fix(ingest_url):
    events = generate(GeneratorConfig(days=3, scale=0.1, end=dt.date(2025, 3, 7)))[:50]
    FakeIngest.script = [400]
    with pytest.raises(SendError) as caught:
        send(ingest_url, events, batch_size=10, concurrency=1)
    assert caught.value.status_code == 400
    assert len(FakeIngest.auth) == 1  # not retried, and nothing more sent


def test_send_gives_up_when_the_server_is_unreachable():
    with pytest.raises(SendError, match="gave up after 2 attempts"):
        send("http://127.0.0.1:9/v1/events", [{"id": "x"}], max_attempts=2, timeout=1)


def test_send_to_a_real_server_then_resend_is_all_duplicates(server):
    events = generate(GeneratorConfig(days=5, scale=0.3, end=dt.date(2026, 3, 6)))
    url = f"{server.ingest_url}/v1/events"
    first = send(url, events, batch_size=250, token=server.ingest_key)
    assert first.accepted == len(events) and first.duplicates == 0 and first.rejected == 0
    again = send(url, events[:1000], batch_size=500, token=server.ingest_key)
    assert again.accepted == 0 and again.duplicates == 1000
    assert httpx.get(f"{server.ingest_url}/status").json()["events_logged"] == len(events)
