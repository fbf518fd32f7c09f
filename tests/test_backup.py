"""`agentdash backup` while a real server ingests over HTTP, then `agentdash restore-backup`: the restored log is the
original's up to the backup's position, its metrics are the oracle's over exactly those events, and the checks hold."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import httpx
import pytest
from postgres_server import new_database
from support import ORG, OTHER_ORG, QUERIES, close, oracle, random_events

from agentdash.config import Settings
from agentdash.storage import backup as backup_module
from agentdash.storage import open_storage
from agentdash.storage.backup import POSTGRES_TABLES

CLI = (sys.executable, "-m", "agentdash")
EVENTS = random_events(seed=7, n_sessions=400)
BATCH = 25


@pytest.fixture
def ingest_orgs() -> tuple[str, ...]:
    return (ORG, OTHER_ORG)


def agentdash(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


class Sender(threading.Thread):
    """Posts EVENTS in batches over real HTTP until told to stop or out of events; counts the batches sent."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = f"{url}/v1/events", {"content-type": "application/json", **headers}
        self.sent = 0
        self.stopping = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        with httpx.Client(trust_env=False, timeout=30) as client:
            for start in range(0, len(EVENTS), BATCH):
                if self.stopping.is_set():
                    return
                answer = client.post(
                    self.url, content=json.dumps({"events": EVENTS[start : start + BATCH]}), headers=self.headers
                )
                if answer.status_code != 200:
                    self.errors.append(f"{answer.status_code}: {answer.text}")
                self.sent += 1
                time.sleep(0.01)  # a steady stream, spread over the backup's run


def entries(data_dir: Path) -> list:
    storage = open_storage(Settings(data_dir=data_dir))
    try:
        return storage.log_entries(0, 10**9)
    finally:
        storage.close()


@pytest.fixture
def backed_up(server_factory, tmp_path):
    """A server ingesting while `agentdash backup` runs; then the original stopped, the backup restored."""
    original = server_factory(tmp_path / "original")
    sender = Sender(original.ingest_url, original.ingest_headers)
    sender.start()
    while sender.sent < 10:
        time.sleep(0.01)
    started = time.monotonic()
    done = agentdash("backup", str(tmp_path / "backup"), "--data-dir", str(original.data_dir))
    took = time.monotonic() - started
    sent_during = sender.sent
    time.sleep(0.3)  # more events after the backup: the restored log must stop at its position
    sender.stopping.set()
    sender.join()
    assert done.returncode == 0, done.stderr
    assert not sender.errors, sender.errors[:3]
    assert sender.sent > sent_during, "ingest went on after the backup"
    original.wait_projected()
    original.stop()
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    print(f"backup of {manifest['events']} events took {took:.2f} s (with start-up)")
    return original, tmp_path / "backup", manifest


def test_restored_copy_is_the_log_up_to_the_backup_with_the_same_metrics(backed_up, server_factory, tmp_path):
    original, backup, manifest = backed_up
    before = entries(original.data_dir)
    last_seq = manifest["last_seq"]
    assert 0 < last_seq < len(before), "the backup was taken while events kept arriving"
    assert manifest["events"] == last_seq
    assert {f["name"] for f in manifest["files"]} >= {"events.sqlite", "ingest-keys.sqlite"}

    restored_dir = tmp_path / "restored"
    done = agentdash("restore-backup", str(backup), "--data-dir", str(restored_dir))
    assert done.returncode == 0, done.stderr
    restored = entries(restored_dir)
    assert [(e.seq, e.received_us, e.event) for e in restored] == \
        [(e.seq, e.received_us, e.event) for e in before[:last_seq]]  # fmt: skip

    server = server_factory(restored_dir)
    server.wait_projected()
    kept = {(e.event.org_id, e.event.id) for e in restored}
    events = [e for e in EVENTS if (e["org_id"], e["id"]) in kept]
    for org in (ORG, OTHER_ORG):
        first, last = QUERIES[0][:2]
        close(server.org_metrics(org, first, last), oracle(events, org, first, last))

    # The original's ingest key came back with the key store: it still writes.
    again = httpx.post(f"{server.ingest_url}/v1/events", json={"events": EVENTS[-1:]}, timeout=30, trust_env=False,
                       headers={"Authorization": f"Bearer {original.ingest_key}"})  # fmt: skip
    assert again.status_code == 200, again.text


