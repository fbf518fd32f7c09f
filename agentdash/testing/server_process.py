"""A real `agentdash serve` subprocess on free ports, for tests, benchmarks and smoke checks."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# The orgs the tests and benchmarks write by default; a test writing others declares them (ingest_orgs).
DEFAULT_INGEST_ORGS = ("demo", "acme", "globex")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    """An `agentdash serve` subprocess with its own data dir, and how to reach it."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    ingest_port: int = field(default_factory=free_port)
    command: tuple[str, ...] = (sys.executable, "-m", "agentdash")
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    dev: bool = True  # sign in with `agentdash token`'s dev-secret tokens; False to test real identity providers
    ingest_orgs: tuple[str, ...] = DEFAULT_INGEST_ORGS  # what `ingest_key` may write
    ingest_key: str = ""  # created through the real CLI once the server is up
    database_url: str = ""  # postgresql://...: the Postgres backend (the CLI commands get it too)

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.ingest_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *extra: str, timeout: float = 60) -> ServerProcess:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"server-{self.ingest_port}.log"
        args = [*self.command, "serve", "--data-dir", str(self.data_dir), "--port", str(self.port),
                "--ingest-port", str(self.ingest_port), *(["--dev"] if self.dev else []), *self._backend(), *extra]  # fmt: skip
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.ingest_url}/healthz", timeout=1, trust_env=False).status_code == 200 and \
                        httpx.get(f"{self.url}/api/schema", timeout=1, trust_env=False).status_code < 500:  # fmt: skip
                    self.ingest_key = self.create_ingest_key(*self.ingest_orgs, name="tests")
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start in {timeout} s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Signal the server and wait for its exit code; kill it if it hangs."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no chance to flush or clean up
        self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def status(self) -> dict:
        return httpx.get(f"{self.ingest_url}/status", timeout=10, trust_env=False).json()

    def token(self, org: str, role: str = "org_admin", user: str = "tester", teams: str = "") -> str:
        out = subprocess.run(
            [*self.command, "token", "--org", org, "--role", role, "--user", user, "--teams", teams,
             "--data-dir", str(self.data_dir)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return out.stdout.strip()

    def org_metrics(self, org: str, first: object, last: object) -> dict:
        """GET the org's metrics for days [first, last] as its admin; raises with the answer unless it is a 200."""
        response = httpx.get(f"{self.url}/api/v1/orgs/{org}/metrics", params={"from": str(first), "to": str(last)},
                             headers={"authorization": f"Bearer {self.token(org)}"}, timeout=30, trust_env=False)  # fmt: skip
        if response.status_code != 200:
            raise RuntimeError(f"metrics answered {response.status_code}: {response.text}")
        return response.json()

    @property
    def ingest_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.ingest_key}"}

    def create_ingest_key(self, *orgs: str, name: str = "tests") -> str:
        """A new ingest key for `orgs`, made by `agentdash ingest-key create` on this data dir."""
        return self.cli("ingest-key", "create", *(arg for org in orgs for arg in ("--org", org)), "--name", name)

    def cli(self, *args: str) -> str:
        """Run an `agentdash` command on this data dir; its stdout, stripped. A failure shows its stderr."""
        done = subprocess.run([*self.command, *args, "--data-dir", str(self.data_dir), *self._backend()],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"agentdash {' '.join(args)} exited with {done.returncode}:\n{done.stderr}")
        return done.stdout.strip()

    def _backend(self) -> list[str]:
        return ["--database-url", self.database_url] if self.database_url else []

    def wait_projected(self, timeout: float = 60, on_progress: Callable[[dict], None] | None = None) -> dict:
        """Wait until every logged event is folded; returns the last /status."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if on_progress:
                on_progress(status)
            if status["lag_events"] == 0:
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"projection still {status['lag_events']} events behind after {timeout} s")
            time.sleep(0.1)
