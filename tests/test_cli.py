"""The `agentdash` command end to end: demo, rebuild, token, version."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import httpx

from agentdash import __version__
from agentdash.testing import free_port


def agentdash(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agentdash", *args], capture_output=True, text=True, timeout=120, **kwargs
    )


def test_version():
    assert agentdash("--version").stdout.strip().endswith(__version__)


def test_demo_fills_serves_and_signs_the_visitor_in(tmp_path):
    port, ingest_port = free_port(), free_port()
    args = [sys.executable, "-m", "agentdash", "demo", "--days", "4", "--data-dir", str(tmp_path / "demo"),
            "--port", str(port), "--ingest-port", str(ingest_port)]  # fmt: skip
    demo = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        link = None
        deadline = time.monotonic() + 90
        while link is None and time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line and demo.poll() is not None:
                raise AssertionError(f"demo exited early: {demo.stderr.read()}")
            if match := re.search(r"(http://127\.0\.0\.1:\d+/login\?token=\S+)", line):
                link = match.group(1)
        assert link, "the demo never printed its sign-in link"
        status = httpx.get(f"http://127.0.0.1:{ingest_port}/status").json()
        assert status["events_logged"] > 1000 and status["lag_events"] == 0  # ready means projected
        signed_in = httpx.get(link, follow_redirects=False)
        assert signed_in.status_code == 303 and "agentdash_token" in signed_in.headers["set-cookie"]
        assert "httponly" in signed_in.headers["set-cookie"].lower()
        token = link.split("token=")[1]
        metrics = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/orgs/demo/metrics", headers={"Authorization": f"Bearer {token}"}
        )
        assert metrics.json()["runs"] > 0
        agents: set[str] = set()
        for _ in range(50):  # the source counts reach their store every 2 s
            sources = httpx.get(f"http://127.0.0.1:{port}/api/v1/orgs/demo/sources",
                                headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            agents = {a["agent"] for a in sources.json()["agents"]}
            if len(agents) == 3:
                break
            time.sleep(0.2)
        assert agents == {"claude-code", "gemini-cli", "codex_exec"}
    finally:
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=30) == 0
    assert "Traceback" not in demo.stderr.read()


def test_rebuild_gives_the_same_numbers_as_the_incremental_path(server_factory, tmp_path):
    import datetime as dt

    from agentdash.demo.generator import GeneratorConfig, generate
    from agentdash.demo.sender import send

    server = server_factory()
    send(f"{server.ingest_url}/v1/events", generate(GeneratorConfig(days=10, scale=0.2, end=dt.date(2026, 5, 10))),
         token=server.ingest_key)  # fmt: skip
    server.wait_projected()
    token = server.token("demo")
    url = f"{server.url}/api/v1/orgs/demo/metrics?from=2026-05-01&to=2026-05-10"
    before = httpx.get(url, headers={"Authorization": f"Bearer {token}"}).json()
    assert before["runs"] > 0

    busy = agentdash("rebuild", "--data-dir", str(server.data_dir))
    assert busy.returncode != 0 and "server running" in busy.stderr  # the running server holds the files
    assert server.stop() == 0
    rebuilt = agentdash("rebuild", "--data-dir", str(server.data_dir))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert f"from {before_logged(server)} events" in rebuilt.stdout

    again = server_factory(server.data_dir)
    after = httpx.get(url.replace(server.url, again.url), headers={"Authorization": f"Bearer {token}"}).json()
    assert after == before


def before_logged(server) -> int:
    import sqlite3

    with sqlite3.connect(server.data_dir / "events.sqlite") as db:
        return db.execute("SELECT count(*) FROM events").fetchone()[0]


def test_token_rejects_an_unknown_role(tmp_path):
    result = agentdash("token", "--org", "o", "--role", "owner", "--data-dir", str(tmp_path))
    assert result.returncode != 0 and "owner" in result.stderr


def test_a_second_server_on_the_same_data_dir_is_a_clear_error(server):
    second = agentdash("serve", "--dev", "--data-dir", str(server.data_dir), "--port", str(free_port()),
                       "--ingest-port", str(free_port()))  # fmt: skip
    assert second.returncode != 0
    assert "in use by another agentdash process" in second.stderr and "Traceback" not in second.stderr
    assert httpx.get(f"{server.ingest_url}/healthz").status_code == 200  # the first one is unharmed


def test_the_data_dir_and_its_databases_are_private(server):
    """Every org's events are in there: no other local user may read them."""
    import stat

    assert stat.S_IMODE(server.data_dir.stat().st_mode) == 0o700
    for name in ("events.sqlite", "read_models.duckdb"):
        assert stat.S_IMODE((server.data_dir / name).stat().st_mode) == 0o600, name
