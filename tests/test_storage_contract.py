"""The storage contract: what every backend promises, checked on each (the `backend`/`storage` fixtures of conftest).

- dedupe for ever: a re-sent (org_id, id) is a no-op within a submit, across submits, orgs, group commits and reopens;
- group commit: batches queued together share one transaction, and none is acknowledged before its commit;
- failed writes: a batch the database refuses reports WriteRejected (never a driver's exception), fails alone when
  its group is retried batch by batch, and leaves no trace;
- overload: a full queue refuses at once with Overloaded, and the producer's retry goes through;
- `log_entries` reads back what was stored, field by field, alike on both backends;
- fold atomicity and checkpoint: a fold failing at any statement moves neither the checkpoint nor a number;
  checkpoint and numbers persist across a reopen;
- rebuild: reset_read_models + fold gives the incremental numbers;
- errors: storage and ingest key stores raise storage errors only;
- both SQL dialects define the same named read queries.
Backend-specific cases live in test_dedupe.py (the embedded dedupe index) and test_postgres.py (a shared database).
"""

from __future__ import annotations

import re
import sqlite3
import time
from importlib import resources
from random import Random

import duckdb
import msgspec
import pytest
from support import (
    D0,
    NEEDS_POSTGRES,
    ORG,
    QUERIES,
    Backend,
    HeldWriter,
    all_metrics,
    all_oracle,
    assert_all_same,
    identities,
    logged,
    parsed,
    product,
    random_events,
    submit,
    wire,
)

from agentdash.metrics import MetricsQuery
from agentdash.projector import Projector
from agentdash.storage import (
    IngestKeyStore,
    Overloaded,
    Storage,
    StorageError,
    Unavailable,
    WriteRejected,
)
from agentdash.storage.embedded import dedupe
from agentdash.storage.embedded import read_models as embedded_models
from agentdash.storage.queries import load_queries, render

try:  # psycopg is optional: without it the postgres params skip (support.NEEDS_POSTGRES)
    import psycopg

    from agentdash.storage.postgres import read_models as postgres_models
except ImportError:  # pragma: no cover
    psycopg = None  # type: ignore[assignment]
    postgres_models = None  # type: ignore[assignment]


def integrity_error(backend: Backend) -> type[Exception]:
    """The driver's exception for a constraint the data breaks, which the storage error must carry as its cause."""
    return sqlite3.IntegrityError if backend.name == "embedded" else psycopg.IntegrityError


# ---------------------------------------------------------------- dedupe for ever


def test_duplicates_within_one_submit(storage):
    a, b = wire("a"), wire("b")
    assert submit(storage, [a, a, b, a, b, wire("c")]) == [True, False, True, False, False, True]
    assert identities(storage) == [("o1", "a"), ("o1", "b"), ("o1", "c")]
    assert [seq for seq, *_ in logged(storage)] == [1, 2, 3]  # dense, copies take no seq
    assert storage.log_position().last_seq == 3


def test_duplicates_across_submits_and_orgs(storage):
    assert submit(storage, [wire("a"), wire("b")]) == [True, True]
    assert submit(storage, [wire("b"), wire("c"), wire("a")]) == [False, True, False]
    # the same id in another org is another event; the dedupe key is (org_id, id)
    assert submit(storage, [wire("a", org="o2"), wire("a")]) == [True, False]
    assert submit(storage, [wire("a", org="o2")]) == [False]
    # a re-sent id with other content is still a no-op: the first copy stays
    later = wire("c", type_="session.started", at="2026-03-05T00:00:00Z")
    assert submit(storage, [later]) == [False]
    rows = logged(storage)
    assert [(org, id_) for _, org, id_, _, _ in rows] == [("o1", "a"), ("o1", "b"), ("o1", "c"), ("o2", "a")]
    assert rows[2][3] == "message.sent"
    assert storage.log_position().last_seq == 4


