"""What the full-disk tests of both backends share: a size-limited tmpfs, bulky events, a filler, ingest until full."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from agentdash.testing import ServerProcess

BATCH = 100


@contextmanager
def size_limited_tmpfs(disk: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of `size_mb` mounted at `disk`; skips where mounting is not permitted (not root, no CAP_SYS_ADMIN)."""
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(disk)],
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


def ingest_until_full(
    server: ServerProcess, make_batch: Callable[[], list[dict]] = batch
) -> tuple[set[str], httpx.Response]:
    """Post batches until one is refused; the ids of those acknowledged (each a 200 of the whole batch), and the 503."""
    acknowledged: set[str] = set()
    deadline = time.monotonic() + 120
    while True:
        events = make_batch()
        response = post(server, events)
        assert response.status_code in (200, 503), (response.status_code, response.text, server.log()[-3000:])
        if response.status_code == 503:
            return acknowledged, response
        assert response.json()["accepted"] == BATCH
        acknowledged.update(e["id"] for e in events)
        assert time.monotonic() < deadline, "the disk never filled"


def post_until_accepted(server: ServerProcess, events: list[dict]) -> None:
    """Post `events` until a 200, 503s in between (the writer may still be failing its last batch)."""
    for _ in range(50):
        response = post(server, events)
        if response.status_code == 200:
            return
        assert response.status_code == 503, response.text
        time.sleep(0.2)
    assert response.status_code == 200, response.text
