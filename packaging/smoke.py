"""Start a built executable, send one event, read it back through the read API, stop it cleanly."""

import signal
import subprocess
import sys
import tempfile
import time

import httpx

from agentdash.testing import free_port

executable = sys.argv[1]
with tempfile.TemporaryDirectory() as data_dir:
    port, ingest_port = free_port(), free_port()
    server = subprocess.Popen([executable, "serve", "--data-dir", data_dir, "--port", str(port), "--ingest-port", str(ingest_port)])
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{ingest_port}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the executable did not start")
                time.sleep(0.2)
        event = {"id": "smoke-1", "type": "session.started", "org_id": "smoke", "user_id": "u", "session_id": "s",
                 "occurred_at": "2026-01-01T12:00:00Z"}  # fmt: skip
        assert httpx.post(f"http://127.0.0.1:{ingest_port}/v1/events", json={"events": [event]}).json()["accepted"] == 1
        token = subprocess.run([executable, "token", "--org", "smoke", "--role", "org_admin", "--data-dir", data_dir],
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        while httpx.get(f"http://127.0.0.1:{ingest_port}/status").json()["lag_events"]:
            time.sleep(0.1)
        metrics = httpx.get(f"http://127.0.0.1:{port}/api/v1/orgs/smoke/metrics?from=2026-01-01&to=2026-01-01",
                            headers={"Authorization": f"Bearer {token}"}).json()  # fmt: skip
        assert metrics["sessions"] == 1, metrics
        assert "agentdash" in httpx.get(f"http://127.0.0.1:{port}/").text
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=30)
    assert code == 0, f"exit code {code}"
print("smoke test of", executable, "passed")
