"""The Postgres backend where it differs from the embedded one: several processes on one database.

Checked here: seq stays dense and visible in commit order while processes append at once; folds take
turns (one at a time, a dead folder's turn passes on); two real servers share ingest keys, logs and
folds, and their figures equal the oracle's, through a kill -9, a restart and `agentdash rebuild`.
The metrics themselves are checked on both backends by test_metrics_api.py and test_ingest_keys.py.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from reference_metrics import reference_metrics
from test_metrics_api import close
from test_projector import all_metrics, all_oracle, assert_all_same, random_events, submit

from agentdash.config import Settings
from agentdash.demo import GeneratorConfig, generate
from agentdash.projector import Projector
from agentdash.demo import send
from agentdash.storage import open_storage
from agentdash.testing import ServerProcess

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[postgres]'")

FOLD_LOCK = "SELECT pg_advisory_lock(1634492787, 2)"  # the key of try_fold_lock in sql/postgres.sql
END = dt.date(2026, 3, 31)
CONFIG = GeneratorConfig(days=20, scale=0.2, end=END, org_id="acme", people=25, teams=3, seed=11)


def open_pg(url: str):
    return open_storage(Settings(database_url=url))


# -- the log ------------------------------------------------------------------------------------


def test_concurrent_appends_keep_seq_dense_and_visible_in_commit_order(postgres_url):
    """Two storages (as two processes would) append overlapping batches while a reader watches the log."""
    events = random_events(seed=21, n_sessions=60)
    rng = random.Random(5)
    writers = [open_pg(postgres_url), open_pg(postgres_url)]
    stop, prefixes = threading.Event(), []

    def watch() -> None:  # every snapshot must be exactly seqs 1..n: no hole a projector could skip
        with psycopg.connect(postgres_url, autocommit=True) as db:
            while not stop.is_set():
                prefixes.append(db.execute("SELECT count(*), coalesce(max(seq), 0) FROM events").fetchone())

    def deliver(storage, part: list[dict]) -> list[bool]:
        return [ok for start in range(0, len(part), 7) for ok in submit(storage, part[start : start + 7])]

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        copies = [rng.sample(events, len(events)) for _ in range(4)]  # every event four times, across both
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(deliver, writers * 2, copies))
    finally:
        stop.set()
        watcher.join()
    stored = sum(ok for result in results for ok in result)
    assert stored == len(events)  # each distinct event stored once, whoever got it first
    assert len(prefixes) > 10 and all(count == last for count, last in prefixes)
    assert writers[0].log_position().last_seq == len(events)
    for storage in writers:
        storage.close()


def test_duplicates_are_refused_after_a_reopen(postgres_url):
    events = random_events(seed=22, n_sessions=10)
    storage = open_pg(postgres_url)
    assert all(submit(storage, events))
    storage.close()
    storage = open_pg(postgres_url)
    try:
        extra = {**events[0], "id": "brand-new"}
        assert submit(storage, [*events[:5], extra, extra]) == [False] * 5 + [True, False]
        assert storage.log_position().last_seq == len(events) + 1
    finally:
        storage.close()


# -- folds --------------------------------------------------------------------------------------


def test_shuffled_small_chunks_and_a_rebuild_equal_the_oracle(postgres_url):
    events = random_events(seed=23, n_sessions=40)
    rng = random.Random(6)
    delivery = events + rng.sample(events, 40)
    rng.shuffle(delivery)
    storage = open_pg(postgres_url)
    try:
        projector = Projector(storage, chunk_size=5)
        for start in range(0, len(delivery), 23):
            submit(storage, delivery[start : start + 23])
            projector.fold_once()
        projector.catch_up()
        incremental = all_metrics(storage)
        assert_all_same(incremental, all_oracle(events))
        storage.reset_read_models()
        assert storage.fold_state().seq == 0
        assert Projector(storage).catch_up() == len(events)
        assert_all_same(all_metrics(storage), incremental)
    finally:
        storage.close()


def test_a_fold_waits_its_turn_and_takes_over_from_a_dead_folder(postgres_url):
    events = random_events(seed=24, n_sessions=8)
    storage = open_pg(postgres_url)
    try:
        submit(storage, events)
        projector = Projector(storage)
        other = psycopg.connect(postgres_url, autocommit=True)
        other.execute(FOLD_LOCK)  # another worker is folding
        assert projector.fold_once() == 0 and storage.fold_state().seq == 0
        other.close()  # ...and dies: its session lock goes with it
        assert projector.fold_once() == len(events)
        assert_all_same(all_metrics(storage), all_oracle(events))
    finally:
        storage.close()


# -- real servers -------------------------------------------------------------------------------


def metrics(server: ServerProcess, **params) -> dict:
    answer = httpx.get(f"{server.url}/api/v1/orgs/acme/metrics", params=params, timeout=30,
                       headers={"Authorization": f"Bearer {server.token('acme')}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.json()


def assert_oracle(server: ServerProcess, events: list[dict]) -> None:
    for date_from in (END - dt.timedelta(days=19), END - dt.timedelta(days=3)):
        close(metrics(server, **{"from": str(date_from), "to": str(END)}), reference_metrics(events, "acme", date_from, END))


def folder_pid(url: str, timeout: float = 30) -> int:
    """The OS pid of the agentdash process holding the fold lock (its application_name names it)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as db:
        while time.monotonic() < deadline:
            row = db.execute(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE l.locktype = 'advisory' AND l.classid = 1634492787 AND l.objid = 2 AND l.granted"
            ).fetchone()
            if row and row[0].startswith("agentdash pid "):
                return int(row[0].removeprefix("agentdash pid "))
            time.sleep(0.005)
    raise TimeoutError("no process took the fold lock")


