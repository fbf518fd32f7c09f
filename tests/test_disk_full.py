"""A full disk during ingest: 503 with Retry-After (never 500), nothing acknowledged lost, ingest again once space
returns. A real server subprocess on a size-limited tmpfs."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest
from disk_full_support import batch, fill, ingest_until_full, post_until_accepted, size_limited_tmpfs

from agentdash.config import load_settings
from agentdash.storage import Unavailable, open_storage
from agentdash.storage.embedded.errors import domain_error
from agentdash.testing import ServerProcess

DISK_MB = 24
FREE_MB = 3  # left free by the filler: a few hundred batches, so the disk fills within seconds


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A tmpfs of DISK_MB; skipped where mounting is not permitted (not root, a container without CAP_SYS_ADMIN)."""
    with size_limited_tmpfs(tmp_path / "disk", DISK_MB) as disk:
        yield disk


def test_sqlite_full_is_unavailable_not_a_generic_storage_error(tmp_path):
    # max_page_count makes SQLite answer SQLITE_FULL exactly as a full disk does, without one.
    db = sqlite3.connect(tmp_path / "tiny.sqlite")
    db.execute("PRAGMA max_page_count=2")
    with pytest.raises(sqlite3.OperationalError) as full:
        db.execute("CREATE TABLE t(x)")
        db.execute("INSERT INTO t VALUES (randomblob(100000))")
    error = domain_error(full.value)
    assert isinstance(error, Unavailable) and "disk is full" in str(error) and error.__cause__ is full.value


def test_duckdb_out_of_space_is_unavailable():
    error = domain_error(duckdb.IOException('Could not write file "x.duckdb": No space left on device'))
    assert isinstance(error, Unavailable)


def test_closed_storage_holds_no_file_of_the_data_dir(tmp_path):
    # A reader connection left open kept the disk of the test below busy: it could not be unmounted.
    storage = open_storage(load_settings(data_dir=tmp_path / "data"))
    storage.log_entries(0, 10)
    storage.close()
    held = [os.readlink(fd) for fd in Path("/proc/self/fd").iterdir() if fd.is_symlink() and fd.exists()]
    assert not [path for path in held if path.startswith(str(tmp_path))], held


@pytest.mark.slow
def test_full_disk_answers_503_loses_nothing_acknowledged_and_recovers(small_disk):
    server = ServerProcess(small_disk).start()
    try:
        filler = small_disk / "filler"
        fill(filler, FREE_MB)
        acknowledged, response = ingest_until_full(server)
        assert response.headers["retry-after"], response.headers
        assert "disk is full" in response.json()["error"], response.text
        assert acknowledged, "the disk was full before the first batch: leave more room"
        assert httpx.get(f"{server.ingest_url}/healthz", timeout=10, trust_env=False).status_code == 200

        # Space returns: ingest works again without a restart.
        filler.unlink()
        events = batch()
        post_until_accepted(server, events)
        acknowledged.update(e["id"] for e in events)
        server.wait_projected(timeout=60)
        assert server.stop() == 0, server.log()[-3000:]

        storage = open_storage(load_settings(data_dir=small_disk))
        try:
            logged = {entry.event.id for entry in storage.log_entries(0, 1_000_000)}
        finally:
            storage.close()
        assert acknowledged <= logged, f"{len(acknowledged - logged)} acknowledged events lost"
    finally:
        if server.process and server.process.poll() is None:
            server.stop()
