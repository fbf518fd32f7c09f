"""Retention and archive (README "Retention and archive"): folded entries past --retention-days go to verified monthly
Parquet parts and leave the live log; metrics and dedupe do not change, `agentdash restore` + `rebuild` give the same
numbers, a corrupted file is refused by name. Over real HTTP, real files and the real CLI."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support import (
    BACKENDS,
    NEEDS_POSTGRES,
    ORG,
    OTHER_ORG,
    QUERIES,
    close,
    oracle,
    parsed,
    product,
    random_events,
    wire,
)

from agentdash.config import Settings
from agentdash.events import dedupe_key
from agentdash.projector import Projector, ProjectorJob
from agentdash.storage import ArchiveError, open_storage
from agentdash.storage.archive import ARCHIVE_COLUMNS, Checksum, month_of, month_range, months_between, rows_batch
from agentdash.storage.embedded import archive as embedded_archive
from agentdash.storage.embedded import event_log as sqlite_log
from agentdash.storage.embedded.storage import EmbeddedStorage
from agentdash.testing import ServerProcess

CLI = (sys.executable, "-m", "agentdash")
EVENTS = random_events(seed=11, n_sessions=150)
BATCH = 200
SPAN = QUERIES[0][:2]
FUTURE_US = 2**62  # an archive cutoff after everything


@pytest.fixture
def ingest_orgs() -> tuple[str, ...]:
    return (ORG, OTHER_ORG)


def agentdash(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def post_all(server, events: list[dict]) -> tuple[int, int]:
    """POST the events in batches; (accepted, duplicates) summed over the answers."""
    accepted = duplicates = 0
    with httpx.Client(trust_env=False, timeout=30) as client:
        for start in range(0, len(events), BATCH):
            answer = client.post(f"{server.ingest_url}/v1/events", json={"events": events[start : start + BATCH]},
                                 headers=server.ingest_headers)  # fmt: skip
            assert answer.status_code == 200, answer.text
            body = answer.json()
            accepted, duplicates = accepted + body["accepted"], duplicates + body["duplicates"]
    return accepted, duplicates


def metrics(server) -> dict:
    return {org: server.org_metrics(org, *SPAN) for org in (ORG, OTHER_ORG)}


def manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())


def wait_for_manifest(directory: Path, rows: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (directory / "manifest.json").exists():
            found = manifest(directory)
            if sum(p["rows"] for p in found["parts"]) >= rows:
                return found
        time.sleep(0.1)
    raise TimeoutError(f"no archive of {rows} rows in {directory} after {timeout} s")


def test_archived_months_keep_their_metrics_and_dedupe_and_come_back_by_restore(server_factory, tmp_path):
    data_dir = tmp_path / "data"
    first = server_factory(data_dir)
    accepted, _ = post_all(first, EVENTS)
    first.wait_projected()
    before = metrics(first)
    for org in (ORG, OTHER_ORG):  # the numbers are right to begin with
        close(before[org], oracle(EVENTS, org, *SPAN))
    logged = first.status()["events_logged"]
    assert logged == accepted
    first.stop()

    # A server with a retention of a second archives at start-up: everything is older than that by now.
    time.sleep(1.0)
    archiving = server_factory(data_dir, "--retention-days", "0.00001")
    found = wait_for_manifest(data_dir / "archive", logged)
    (part,) = found["parts"]
    assert (part["rows"], part["first_seq"], part["last_seq"]) == (logged, 1, logged)
    assert (data_dir / "archive" / part["file"]).exists()
    assert pq.read_schema(data_dir / "archive" / part["file"]).names == list(ARCHIVE_COLUMNS)
    with open_live_log(data_dir) as db:
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 0  # gone from the live log
    assert metrics(archiving) == before  # the read models kept their facts
    assert post_all(archiving, EVENTS) == (0, len(EVENTS))  # every one a duplicate: no metric moves
    assert metrics(archiving) == before and archiving.status()["events_logged"] == logged
    archiving.stop()

    # After a restart (the dedupe index rebuilt from the file), an archived id is still a duplicate.
    again = server_factory(data_dir)
    assert post_all(again, EVENTS[:BATCH]) == (0, BATCH)
    assert metrics(again) == before
    again.stop()

    # A rebuild from the live log alone would lose the archived facts: it puts them back first.
    rebuilt = agentdash("rebuild", "--data-dir", str(data_dir))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert f"restored {logged:,} archived entries" in rebuilt.stdout and f"from {logged} events" in rebuilt.stdout
    after = server_factory(data_dir)
    assert metrics(after) == before
    assert post_all(after, EVENTS[:BATCH]) == (0, BATCH)
    after.stop()
    restored = agentdash("restore", "--from", str(data_dir / "archive"), "--data-dir", str(data_dir))
    assert restored.returncode == 0, restored.stderr
    assert (
        f"restored 0 entries from 1 files of {data_dir / 'archive'} ({logged:,} were in the live log" in restored.stdout
    )


def test_read_models_of_a_new_version_get_the_archived_months_back(server_factory, tmp_path):
    """A release that bumps the read-model VERSION drops and re-folds them: from the live log alone, the archived
    months would vanish from every metric."""
    data_dir = tmp_path / "data"
    first = server_factory(data_dir)
    post_all(first, EVENTS)
    first.wait_projected()
    before, logged = metrics(first), first.status()["events_logged"]
    first.stop()
    time.sleep(1.0)
    archiving = server_factory(data_dir, "--retention-days", "0.00001")
    wait_for_manifest(data_dir / "archive", logged)
    archiving.stop()
    with open_live_log(data_dir) as db:
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    with duckdb.connect(str(data_dir / "read_models.duckdb")) as models:  # what an upgrade to another VERSION finds
        models.execute("UPDATE read_model_version SET version = version + 1000")

    upgraded = server_factory(data_dir)
    upgraded.wait_projected()
    assert metrics(upgraded) == before
    assert post_all(upgraded, EVENTS[:BATCH]) == (0, BATCH)  # restored ids: still duplicates


@contextmanager
def open_live_log(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """The event log's SQLite file, read directly."""
    db = sqlite3.connect(data_dir / "events.sqlite")
    try:
        yield db
    finally:
        db.close()


