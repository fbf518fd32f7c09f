"""Shared fixtures: a real agentdash server in a subprocess, on free ports, with its own data dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from agentdash.testing import DEFAULT_INGEST_ORGS, ServerProcess, free_port

__all__ = ["ServerProcess", "free_port"]

sys.path.insert(0, str(Path(__file__).parent))  # so tests can `import reference_metrics`

from postgres_server import module_postgres_url, postgres_cluster, postgres_url  # noqa: E402,F401  (fixtures)


@pytest.fixture
def ingest_orgs() -> tuple[str, ...]:
    """The orgs each server's `ingest_key` may write; a test module that writes others overrides this fixture."""
    return DEFAULT_INGEST_ORGS


@pytest.fixture
def server_factory(tmp_path, ingest_orgs):
    """Make servers on demand (a test may restart one on the same data dir); all are stopped at the end."""
    started: list[ServerProcess] = []

    def make(data_dir: Path | None = None, *extra: str) -> ServerProcess:
        server = ServerProcess(data_dir or tmp_path / "data", ingest_orgs=ingest_orgs)
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
