"""Start a built executable, send one event, read it back through the read API, stop it cleanly."""

import signal
import subprocess
import sys
import tempfile
import time

import httpx
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from agentdash.testing import free_port

executable = sys.argv[1]
with tempfile.TemporaryDirectory() as data_dir:
    port, ingest_port = free_port(), free_port()
    server = subprocess.Popen([executable, "serve", "--dev", "--data-dir", data_dir, "--port", str(port),
                               "--ingest-port", str(ingest_port)])  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{ingest_port}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the executable did not start") from None
                time.sleep(0.2)
        event = {"id": "smoke-1", "type": "session.started", "org_id": "smoke", "user_id": "u", "session_id": "s",
                 "occurred_at": "2026-01-01T12:00:00Z"}  # fmt: skip
        events_url = f"http://127.0.0.1:{ingest_port}/v1/events"
        assert httpx.post(events_url, json={"events": [event]}).status_code == 401  # ingest needs a key by default
        key = subprocess.run([executable, "ingest-key", "create", "--org", "smoke", "--data-dir", data_dir],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        answer = httpx.post(events_url, json={"events": [event]}, headers={"Authorization": f"Bearer {key}"})
        assert answer.json()["accepted"] == 1, answer.text
        # OTLP from an agent: the bundled opentelemetry-proto decodes it, the answer is a protobuf export response.
        export = ExportLogsServiceRequest()
        resource = export.resource_logs.add()
        resource.resource.attributes.add(key="service.name").value.string_value = "claude-code"
        resource.resource.attributes.add(key="user.email").value.string_value = "smoke@example.com"
        record = resource.scope_logs.add().log_records.add(time_unix_nano=1767268800_000_000_000)
        record.body.string_value = "claude_code.user_prompt"
        for name, value in (("event.name", "user_prompt"), ("session.id", "s-otlp"), ("prompt.id", "p-1")):
            record.attributes.add(key=name).value.string_value = value
        otlp = httpx.post(f"http://127.0.0.1:{ingest_port}/v1/logs", content=export.SerializeToString(),
                          headers={"Authorization": f"Bearer {key}", "content-type": "application/x-protobuf"})  # fmt: skip
        assert otlp.status_code == 200 and otlp.headers["content-type"] == "application/x-protobuf", otlp.content
        token = subprocess.run([executable, "token", "--org", "smoke", "--role", "org_admin", "--data-dir", data_dir],
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        while httpx.get(f"http://127.0.0.1:{ingest_port}/status").json()["lag_events"]:
            time.sleep(0.1)
        metrics = httpx.get(f"http://127.0.0.1:{port}/api/v1/orgs/smoke/metrics?from=2026-01-01&to=2026-01-01",
                            headers={"Authorization": f"Bearer {token}"}).json()  # fmt: skip
        assert metrics["sessions"] == 2 and metrics["runs"] == 1, metrics  # the JSON session and the agent's
        # Signed out, the dashboard sends people to sign in; the page itself comes from the bundled NiceGUI.
        assert "Sign in" in httpx.get(f"http://127.0.0.1:{port}/", follow_redirects=True).text
        dashboard = httpx.get(f"http://127.0.0.1:{port}/", cookies={"agentdash_token": token})
        assert dashboard.status_code == 200 and "agentdash" in dashboard.text
        # Self-monitoring from the bundled prometheus_client, and the offline schema page.
        scrape = httpx.get(f"http://127.0.0.1:{ingest_port}/metrics").text
        assert 'agentdash_events_accepted_total{source="events"}' in scrape, scrape[:2000]
        assert httpx.get(f"http://127.0.0.1:{ingest_port}/readyz").json()["ready"] is True
        assert "/v1/events" in httpx.get(f"http://127.0.0.1:{ingest_port}/schema").text
        # A large export goes to a spawned translate worker: in the executable, freeze_support must hand it over.
        large = ExportLogsServiceRequest()
        resource = large.resource_logs.add()
        resource.resource.attributes.add(key="service.name").value.string_value = "claude-code"
        resource.resource.attributes.add(key="user.email").value.string_value = "smoke@example.com"
        records = resource.scope_logs.add().log_records
        for i in range(400):
            record = records.add(time_unix_nano=1767268800_000_000_000 + i * 1_000_000)
            record.body.string_value = "claude_code.user_prompt"
            for name, value in (("event.name", "user_prompt"), ("session.id", "s-large"), ("prompt.id", f"p-{i}")):
                record.attributes.add(key=name).value.string_value = value
        before = httpx.get(f"http://127.0.0.1:{ingest_port}/status").json()["events_logged"]
        answer = httpx.post(f"http://127.0.0.1:{ingest_port}/v1/logs", content=large.SerializeToString(), timeout=60,
                            headers={"Authorization": f"Bearer {key}", "content-type": "application/x-protobuf"})  # fmt: skip
        assert answer.status_code == 200, answer.content
        after = httpx.get(f"http://127.0.0.1:{ingest_port}/status").json()["events_logged"]
        assert after - before == 800, (before, after)  # each prompt: a run and its message
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=30)
    assert code == 0, f"exit code {code}"
print("smoke test of", executable, "passed")