def test_duplicates_across_queued_submits_in_one_group_commit(storage):
    held = HeldWriter(storage)
    try:
        first = storage.submit(parsed(wire("block")))
        assert held.entered.wait(30)
        # these wait in the queue while the writer is held, then go into one transaction together
        futures = [
            storage.submit(parsed(wire("a"), wire("b"))),
            storage.submit(parsed(wire("b"), wire("c"), wire("a"))),
            storage.submit(parsed(wire("c"), wire("block"), wire("d"))),
        ]
        assert not any(f.done() for f in [first, *futures])  # nothing acknowledged before its commit
        held.release.set()
        assert first.result(timeout=30) == [True]
        assert [f.result(timeout=30) for f in futures] == [[True, True], [False, True, False], [False, False, True]]
        assert identities(storage) == [("o1", "block"), ("o1", "a"), ("o1", "b"), ("o1", "c"), ("o1", "d")]
    finally:
        held.release.set()


def test_duplicates_across_reopen(backend, monkeypatch):
    monkeypatch.setattr(dedupe, "RECENT_LIMIT", 8)  # embedded: so the index also holds merged levels
    events = [wire(f"e{i:03d}", org=f"o{i % 3}") for i in range(60)]
    storage = backend.open()
    try:
        assert submit(storage, events) == [True] * 60
        assert submit(storage, events[::7]) == [False] * len(events[::7])  # caught in the live index
    finally:
        storage.close()

    storage = backend.open()  # embedded: the index is rebuilt from the log
    try:
        assert storage.log_position().last_seq == 60
        assert submit(storage, events) == [False] * 60
        new = [wire(f"n{i}") for i in range(20)]
        assert submit(storage, [events[5], *new, events[59]]) == [False, *[True] * 20, False]
        assert [seq for seq, *_ in logged(storage)] == list(range(1, 81))  # seqs continue after the reopen
    finally:
        storage.close()

    storage = backend.open()
    try:
        assert submit(storage, [*new[::3], *events[::11]]) == [False] * (len(new[::3]) + len(events[::11]))
        assert storage.log_position().last_seq == 80
        assert submit(storage, [wire("e000", org="o9")]) == [True]  # same id, an org never seen: new
    finally:
        storage.close()


def test_duplicates_are_refused_after_a_reopen(backend):
    events = random_events(seed=22, n_sessions=10)
    storage = backend.open()
    assert all(submit(storage, events))
    storage.close()
    storage = backend.open()
    try:
        extra = {**events[0], "id": "brand-new"}
        assert submit(storage, [*events[:5], extra, extra]) == [False] * 5 + [True, False]
        assert storage.log_position().last_seq == len(events) + 1
    finally:
        storage.close()


# ---------------------------------------------------------------- failed writes and overload


def test_a_failed_write_acknowledges_nothing_and_dedupes_nothing(backend, storage):
    good = parsed(wire("a"), wire("b"))
    broken = msgspec.structs.replace(parsed(wire("x"))[0], type=None)  # breaks NOT NULL in the log
    with pytest.raises(WriteRejected, match="(?i)null") as caught:
        storage.submit([*good, broken]).result(timeout=30)
    assert isinstance(caught.value.__cause__, integrity_error(backend))  # the driver's error stays behind the boundary
    assert storage.log_position().last_seq == 0
    assert logged(storage) == []
    # the failed batch left no trace in the dedupe index: its events are new when sent again
    assert storage.submit(good).result(timeout=30) == [True, True]
    assert storage.submit(parsed(wire("x"))).result(timeout=30) == [True]
    assert storage.log_position().last_seq == 3