def test_restore_onto_a_running_server_is_refused(backed_up, server_factory, tmp_path):
    _, backup, _ = backed_up
    running = server_factory(tmp_path / "running")
    done = agentdash("restore-backup", str(backup), "--data-dir", str(running.data_dir), "--force")
    assert done.returncode != 0
    assert "in use by a running agentdash server" in done.stderr
    assert running.status()["lag_events"] == 0  # still serving, its data untouched


def test_a_tampered_file_fails_its_checksum_by_name(backed_up, tmp_path):
    _, backup, _ = backed_up
    keys = backup / "ingest-keys.sqlite"
    keys.write_bytes(keys.read_bytes()[:-1] + b"\x01")
    done = agentdash("restore-backup", str(backup), "--data-dir", str(tmp_path / "target"))
    assert done.returncode != 0
    assert "ingest-keys.sqlite fails its checksum" in done.stderr
    assert not (tmp_path / "target" / "events.sqlite").exists()


def test_an_incomplete_backup_or_a_full_target_is_refused(backed_up, tmp_path):
    _, backup, _ = backed_up
    (backup / "events.sqlite").unlink()
    done = agentdash("restore-backup", str(backup), "--data-dir", str(tmp_path / "a"))
    assert "incomplete: events.sqlite is missing" in done.stderr
    (backup / "manifest.json").unlink()
    assert "did not finish" in agentdash("restore-backup", str(backup), "--data-dir", str(tmp_path / "b")).stderr
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    assert "is not empty" in agentdash("backup", str(full), "--data-dir", str(tmp_path / "original")).stderr


def test_postgres_prints_pg_dump_commands(tmp_path):
    done = agentdash("backup", str(tmp_path / "b"), "--database-url", "postgresql://u:secret@db:5432/agentdash")
    assert done.returncode == 0, done.stderr
    assert "pg_dump -Fc" in done.stdout and "-t 'events*'" in done.stdout and "pg_restore" in done.stdout
    assert "secret" not in done.stdout


def test_the_printed_pg_dump_commands_restore_a_postgres_database(postgres_cluster, tmp_path):
    from support import parsed, product, wire

    from agentdash.projector import Projector
    from agentdash.storage import open_ingest_keys

    source, target = (new_database(postgres_cluster) for _ in range(2))
    storage = open_storage(Settings(database_url=source))
    storage.submit(parsed(*(wire(f"e{i}", at=f"2026-03-0{1 + i % 3}T10:00:00Z") for i in range(30)))).result(timeout=30)
    while Projector(storage, 1000).fold_once() and storage.fold_state().seq < 30:
        pass
    keys = open_ingest_keys(Settings(database_url=source))
    keys.add("k1", "backup test", ("o1",), b"\x00" * 32)
    keys.close()
    done = agentdash("backup", str(tmp_path / "unused"), "--database-url", source)
    commands = [line.strip() for line in done.stdout.splitlines() if line.strip().startswith(("pg_dump", "pg_restore"))]
    assert len(commands) == 2, done.stdout
    env = {**os.environ, "PATH": f"{postgres_cluster.bin_dir}:{os.environ['PATH']}"}
    for command, url in zip(commands, (source, target), strict=True):
        ran = subprocess.run(["bash", "-c", command], cwd=tmp_path, env={**env, "AGENTDASH_DATABASE_URL": url},
                             capture_output=True, text=True)  # fmt: skip
        assert ran.returncode == 0, f"{command}: {ran.stderr}"
    restored = open_storage(Settings(database_url=target))
    try:
        assert restored.log_entries(0, 100) == storage.log_entries(0, 100)
        span = (date(2026, 3, 1), date(2026, 3, 3))
        assert product(restored, "o1", *span) == product(storage, "o1", *span)
        assert restored.fold_state().seq == 30
    finally:
        restored.close()
        storage.close()
    restored_keys = open_ingest_keys(Settings(database_url=target))
    assert [k.name for k in restored_keys.list_keys()] == ["backup test"]
    restored_keys.close()


def test_the_postgres_backup_guidance_names_every_table_agentdash_creates():
    """A table missing from POSTGRES_TABLES is left out of the pg_dump the guidance prints: lost on restore."""
    sql_dir = Path(backup_module.__file__).parent / "sql"
    created = {name for path in sql_dir.glob("postgres*.sql")
               for name in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", path.read_text())}  # fmt: skip
    assert created and created <= set(POSTGRES_TABLES), created - set(POSTGRES_TABLES)