def test_two_servers_share_keys_log_and_folds_through_a_kill_a_restart_and_a_rebuild(tmp_path, postgres_url):
    events = generate(CONFIG)
    rng = random.Random(9)
    delivery = events + rng.sample(events, len(events) // 4)
    rng.shuffle(delivery)
    data_dir = tmp_path / "data"  # shared: only the dev secret lives there with Postgres
    slow_folds = ("--fold-chunk", "50")  # many short folds, so the kill lands mid-projection
    first = ServerProcess(data_dir, database_url=postgres_url).start(*slow_folds)
    second = ServerProcess(data_dir, database_url=postgres_url).start(*slow_folds)
    servers = [first, second]
    try:
        # a key made by the CLI works on both servers; a revoked one on neither
        key = first.cli("ingest-key", "create", "--org", "acme", "--name", "shared")
        half = len(delivery) // 2
        with psycopg.connect(postgres_url, autocommit=True) as pause:
            pause.execute(FOLD_LOCK)  # hold folds back until everything is logged, so the kill lands mid-way
            with ThreadPoolExecutor(2) as pool:
                stats = list(pool.map(lambda server, part: send(f"{server.ingest_url}/v1/events", part, batch_size=211, token=key),
                                      servers, [delivery[:half], delivery[half:]]))  # fmt: skip
        assert sum(s.accepted for s in stats) == len(events) and sum(s.rejected for s in stats) == 0

        victim = next(s for s in servers if s.process.pid == folder_pid(postgres_url))
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait()
        survivor = next(s for s in servers if s is not victim)
        assert survivor.status()["lag_events"] > 0  # the kill did land mid-projection
        survivor.wait_projected(timeout=120)
        assert_oracle(survivor, events)

        restarted = ServerProcess(data_dir, database_url=postgres_url).start()
        servers.append(restarted)
        again = send(f"{restarted.ingest_url}/v1/events", delivery, batch_size=500, token=key)
        assert (again.accepted, again.duplicates) == (0, len(delivery))
        assert_oracle(restarted, events)

        key_id = key.split("_")[1]
        first.cli("ingest-key", "revoke", key_id)
        time.sleep(2.2)  # servers reload keys at most once a second
        for server in (survivor, restarted):
            refused = httpx.post(f"{server.ingest_url}/v1/events", json={"events": delivery[:1]},
                                 headers={"Authorization": f"Bearer {key}"}, timeout=10)  # fmt: skip
            assert refused.status_code == 401
    finally:
        for server in servers:
            if server.process.poll() is None:
                server.stop()

    out = first.cli("rebuild")
    assert f"from {len(events)} events" in out
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT seq FROM checkpoint").fetchone()[0] == len(events)
    storage = open_pg(postgres_url)
    try:
        assert Projector(storage).catch_up() == 0
    finally:
        storage.close()
    final = ServerProcess(data_dir, database_url=postgres_url).start()
    try:
        assert_oracle(final, events)
    finally:
        final.stop()


def test_the_database_url_must_be_postgres():
    with pytest.raises(ValueError, match="postgresql://"):
        open_storage(Settings(database_url="mysql://somewhere/db"))
