"""Shared fixtures: each storage backend (embedded, postgres) for contract tests, and a real agentdash server in a
subprocess, on free ports, with its own data dir."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentdash.config import Settings
from agentdash.storage import IngestKeyStore, Storage, open_ingest_keys
from agentdash.testing import DEFAULT_INGEST_ORGS, ServerProcess, free_port

__all__ = ["ServerProcess", "free_port"]

sys.path.insert(0, str(Path(__file__).parent))  # so tests can `import support`, `import reference_metrics`

from postgres_server import module_postgres_url, postgres_cluster, postgres_url  # noqa: F401  (fixtures)
from support import BACKENDS, Backend

# -- storage backends: a test that takes `backend`, `storage` or `key_store` runs once on each ----------------------


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path) -> Backend:
    """Where a storage lives: embedded files in a fresh data dir, or a fresh PostgreSQL database."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""
    return Backend(request.param, tmp_path / "data", url)


@pytest.fixture
def storage(backend: Backend) -> Iterator[Storage]:
    opened = backend.open()
    yield opened
    opened.close()


@pytest.fixture(params=BACKENDS)
def key_store(request, tmp_path) -> Iterator[IngestKeyStore]:
    """The ingest key store of each backend: <data-dir>/ingest-keys.sqlite, or the database's table."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""
    opened = open_ingest_keys(Settings(data_dir=tmp_path, database_url=url))
    yield opened
    opened.close()


# -- servers ---------------------------------------------------------------------------------------------------------


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


@pytest.fixture(scope="session", autouse=True)
def _one_token_per_ask() -> Iterator[None]:
    """`ServerProcess.token` runs `agentdash token`, a CLI start of a second or more, hundreds of times a run; most asks
    repeat one (the same data dir, org, role, user, teams). The first of each still goes through the real CLI, the
    repeats get its token: as good as a new one, since it is signed with the data dir's dev secret, which stays."""
    real = ServerProcess.token
    made: dict[tuple, str] = {}

    def token(self: ServerProcess, org: str, role: str = "org_admin", user: str = "tester", teams: str = "") -> str:
        ask = (self.data_dir.resolve(), self.command, org, role, user, teams)
        if ask not in made:
            made[ask] = real(self, org, role, user, teams)
        return made[ask]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ServerProcess, "token", token)
        yield


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # Talk to loopback directly even where a proxy is configured.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    os.environ.setdefault("no_proxy", "127.0.0.1,localhost")
