"""Shared fixtures: a real agentdash server in a subprocess, on free ports, with its own data dir."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # so tests can `import reference_metrics`


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    """An `agentdash serve` subprocess and how to reach it."""

    data_dir: Path
    port: int
    ingest_port: int
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.ingest_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *extra: str, timeout: float = 30) -> ServerProcess:
        self.log_path = self.data_dir.parent / f"server-{self.ingest_port}.log"
        args = [sys.executable, "-m", "agentdash", "serve", "--data-dir", str(self.data_dir),
                "--port", str(self.port), "--ingest-port", str(self.ingest_port), *extra]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.ingest_url}/healthz", timeout=1).status_code == 200 and \
                        httpx.get(f"{self.url}/api/schema", timeout=1).status_code < 500:  # fmt: skip
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start in {timeout} s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no chance to flush or clean up
        self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def token(self, org: str, role: str = "org_admin", user: str = "tester", teams: str = "") -> str:
        out = subprocess.run(
            [sys.executable, "-m", "agentdash", "token", "--org", org, "--role", role, "--user", user,
             "--teams", teams, "--data-dir", str(self.data_dir)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return out.stdout.strip()

    def wait_projected(self, timeout: float = 60) -> dict:
        """Wait until every logged event is folded; returns the last /status."""
        deadline = time.monotonic() + timeout
        while True:
            status = httpx.get(f"{self.ingest_url}/status", timeout=5).json()
            if status["lag_events"] == 0:
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"projection still {status['lag_events']} events behind")
            time.sleep(0.1)


@pytest.fixture
def server_factory(tmp_path):
    """Make servers on demand (a test may restart one on the same data dir); all are stopped at the end."""
    started: list[ServerProcess] = []

    def make(data_dir: Path | None = None, *extra: str) -> ServerProcess:
        server = ServerProcess(data_dir or tmp_path / "data", free_port(), free_port())
        started.append(server.start(*extra))
        return server

    yield make
    for server in started:
        if server.process and server.process.poll() is None:
            server.stop()


@pytest.fixture
def server(server_factory) -> ServerProcess:
    return server_factory()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # Talk to loopback directly even where a proxy is configured.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    os.environ.setdefault("no_proxy", "127.0.0.1,localhost")