def test_a_bad_batch_in_a_group_commit_fails_alone(backend, storage):
    held = HeldWriter(storage)
    try:
        first = storage.submit(parsed(wire("block")))
        assert held.entered.wait(30)
        broken = msgspec.structs.replace(parsed(wire("x"))[0], type=None)
        # queued together, so they reach the writer as one group commit
        before = storage.submit(parsed(wire("a"), wire("b")))
        bad = storage.submit([*parsed(wire("c")), broken])
        after = storage.submit(parsed(wire("a"), wire("c"), wire("d")))
        held.release.set()
        assert first.result(timeout=30) == [True]
        assert before.result(timeout=30) == [True, True]
        with pytest.raises(WriteRejected) as caught:
            bad.result(timeout=30)
        assert isinstance(caught.value.__cause__, integrity_error(backend))
        # a is a copy of a committed event; c of the failed batch was never stored, so it is new here
        assert after.result(timeout=30) == [False, True, True]
        assert identities(storage) == [("o1", "block"), ("o1", "a"), ("o1", "b"), ("o1", "c"), ("o1", "d")]
    finally:
        held.release.set()


def test_overloaded_when_the_queue_is_full(backend):
    storage = backend.open(ingest_queue_limit=2)
    held = HeldWriter(storage)
    try:
        first = storage.submit(parsed(wire("block")))
        assert held.entered.wait(30)  # the writer took it off the queue and is stuck on it
        queued = [storage.submit(parsed(wire("q1"))), storage.submit(parsed(wire("q2")))]
        with pytest.raises(Overloaded):
            storage.submit(parsed(wire("refused")))
        with pytest.raises(Overloaded):  # still full: refusing does not make room
            storage.submit(parsed(wire("refused")))
        assert issubclass(Overloaded, RuntimeError)
        assert issubclass(Overloaded, StorageError)
        held.release.set()
        assert first.result(timeout=30) == [True]
        assert [f.result(timeout=30) for f in queued] == [[True], [True]]
        assert ("o1", "refused") not in identities(storage)  # nothing of a refused batch is stored
        assert submit(storage, [wire("refused")]) == [True]  # the producer's retry goes through
        assert storage.log_position().last_seq == 4
    finally:
        held.release.set()
        storage.close()


# ---------------------------------------------------------------- reading the log back


def test_log_entries_read_back_every_stored_field_in_order(storage):
    before_us = time.time_ns() // 1000
    sent = parsed(
        wire("r1", type_="run.finished", run_id="run-1", team_id="t1", status="failed", failure_category="tool_error",
             input_tokens=12, output_tokens=3400, cost_usd=0.1 + 0.2, attributes={"model": "m1", "repo": "r", "n": 2,
             "agent": "codex"}),
        wire("m1"),
        wire("m1"),
        wire("m2", org="o2", at="2026-03-02T10:00:00.000001+05:30"),
    )  # fmt: skip
    assert storage.log_entries(0, 10) == []
    assert storage.submit(sent).result(timeout=30) == [True, True, False, True]
    after_us = time.time_ns() // 1000

    entries = storage.log_entries(0, 10)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert [e.event for e in entries] == [sent[0], sent[1], sent[3]]  # every field, money to the last bit
    assert entries[0].event.cost_usd == 0.1 + 0.2 and entries[0].event.model == "m1"
    assert (entries[0].event.agent, entries[1].event.agent) == ("codex", None)  # attributes.agent has its column
    assert all(before_us <= e.received_us <= after_us for e in entries)
    assert storage.log_entries(0, 2) == entries[:2]
    assert storage.log_entries(1, 1) == [entries[1]]
    assert storage.log_entries(3, 10) == []


# ---------------------------------------------------------------- fold atomicity, checkpoint, reopen, rebuild


