"""A full disk under the PostgreSQL backend during ingest: 503 with Retry-After naming the cause (never 500), nothing
acknowledged lost or buried by the fold, ingest and folds again once space returns. A real cluster and server.

What PostgreSQL does when its disk fills: a table or index that cannot grow fails its statement with SQLSTATE 53100
(disk_full) and the server stays up; WAL that cannot grow (a new 16 MB segment) is a PANIC, and crash recovery then
fails alike, so the server shuts down until space is freed and someone restarts it. That leaves agentdash nothing to
do but answer 503 meanwhile (a lost database: test_postgres.py). So the small disk here holds only the agentdash
database's tablespace and pg_wal stays on the big disk: pg_wal on a volume of its own, the layout that keeps
PostgreSQL up when the data fills its disk.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from disk_full_support import batch, fill, ingest_until_full, post_until_accepted, size_limited_tmpfs
from support import NEEDS_POSTGRES

from agentdash.config import Settings
from agentdash.storage import Overloaded, Unavailable, open_storage
from agentdash.testing import PostgresCluster, ServerProcess, postgres_bin_dir

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[postgres]'")

from agentdash.storage.postgres.errors import domain_error  # noqa: E402  (needs psycopg)
from agentdash.storage.postgres.event_log import _for_producer  # noqa: E402

FOLD_FAILED = "Unavailable: the PostgreSQL database's disk is full"  # the fold's error, as the log shows it
FOLD_LOCK = "SELECT pg_advisory_lock(1634492787, 2)"  # the key of try_fold_lock in sql/postgres.sql
DISK_MB = 32  # template1's copy (~8 MB) and agentdash's schema, then the filler
FREE_MB = 3  # left free by the filler: a few dozen batches, so the disk fills within seconds


@pytest.fixture
def small_database() -> Iterator[tuple[str, Path]]:
    """A database whose tablespace is a tmpfs of DISK_MB, in a cluster of its own (WAL on the big disk); its URL and
    the tmpfs. Skipped where mounting is not permitted."""
    # Not under tmp_path: the cluster runs as postgres (the tmpfs needs root, initdb refuses it), which may not enter
    # pytest's root-only directories.
    parent = Path(tempfile.mkdtemp(prefix="agentdash-disk-"))
    parent.chmod(0o755)
    try:
        with size_limited_tmpfs(parent / "disk", DISK_MB) as disk:
            location = disk / "tablespace"
            location.mkdir()
            shutil.chown(location, "postgres", "postgres")
            bin_dir = postgres_bin_dir()
            assert bin_dir is not None
            cluster = PostgresCluster(bin_dir).start()
            try:
                with psycopg.connect(cluster.url(), autocommit=True) as db:
                    db.execute(f"CREATE TABLESPACE small LOCATION '{location}'")
                    db.execute("CREATE DATABASE agentdash TABLESPACE small")
                yield cluster.url("agentdash"), disk
            finally:
                cluster.stop()  # before the tmpfs is unmounted: the cluster holds its files open
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def sessions_batch() -> list[dict]:
    """batch()'s bulky events, each in a session of its own: the metrics' session count is then the folded events'."""
    return [{**event, "session_id": event["id"]} for event in batch()]


def wait_for_fold_failure(server: ServerProcess, timeout: float = 20) -> None:
    """Until the server's log shows a fold that failed for the full disk."""
    deadline = time.monotonic() + timeout
    while FOLD_FAILED not in server.log().partition("projector fold failed")[2]:  # its traceback follows
        assert time.monotonic() < deadline, f"no fold failed on the full disk:\n{server.log()[-3000:]}"
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (psycopg.errors.DiskFull('could not extend file "base/1/2": No space left on device'), "disk is full"),
        (psycopg.errors.InsufficientResources("out of shared memory"), "short of resources"),
        (psycopg.errors.IoError('could not read block 0 in file "base/1/2"'), "cannot read or write its files"),
    ],
)
def test_a_server_short_of_disk_or_resources_is_unavailable_and_says_why(error, cause):
    for domain in (domain_error(error), _for_producer(error)):  # a read, and an append (not "unreachable")
        assert isinstance(domain, Unavailable) and not isinstance(domain, Overloaded), repr(domain)
        assert cause in str(domain) and str(error) in str(domain) and domain.__cause__ is error


@NEEDS_POSTGRES
@pytest.mark.slow
def test_a_full_database_disk_answers_503_loses_nothing_acknowledged_and_recovers(tmp_path, small_database):
    url, disk = small_database
    server = ServerProcess(tmp_path / "data", database_url=url).start()
    try:
        with psycopg.connect(url, autocommit=True) as folder:
            folder.execute(FOLD_LOCK)  # the server's folds wait their turn: the log fills alone, unfolded
            filler = disk / "filler"
            fill(filler, FREE_MB)
            acknowledged, response = ingest_until_full(server, sessions_batch)
        assert response.headers["retry-after"], response.headers
        assert "disk is full" in response.json()["error"], response.text
        assert acknowledged, "the disk was full before the first batch: leave more room"
        assert httpx.get(f"{server.ingest_url}/healthz", timeout=10, trust_env=False).status_code == 200

        # The lock is gone: the fold meets the full disk. It must fail whole and wait, not bury good entries as poison.
        wait_for_fold_failure(server)
        status = server.status()
        assert status["events_projected"] == 0 and status["dead_letters"] == 0, status

        # Space returns: ingest works again without a restart, and the fold catches up.
        filler.unlink()
        events = sessions_batch()
        post_until_accepted(server, events)
        acknowledged.update(e["id"] for e in events)
        server.wait_projected(timeout=60)
        sessions = server.org_metrics("acme", "2026-03-02", "2026-03-02")["sessions"]
        assert server.stop() == 0, server.log()[-3000:]

        storage = open_storage(Settings(database_url=url))
        try:
            logged = {entry.event.id for entry in storage.log_entries(0, 1_000_000)}
            buried = storage.dead_letters.list_letters()
        finally:
            storage.close()
        assert acknowledged <= logged, f"{len(acknowledged - logged)} acknowledged events lost"
        assert not buried, f"good events buried because the disk was full: {buried[:3]}"
        assert sessions == len(logged), "every logged event folded exactly once"
    finally:
        if server.process and server.process.poll() is None:
            server.stop()
