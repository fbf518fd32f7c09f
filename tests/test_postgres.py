"""The Postgres backend where it differs from the embedded one: several processes on one database, which can be lost.

Checked here: seq stays dense and visible in commit order while processes append at once; folds take
turns (one at a time, a dead folder's turn passes on); a lost database answers Overloaded to producers
(HTTP 503) and Unavailable to readers, and the next call reconnects; two real servers share ingest keys,
logs and folds, and their figures equal the oracle's, through a kill -9, a restart and `agentdash rebuild`.
What both backends promise (dedupe, group commit, failed writes, folds, reopen, rebuild) is in
test_storage_contract.py; the metrics are checked on both by test_metrics_api.py and test_ingest_keys.py.
"""

from __future__ import annotations

import datetime as dt
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from reference_metrics import reference_metrics
from support import all_metrics, all_oracle, assert_all_same, close, parsed, random_events, submit, wire

from agentdash.config import Settings
from agentdash.demo import GeneratorConfig, generate, send
from agentdash.projector import Projector
from agentdash.storage import Overloaded, StorageError, Unavailable, open_ingest_keys, open_storage
from agentdash.testing import ServerProcess, free_port

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


# -- folds --------------------------------------------------------------------------------------


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


# -- a lost database ---------------------------------------------------------------------------


def drop_connections(url: str) -> int:
    """End every other session on the database, as a server restart or a network cut would; how many."""
    with psycopg.connect(url, autocommit=True) as db:
        return db.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]


def test_a_lost_database_is_overloaded_for_producers_and_unavailable_for_readers_until_it_is_back(postgres_url):
    storage = open_pg(postgres_url)
    try:
        assert submit(storage, [wire("a")]) == [True]
        assert storage.log_position().last_seq == 1  # a pooled reader connection now exists
        assert drop_connections(postgres_url) >= 2  # the writer's and the reader's

        with pytest.raises(Overloaded, match="unreachable; retry shortly") as caught:
            storage.submit(parsed(wire("b"))).result(timeout=30)  # the ingest API answers this with 503
        assert isinstance(caught.value.__cause__, Unavailable)
        assert isinstance(caught.value.__cause__.__cause__, psycopg.OperationalError)
        with pytest.raises(Unavailable) as lost:
            storage.log_position()
        assert isinstance(lost.value.__cause__, psycopg.OperationalError)

        assert submit(storage, [wire("b"), wire("a")]) == [True, False]  # the writer reconnected
        assert storage.log_position().last_seq == 2  # and so did the read pool
        assert [e.event.id for e in storage.log_entries(0, 10)] == ["a", "b"]
    finally:
        storage.close()


def test_an_unreachable_database_is_unavailable_at_open():
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(Unavailable, match="cannot connect to the PostgreSQL database"):
        open_pg(url)
    with pytest.raises(Unavailable, match="cannot connect"):
        open_ingest_keys(Settings(database_url=url))
    assert issubclass(Unavailable, StorageError)


# -- real servers -------------------------------------------------------------------------------


def metrics(server: ServerProcess, **params) -> dict:
    answer = httpx.get(f"{server.url}/api/v1/orgs/acme/metrics", params=params, timeout=30,
                       headers={"Authorization": f"Bearer {server.token('acme')}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.json()


def assert_oracle(server: ServerProcess, events: list[dict]) -> None:
    for date_from in (END - dt.timedelta(days=19), END - dt.timedelta(days=3)):
        close(
            metrics(server, **{"from": str(date_from), "to": str(END)}),
            reference_metrics(events, "acme", date_from, END),
        )


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


# -- planner statistics -------------------------------------------------------------------------

READ_MODELS = ("runs", "sessions", "activity", "queued", "usage", "code_changes", "prs", "pr_texts")


def analyzed(url: str) -> dict[str, bool]:
    """Whether each read model was ANALYZEd by hand (autovacuum's own runs set last_autoanalyze instead)."""
    with psycopg.connect(url, autocommit=True) as db:
        rows = db.execute(
            "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = ANY(%s)",
            [list(READ_MODELS)],
        ).fetchall()
    return dict(rows)


def test_a_big_fold_analyzes_the_read_models_and_a_small_one_leaves_them(postgres_url):
    """Right after a big catch-up the planner needs statistics of the folded rows, before autovacuum's round: the
    worker that folded ANALYZEs the read models after its COMMIT; a few folded entries change nothing."""
    events = generate(GeneratorConfig(days=20, end=END, org_id="acme", people=25, teams=3, seed=11))
    assert len(events) > 10_000  # read_models.ANALYZE_MIN: the first fold is big enough
    storage = open_pg(postgres_url)
    try:
        few, many = events[:50], events[50:]
        for start in range(0, len(few), 500):
            submit(storage, few[start : start + 500])
        assert Projector(storage).fold_once() == len(few)
        assert not any(analyzed(postgres_url).values())
        for start in range(0, len(many), 500):
            submit(storage, many[start : start + 500])
        assert Projector(storage).fold_once() == len(many)
        assert analyzed(postgres_url) == dict.fromkeys(READ_MODELS, True)
        with psycopg.connect(postgres_url, autocommit=True) as db:  # the planner knows the runs now
            (runs,) = db.execute("SELECT reltuples FROM pg_class WHERE relname = 'runs'").fetchone()
            assert runs == db.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        storage.close()