class FailingConnection:
    """Wraps the read models' fold connection; raises instead of running the n-th fold statement."""

    def __init__(self, inner, fail_at: int) -> None:
        self.inner = inner
        self.fail_at = fail_at
        self.statements: list[str] = []

    def execute(self, sql, *args, **kwargs):
        if sql.strip().upper() != "ROLLBACK":
            self.statements.append(sql)
            if len(self.statements) == self.fail_at:
                raise RuntimeError(f"injected failure at statement {self.fail_at}")
        return self.inner.execute(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


# Statements of one fold through the fold connection's execute. Embedded: BEGIN, the fold steps, save_checkpoint,
# COMMIT. Postgres: the fold lock, the checkpoint, each step's statements, save_checkpoint (COMMIT is the
# transaction block's own).
EMBEDDED_FOLD_STATEMENTS = 1 + len(embedded_models.FOLD_STEPS) + 2
POSTGRES_FOLD_STATEMENTS = (
    2 + sum(len(postgres_models.SQL.statements(step)) for step in postgres_models.FOLD_STEPS) + 1
    if postgres_models is not None
    else 0
)
FOLD_FAILURES = [pytest.param("embedded", n, id=f"embedded-{n}") for n in range(2, EMBEDDED_FOLD_STATEMENTS + 1)] + [
    pytest.param("postgres", n, id=f"postgres-{n}", marks=NEEDS_POSTGRES)
    for n in range(2, POSTGRES_FOLD_STATEMENTS + 1)
]


@pytest.mark.parametrize(("backend", "fail_at"), FOLD_FAILURES, indirect=["backend"])
def test_a_fold_that_fails_midway_moves_nothing(storage, fail_at):
    events = random_events(seed=11, n_sessions=12)
    first, second = events[: len(events) // 2], events[len(events) // 2 :]
    projector = Projector(storage, chunk_size=len(events))
    submit(storage, first)
    projector.catch_up()
    before_state = storage.fold_state()
    before = all_metrics(storage)
    assert before_state.seq == len(first)
    assert_all_same(before, all_oracle(first))

    submit(storage, second + first[:5])  # new events and some copies
    # Storage.fold itself: the projector would retry the chunk, then bisect it (test_dead_letters.py).
    chunk = storage.read_log(before_state.seq, len(events))
    assert chunk is not None
    models = storage._models  # white box: the fold's connection (Postgres opened it at the first fold)
    real = models._db
    models._db = failing = FailingConnection(real, fail_at)
    try:
        with pytest.raises(RuntimeError, match="injected failure"):
            storage.fold(chunk)
    finally:
        models._db = real
    assert len(failing.statements) == fail_at  # it did fail where asked, after fail_at - 1 statements ran

    assert storage.fold_state() == before_state  # the checkpoint did not move
    assert projector.status().lag_events == len(second)
    assert_all_same(all_metrics(storage), before)  # no half-folded chunk is visible

    assert projector.catch_up() == len(second)  # the retry folds the same entries
    assert_all_same(all_metrics(storage), all_oracle(events))  # nothing lost, nothing counted twice


def test_checkpoint_and_numbers_persist_across_reopen(backend):
    events = random_events(seed=13, n_sessions=20)
    first, second = events[:60], events[60:]
    storage = backend.open()
    try:
        submit(storage, first)
        Projector(storage, chunk_size=7).catch_up()
        state, numbers = storage.fold_state(), all_metrics(storage)
    finally:
        storage.close()
    assert state.seq == len(first) and state.folded_at_us is not None

    storage = backend.open()
    try:
        assert storage.fold_state() == state
        assert_all_same(all_metrics(storage), numbers)
        assert_all_same(numbers, all_oracle(first))
        assert Projector(storage).catch_up() == 0  # nothing is folded a second time
        # after the reopen, old copies are refused (the dedupe index is rebuilt) and new events fold on
        assert submit(storage, first[:10] + second) == [False] * 10 + [True] * len(second)
        assert Projector(storage, chunk_size=5).catch_up() == len(second)
        assert_all_same(all_metrics(storage), all_oracle(events))
        final_state = storage.fold_state()
    finally:
        storage.close()

    storage = backend.open()
    try:
        assert storage.fold_state() == final_state
        assert final_state.seq == len(events)
        assert_all_same(all_metrics(storage), all_oracle(events))
    finally:
        storage.close()


def test_rebuild_gives_the_incremental_numbers(storage):
    events = random_events(seed=7, n_sessions=40)
    rng = Random(8)
    delivery = events + rng.sample(events, 30)
    rng.shuffle(delivery)
    projector = Projector(storage, chunk_size=3)
    for start in range(0, len(delivery), 17):
        submit(storage, delivery[start : start + 17])
        projector.fold_once()  # folds lag behind arrivals: many small chunks
    assert projector.catch_up() > 0
    incremental = all_metrics(storage)
    assert_all_same(incremental, all_oracle(events))
    assert incremental[(ORG, *QUERIES[0])]["runs"] > 20  # the data set is not trivial

    storage.reset_read_models()
    assert storage.fold_state().seq == 0
    assert product(storage, ORG, *QUERIES[0][:2])["runs"] == 0  # the read models really are empty
    assert Projector(storage).catch_up() == len(events)
    assert_all_same(all_metrics(storage), incremental)


# ---------------------------------------------------------------- errors: storage errors only


def test_a_query_the_database_cannot_run_is_a_storage_error(backend, storage: Storage):
    params = {**MetricsQuery(ORG, D0, D0).params(), "from": 2**70, "group": "day"}  # a number no date column takes
    with pytest.raises(StorageError) as caught:
        storage.query("run_metrics", params)
    assert type(caught.value) is StorageError  # not a lost database, not refused data
    assert isinstance(caught.value.__cause__, duckdb.Error if backend.name == "embedded" else psycopg.Error)


def test_a_key_id_taken_twice_is_refused_with_a_storage_error(key_store: IngestKeyStore):
    key_store.add("0123456789ab", "first", ("acme",), b"\0" * 32)
    with pytest.raises(WriteRejected):
        key_store.add("0123456789ab", "second", ("globex",), b"\1" * 32)
    assert [(k.id, k.name, k.orgs) for k in key_store.list_keys()] == [("0123456789ab", "first", ("acme",))]


def test_the_error_types_are_one_family():
    for error in (Overloaded, Unavailable, WriteRejected):
        assert issubclass(error, StorageError)
    assert not issubclass(Unavailable, Overloaded)  # a read on a lost database is not "the log is busy"


# ---------------------------------------------------------------- the SQL dialects

# Blocks that only say how one backend keeps its data (schema, log, fold, checkpoint, locks): each file defines
# those its code runs. Everything else is a read query or a fragment render() pastes into one, and
# Storage.query(name) must mean the same on both.
BACKEND_BLOCKS = {
    "schema", "read_models", "drop_read_models", "load_version", "save_version", "load_checkpoint",
    "save_checkpoint", "lock_log", "append_events", "log_position", "log_end", "log_entries", "try_fold_lock",
    "wait_fold_lock", "fold_chunk", "fold_runs", "fold_sessions", "fold_activity", "fold_queued", "fold_usage",
    "fold_followed_up", "fold_prs", "fold_pr_links", "fold_pr_texts", "log_is_current", "upgrade_log", "fold_code",
    "run_metric_columns",  # a fragment of Postgres' run_metrics only (its two statements share the column list)
    "refolded_seqs", "save_refolded", "refold_chunk", "chunk_seqs", "forget_refolded",  # dead letters on retry
    "log_footprint",  # /metrics: the log's size (Postgres; the embedded log measures its files)
    "analyze_read_models",  # fresh planner statistics after big folds (Postgres)
    "log_is_partitioned", "partition_log_table", "partition_log_span", "partition_log_copy", "partition_exists",
    "try_archive_lock", "archive_lock", "archive_unlock", "archive_bounds", "archive_span", "archive_rows", "month_rows",
    "archive_delete", "archived_count", "restore_known", "restore_rows", "create_partition", "upgrade_partition",
    "drop_partition", "event_ids_missing", "event_ids_fill",  # retention and the log's monthly partitions (postgres/archive.py)
    "fold_cells", "run_metrics_cells", "usage_metrics_cells", "code_metrics_cells",  # embedded cells
    "group_quantiles_of_runs", "group_quantiles_of_days", "range_quantiles_of_runs",
    "range_quantiles_of_histogram",
}  # fmt: skip
# What metrics.py asks Storage.query for, and the stand-ins render() uses when runs are filtered by model, repo or
# agent.
READ_QUERIES = {
    "run_metrics", "failure_metrics", "session_metrics", "active_users", "rolling_active_users",
    "duration_histogram", "activity_keys", "run_keys", "usage_metrics", "usage_keys", "pr_metrics", "agent_prs",
    "time_to_merge_histogram", "code_metrics", "code_keys", "pr_keys",
}  # fmt: skip
SHARED_FRAGMENTS = {"who_filter", "run_filter", "activity_of_matching_runs", "sessions_of_matching_runs", "usage_items",
                    "code_items"}  # fmt: skip


def test_both_dialects_define_the_same_named_read_queries():
    duckdb_sql, postgres_sql = load_queries("duckdb"), load_queries("postgres")
    assert set(duckdb_sql) - BACKEND_BLOCKS == set(postgres_sql) - BACKEND_BLOCKS == READ_QUERIES | SHARED_FRAGMENTS
    # Each renders completely, grouped every way and with the run filters on or off, and takes the same parameters.
    for name in sorted(READ_QUERIES):
        for group in ("day", "team_id", "model", "agent"):
            for filters in ({}, {"model": "m1"}, {"agent": "codex"}):
                rendered = []
                for dialect in (duckdb_sql, postgres_sql):
                    text = render(dialect, name, {"group": group, **filters})
                    assert not re.search(r"\{\w+\}", text), f"{dialect.dialect}.sql {name}: a placeholder is left"
                    rendered.append(text)
                duckdb_params, postgres_params = (set(re.findall(r"\$(\w+)", text)) for text in rendered)
                assert duckdb_params == postgres_params, f"{name} ({group}, {filters}): parameters differ"


def test_no_pasted_fragment_ends_in_a_comment():
    """A fragment is pasted into the middle of a line: a trailing `--` comment would swallow the rest of that line."""
    for dialect in (load_queries("duckdb"), load_queries("postgres")):
        for name in (
            *SHARED_FRAGMENTS,
            "run_metric_columns",
            "group_quantiles_of_runs",
            "group_quantiles_of_days",
            "range_quantiles_of_runs",
            "range_quantiles_of_histogram",
        ):
            if name in dialect:
                assert not dialect[name].splitlines()[-1].lstrip().startswith("--"), f"{dialect.dialect}.sql {name}"


def test_one_loader_serves_every_backend_s_sql():
    files = sorted(path.stem for path in resources.files("agentdash.storage").joinpath("sql").iterdir())
    assert files == [
        "duckdb",
        "postgres",
        "postgres_agent_rules",
        "postgres_alerts",
        "postgres_dead_letters",
        "postgres_github_links",
        "postgres_ingest_keys",
        "postgres_rls",
        "postgres_sources",
        "sqlite",
        "sqlite_agent_rules",
        "sqlite_alerts",
        "sqlite_dead_letters",
        "sqlite_github_links",
        "sqlite_ingest_keys",
        "sqlite_sources",
    ]
    for dialect in files:
        assert load_queries(dialect) is load_queries(dialect)  # parsed once
        assert all(load_queries(dialect).statements(name) for name in load_queries(dialect))  # no empty block
    postgres = load_queries("postgres", pyformat=True)
    assert not any("$" in statement for name in postgres for statement in postgres.statements(name))
    assert "%(after_seq)s" in postgres.statement("log_entries")
    assert len(load_queries("sqlite").statements("connect")) == 4  # the log's PRAGMAs, comments dropped
    with pytest.raises(ValueError):
        load_queries("sqlite").statement("connect")  # several statements are not one
    with pytest.raises(KeyError, match=r"sql/sqlite\.sql has no block named 'nope'"):
        load_queries("sqlite").statements("nope")