def _events(n: int, prefix: str = "e") -> list:
    return parsed(*(wire(f"{prefix}{i}", at=f"2026-03-0{1 + i % 3}T10:00:00Z") for i in range(n)))


def test_only_folded_entries_that_are_not_dead_letters_are_archived(tmp_path):
    poisoned = "e3"
    storage = EmbeddedStorage(Settings(data_dir=tmp_path / "data"), poison=lambda e: e.event.id == poisoned)
    try:
        storage.submit(_events(10)).result(timeout=30)
        Projector(storage, 1000).catch_up()  # e3 fails alone: buried, a dead letter
        assert [letter.event_id for letter in storage.dead_letters.list_letters()] == [poisoned]
        storage.submit(_events(5, "late")).result(timeout=30)  # logged, not folded yet
        report = storage.archive(FUTURE_US, tmp_path / "archive")
        assert report.rows == 9
        live = [(e.seq, e.event.id) for e in storage.log_entries(0, 100)]
        assert live == [(4, poisoned), *((11 + i, f"late{i}") for i in range(5))]
        assert storage.archived_entries() == 9
        # The unfolded ones fold as ever; archived again once folded, as a new part of the month.
        Projector(storage, 1000).catch_up()
        assert storage.fold_state().seq == 15
        second = storage.archive(FUTURE_US, tmp_path / "archive")
        assert second.rows == 5 and second.parts[0].part == 2
        assert [e.event.id for e in storage.log_entries(0, 100)] == [poisoned]
    finally:
        storage.close()


def test_a_later_run_adds_a_part_and_restore_skips_what_the_log_holds(tmp_path):
    archive = tmp_path / "archive"
    storage = open_storage(Settings(data_dir=tmp_path / "data"))
    try:
        storage.submit(_events(20)).result(timeout=30)
        Projector(storage, 1000).catch_up()
        (one,) = storage.archive(FUTURE_US, archive).parts
        first_bytes = (archive / one.file).read_bytes()
        storage.submit(_events(7, "next")).result(timeout=30)
        Projector(storage, 1000).catch_up()
        (two,) = storage.archive(FUTURE_US, archive).parts
        assert (one.month, one.part, one.rows, two.month, two.part, two.rows) == (one.month, 1, 20, one.month, 2, 7)
        assert (archive / one.file).read_bytes() == first_bytes  # never rewritten
        assert [p["file"] for p in manifest(archive)["parts"]] == [one.file, two.file]
        assert storage.archive(FUTURE_US, archive).parts == ()  # nothing left: no empty part
        assert storage.submit(_events(20) + _events(7, "next")).result(timeout=30) == [False] * 27
        done = storage.restore_archive(archive)
        assert (done.restored, done.already_there) == (27, 0)
        assert storage.archived_entries() == 0
        assert [e.seq for e in storage.log_entries(0, 100)] == list(range(1, 28))
        assert (storage.restore_archive(archive).restored, storage.restore_archive(archive).already_there) == (0, 27)
        assert storage.submit(_events(3)).result(timeout=30) == [False] * 3  # restored: duplicates the live way
        assert storage.submit(_events(1, "new")).result(timeout=30) == [True]
        assert storage.log_position().last_seq == 28
    finally:
        storage.close()


