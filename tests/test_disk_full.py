"""A full disk during ingest: 503 with Retry-After (never 500), nothing acknowledged lost, ingest again once space
returns. A real server subprocess on a size-limited tmpfs."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest

from agentdash.config import load_settings
from agentdash.storage import Unavailable, open_storage
from agentdash.storage.embedded.errors import domain_error
from agentdash.testing import ServerProcess

DISK_MB = 24
FREE_MB = 3  # left free by the filler: a few hundred batches, so the disk fills within seconds
BATCH = 100


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A tmpfs of DISK_MB; skipped where mounting is not permitted (not root, a container without CAP_SYS_ADMIN)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(disk)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield disk
    finally:
        # The server's worker processes may still be letting go of their files for a moment after it exits.
        for _ in range(50):
            if subprocess.run(["umount", str(disk)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["umount", "--lazy", str(disk)], check=False)


def batch() -> list[dict]:
    # A kilobyte of attributes per event fills the disk in a few thousand events.
    return [{"id": str(uuid.uuid4()), "type": "message.sent", "org_id": "acme", "user_id": "u1", "session_id": "s1",
             "occurred_at": "2026-03-02T10:00:00Z", "attributes": {"note": uuid.uuid4().hex * 32}}
            for _ in range(BATCH)]  # fmt: skip


def post(server: ServerProcess, events: list[dict]) -> httpx.Response:
    return httpx.post(f"{server.ingest_url}/v1/events", json={"events": events}, headers=server.ingest_headers,
                      timeout=60, trust_env=False)  # fmt: skip


def fill(path: Path, leave_mb: int) -> None:
    """Take all but `leave_mb` of the file system's free space."""
    stats = os.statvfs(path.parent)
    size = stats.f_bavail * stats.f_frsize - leave_mb * 2**20
    with open(path, "wb") as filler:
        filler.write(b"\0" * max(size, 0))


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
        acknowledged: set[str] = set()
        deadline = time.monotonic() + 120
        while True:
            events = batch()
            response = post(server, events)
            assert response.status_code in (200, 503), (response.status_code, response.text, server.log()[-3000:])
            if response.status_code == 503:
                break
            assert response.json()["accepted"] == BATCH
            acknowledged.update(e["id"] for e in events)
            assert time.monotonic() < deadline, "the disk never filled"
        assert response.headers["retry-after"], response.headers
        assert "disk is full" in response.json()["error"], response.text
        assert acknowledged, "the disk was full before the first batch: leave more room"
        assert httpx.get(f"{server.ingest_url}/healthz", timeout=10, trust_env=False).status_code == 200

        # Space returns: ingest works again without a restart.
        filler.unlink()
        events = batch()
        for _ in range(50):
            response = post(server, events)
            if response.status_code == 200:
                break
            assert response.status_code == 503, response.text
            time.sleep(0.2)
        assert response.status_code == 200, response.text
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