def test_the_log_position_survives_archiving_everything(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    storage = open_storage(settings)
    storage.submit(_events(12)).result(timeout=30)
    Projector(storage, 1000).catch_up()
    storage.archive(FUTURE_US, tmp_path / "archive")
    storage.close()
    storage = open_storage(settings)  # the live log is empty: seqs go on after the archived ones
    try:
        assert storage.log_position().last_seq == 12
        assert storage.submit(_events(1, "new")).result(timeout=30) == [True]
        assert [e.seq for e in storage.log_entries(0, 100)] == [13]
    finally:
        storage.close()


def test_a_corrupted_or_foreign_archive_is_refused_by_name(tmp_path):
    data_dir = tmp_path / "data"
    storage = open_storage(Settings(data_dir=data_dir))
    storage.submit(_events(30)).result(timeout=30)
    Projector(storage, 1000).catch_up()
    storage.close()
    done = agentdash("archive", "--before", "2999-01-01", "--data-dir", str(data_dir))
    assert done.returncode == 0, done.stderr
    assert "archived 30 entries" in done.stdout
    (part,) = manifest(data_dir / "archive")["parts"]
    path = data_dir / "archive" / part["file"]

    # A file whose values changed (rewritten as valid Parquet, one cost altered): the checksum catches it.
    table = pq.read_table(path)
    costs = table["cost_usd"].to_pylist()
    costs[5] = 123.0
    pq.write_table(table.set_column(table.schema.get_field_index("cost_usd"), "cost_usd", pa.array(costs)), path)
    refused = agentdash("restore", "--from", str(data_dir / "archive"), "--data-dir", str(data_dir))
    assert refused.returncode != 0 and f"{path} is corrupted" in refused.stderr
    path.write_bytes(b"PAR1 not really")
    refused = agentdash("restore", "--from", str(data_dir / "archive"), "--data-dir", str(data_dir))
    assert refused.returncode != 0 and f"{path} is corrupted" in refused.stderr
    storage = open_storage(Settings(data_dir=data_dir))
    try:
        assert storage.archived_entries() == 30 and storage.log_entries(0, 100) == []  # nothing restored
        # Another data dir's archive names seqs this log never archived.
        other = open_storage(Settings(data_dir=tmp_path / "other"))
        other.submit(_events(4, "x")).result(timeout=30)
        Projector(other, 1000).catch_up()
        other.archive(FUTURE_US, tmp_path / "foreign")
        other.close()
        with pytest.raises(ArchiveError, match="not one this log archived"):
            storage.restore_archive(tmp_path / "foreign")
    finally:
        storage.close()


def test_archive_needs_a_cutoff_and_a_stopped_embedded_server(server, tmp_path):
    assert "pass --retention-days N or --before DATE" in agentdash("archive", "--data-dir", str(tmp_path / "x")).stderr
    busy = agentdash("archive", "--retention-days", "30", "--data-dir", str(server.data_dir))
    assert busy.returncode != 0 and "stop it first" in busy.stderr
    assert server.status()["events_logged"] == 0  # still serving


def test_the_checksum_is_over_values_not_layout():
    rows = [(i, 10 * i, f"id{i}", "run.finished", "o1", None if i % 3 else "u", "s", None, "t", i, None, None, i, 0, 0,
             0, 0.5 * i, "m" * (i % 4), None, None, None, i, None, None, 0, 0, 0, None, "a") for i in range(1000)]  # fmt: skip
    whole = rows_batch(rows)
    one, split = Checksum(), Checksum()
    one.update(whole)
    for start in range(0, 1000, 333):
        split.update(whole.slice(start, 333))
    assert one.hexdigest() == split.hexdigest() and one.rows == split.rows == 1000
    changed = Checksum()
    changed.update(rows_batch([*rows[:-1], (*rows[-1][:-1], "b")]))
    assert changed.hexdigest() != one.hexdigest()


def test_months():
    start, end = month_range("2026-12")
    assert months_between(start, end) == ["2026-12", "2027-01"]
    assert months_between(start, end - 1) == ["2026-12"]


# -- PostgreSQL: the log partitioned by month, upgraded from an unpartitioned one; archive drops whole months --------

MONTHS_US = (1_767_225_600_000_000, 1_769_904_000_000_000, 1_772_323_200_000_000)  # 2026-01-01, -02-01, -03-01 UTC
DAYS = (date(2026, 3, 1), date(2026, 3, 3))


def _unpartition(url: str, n: int) -> None:
    """Make the database's log one of before partitioning (seq primary key, UNIQUE (org_id, id), no event_ids), its
    entries received a third each in January, February and March 2026."""
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(url, autocommit=True) as db, db.transaction():
        db.execute("CREATE TABLE old_events AS SELECT * FROM events")
        db.execute("UPDATE old_events SET received_us = %s + seq * 1000000 + CASE WHEN seq <= %s THEN 0 "
                   "WHEN seq <= %s THEN %s ELSE %s END", (MONTHS_US[0], n // 3, 2 * n // 3,
                                                           MONTHS_US[1] - MONTHS_US[0], MONTHS_US[2] - MONTHS_US[0]))  # fmt: skip
        db.execute("DROP TABLE events, event_ids")
        db.execute("ALTER TABLE old_events RENAME TO events")
        db.execute("ALTER TABLE events ADD PRIMARY KEY (seq), ADD UNIQUE (org_id, id)")


def partition_name(month: str) -> str:
    return f"events_{month.replace('-', '_')}"


def next_month(month: str) -> str:
    return month_of(month_range(month)[1])


def _forget_ids(url: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("DELETE FROM event_ids")


def _partitions(url: str) -> list[str]:
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(url) as db:
        rows = db.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                          "WHERE i.inhparent = 'events'::regclass ORDER BY 1").fetchall()  # fmt: skip
    return [name for (name,) in rows]


@NEEDS_POSTGRES
def test_postgres_log_is_partitioned_archived_by_month_and_restored(postgres_url, tmp_path):
    n = 30
    settings = Settings(database_url=postgres_url)
    storage = open_storage(settings)
    storage.submit(_events(n)).result(timeout=30)
    Projector(storage, 1000).catch_up()
    before = product(storage, ORG, *DAYS)
    storage.close()
    _unpartition(postgres_url, n)

    storage = open_storage(settings)  # the upgrade: copied into monthly partitions, ids into event_ids
    try:
        assert _partitions(postgres_url) == ["events_2026_01", "events_2026_02", "events_2026_03"]
        logged = storage.log_entries(0, 100)
        assert [e.seq for e in logged] == list(range(1, n + 1))
        assert storage.submit(_events(n)).result(timeout=30) == [False] * n  # dedupe came along
        assert product(storage, ORG, *DAYS) == before

        report = storage.archive(MONTHS_US[2], tmp_path / "archive")  # January and February
        assert [(p.month, p.rows) for p in report.parts] == [("2026-01", n // 3), ("2026-02", n // 3)]
        assert pq.read_schema(tmp_path / "archive" / report.parts[0].file).names == list(ARCHIVE_COLUMNS)
        # Archived whole: dropped. The re-sent batch made this month's partition and the next one's ahead.
        now = month_of(time.time_ns() // 1000)
        assert _partitions(postgres_url) == ["events_2026_03", partition_name(now), partition_name(next_month(now))]
        assert storage.archived_entries() == 2 * n // 3
        assert [e.seq for e in storage.log_entries(0, 100)] == list(range(2 * n // 3 + 1, n + 1))
        assert storage.submit(_events(n)).result(timeout=30) == [False] * n  # archived ids are still duplicates
        assert product(storage, ORG, *DAYS) == before  # the read models kept their facts

        # Everything: all but the newest entry, whose seq is the log's high-water mark.
        rest = storage.archive(FUTURE_US, tmp_path / "archive")
        assert [(p.month, p.part, p.rows) for p in rest.parts] == [("2026-03", 1, n // 3 - 1)]
        assert [e.seq for e in storage.log_entries(0, 100)] == [n]
        assert storage.submit(_events(1, "new")).result(timeout=30) == [True]
        assert storage.log_entries(0, 100)[-1].seq == n + 1
        Projector(storage, 1000).catch_up()

        done = storage.restore_archive(tmp_path / "archive")
        assert (done.restored, done.already_there) == (n - 1, 0)
        assert storage.archived_entries() == 0
        assert [(e.seq, e.received_us, e.event) for e in storage.log_entries(0, n)] == \
            [(e.seq, e.received_us, e.event) for e in logged]  # fmt: skip
        assert storage.restore_archive(tmp_path / "archive").already_there == n - 1
        _forget_ids(postgres_url)  # as a dump without event_ids would: refilled from the log at the next start
        storage.close()
        storage = open_storage(settings)
        assert storage.submit(_events(n)).result(timeout=30) == [False] * n
        storage.reset_read_models()  # a rebuild from the restored log: the same numbers
        Projector(storage, 1000).catch_up()
        assert product(storage, ORG, *DAYS) == before
        with pytest.raises(ArchiveError, match="not one this log archived"):
            foreign = tmp_path / "foreign"
            other = open_storage(Settings(data_dir=tmp_path / "other"))
            other.submit(_events(3, "x")).result(timeout=30)
            Projector(other, 1000).catch_up()
            other.archive(FUTURE_US, foreign)
            other.close()
            storage.restore_archive(foreign)  # an embedded data dir's archive: the same format, not this log's
    finally:
        storage.close()


@NEEDS_POSTGRES
def test_postgres_server_archives_at_start_and_keeps_metrics_and_dedupe_over_http(postgres_url, tmp_path):
    servers: list[ServerProcess] = []

    def start(*extra: str) -> ServerProcess:
        server = ServerProcess(tmp_path / "data", database_url=postgres_url, ingest_orgs=(ORG, OTHER_ORG))
        servers.append(server.start(*extra))
        return server

    try:
        first = start()
        accepted, _ = post_all(first, EVENTS)
        first.wait_projected()
        before = metrics(first)
        for org in (ORG, OTHER_ORG):
            close(before[org], oracle(EVENTS, org, *SPAN))
        first.stop()
        time.sleep(1.0)
        archiving = start("--retention-days", "0.00001")
        found = wait_for_manifest(tmp_path / "data" / "archive", accepted - 1)  # the newest stays: the high-water mark
        assert [p["rows"] for p in found["parts"]] == [accepted - 1]
        assert metrics(archiving) == before
        assert post_all(archiving, EVENTS) == (0, len(EVENTS))
        assert metrics(archiving) == before
        archiving.stop()
        backend = ("--database-url", postgres_url)
        elsewhere = agentdash("rebuild", *backend, "--data-dir", str(tmp_path / "elsewhere"))
        assert elsewhere.returncode != 0 and str(tmp_path / "elsewhere" / "archive") in elsewhere.stderr
        assert "nothing rebuilt" in elsewhere.stderr  # no archive there: the read models are left as they were
        assert metrics(start()) == before
        servers[-1].stop()
        rebuilt = agentdash("rebuild", *backend, "--data-dir", str(tmp_path / "data"))
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert f"restored {accepted - 1:,} archived entries" in rebuilt.stdout
        assert metrics(start()) == before
    finally:
        for server in servers:
            if server.process and server.process.poll() is None:
                server.stop()


def test_a_hash_collision_with_an_archived_id_is_only_a_candidate(tmp_path, monkeypatch):
    def fake_key(org_id: str, event_id: str) -> int:
        return 42 if event_id in {"a", "b"} else dedupe_key(org_id, event_id)

    monkeypatch.setattr(sqlite_log, "dedupe_key", fake_key)
    settings = Settings(data_dir=tmp_path / "data")
    storage = open_storage(settings)
    try:
        assert storage.submit(parsed(wire("a"))).result(timeout=30) == [True]
        Projector(storage, 1000).catch_up()
        assert storage.archive(FUTURE_US, tmp_path / "archive").rows == 1
        assert storage.submit(parsed(wire("b"))).result(timeout=30) == [True]  # same key as archived a: new
        assert storage.submit(parsed(wire("a"), wire("b"))).result(timeout=30) == [False, False]
    finally:
        storage.close()
    storage = open_storage(settings)
    try:
        assert storage.submit(parsed(wire("a"), wire("b"))).result(timeout=30) == [False, False]
    finally:
        storage.close()


# -- Stopping and concurrency: a shutdown ends an archive run after the batch in hand; restores wait for each other --


class StopsAfter(threading.Event):
    """A stop flag that reads as set after `checks` looks at it: the archive run's first batch, deterministically."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self._left = checks

    def is_set(self) -> bool:
        self._left -= 1
        return self._left < 0


@pytest.fixture(params=BACKENDS)
def backend_settings(request, tmp_path) -> Settings:
    if request.param == "postgres":
        return Settings(database_url=request.getfixturevalue("postgres_url"))
    return Settings(data_dir=tmp_path / "data")


def test_a_stopped_archive_run_ends_after_the_batch_in_hand_and_the_next_run_goes_on(
    backend_settings, tmp_path, monkeypatch
):
    for module in (embedded_archive, postgres_archive_module()):
        if module is not None:
            monkeypatch.setattr(module, "BATCH_ROWS", 4)
    archive = tmp_path / "archive"
    storage = open_storage(backend_settings)
    try:
        storage.submit(_events(20)).result(timeout=30)
        Projector(storage, 1000).catch_up()
        before = product(storage, ORG, *DAYS)
        first = storage.archive(FUTURE_US, archive, StopsAfter(checks=1))  # the month check, then the first batch
        assert [(p.part, p.rows, p.first_seq, p.last_seq) for p in first.parts] == [(1, 4, 1, 4)]
        assert [e.seq for e in storage.log_entries(0, 100)] == list(range(5, 21))
        assert storage.archive(FUTURE_US, archive, StopsAfter(checks=0)).parts == ()  # stopped before any month
        rest = storage.archive(FUTURE_US, archive)
        assert [p.part for p in rest.parts] == [2] and rest.parts[0].first_seq == 5
        archived = sum(p.rows for p in (*first.parts, *rest.parts))
        assert storage.archived_entries() == archived
        assert product(storage, ORG, *DAYS) == before
        assert storage.restore_archive(archive).restored == archived
        assert [e.seq for e in storage.log_entries(0, 100)] == list(range(1, 21))
    finally:
        storage.close()


def postgres_archive_module():
    try:
        from agentdash.storage.postgres import archive
    except ImportError:  # psycopg is an optional driver
        return None
    return archive


def test_stopping_the_projector_job_does_not_wait_for_the_archive_run(tmp_path):
    started, finished = threading.Event(), threading.Event()

    def archive(stop: threading.Event) -> None:
        started.set()
        stop.wait(timeout=120)  # a long run that looks at its stop flag, as Storage.archive does between batches
        finished.set()

    storage = open_storage(Settings(data_dir=tmp_path / "data"))
    try:
        job = ProjectorJob(Projector(storage, 1000), 3600, archive)
        job.start()
        assert started.wait(timeout=30)
        stopper = threading.Thread(target=job.stop)
        stopper.start()
        stopper.join(timeout=60)
        assert not stopper.is_alive() and finished.is_set()
    finally:
        storage.close()


@NEEDS_POSTGRES
def test_postgres_workers_restoring_together_each_start_and_the_log_is_whole(postgres_url, tmp_path):
    archive = tmp_path / "shared-archive"
    settings = Settings(database_url=postgres_url, archive_dir=str(archive))
    storage = open_storage(settings)
    storage.submit(_events(60)).result(timeout=30)
    Projector(storage, 1000).catch_up()
    before = product(storage, ORG, *DAYS)
    assert storage.archive(FUTURE_US, settings.archive_path).rows == 59  # all but the newest entry
    storage.reset_read_models()  # as a read-model VERSION bump leaves them: every worker's start restores first
    storage.close()

    def start_worker(number: int) -> int:
        worker = open_storage(
            Settings(database_url=postgres_url, archive_dir=str(archive), data_dir=tmp_path / f"w{number}")
        )
        try:
            return worker.archived_entries()
        finally:
            worker.close()

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(start_worker, range(4))) == [0] * 4
    storage = open_storage(settings)
    try:
        assert [e.seq for e in storage.log_entries(0, 100)] == list(range(1, 61))
        Projector(storage, 1000).catch_up()
        assert product(storage, ORG, *DAYS) == before
    finally:
        storage.close()
