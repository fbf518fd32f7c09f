"""Dedupe: the in-memory DedupeIndex and the event log's "a re-sent (org_id, id) is a no-op" (SPEC §1)."""

from __future__ import annotations

import sqlite3
import threading

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentdash.config import load_settings
from agentdash.events import Event, dedupe_key, parse_event
from agentdash.storage import Overloaded, open_storage
from agentdash.storage.embedded import dedupe
from agentdash.storage.embedded import event_log as sqlite_log
from agentdash.storage.embedded.dedupe import DedupeIndex

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def as_model(index: DedupeIndex, keys) -> dict[int, list[int]]:
    """candidates() with each key's seqs sorted, for comparison with a plain dict."""
    return {k: sorted(v) for k, v in index.candidates(list(keys)).items()}


def expected(model: dict[int, list[int]], keys) -> dict[int, list[int]]:
    return {k: sorted(model[k]) for k in keys if k in model}


# ---------------------------------------------------------------- DedupeIndex


def test_lookups_across_the_recent_dict_and_merged_levels(monkeypatch):
    monkeypatch.setattr(dedupe, "RECENT_LIMIT", 4)
    index = DedupeIndex()
    model: dict[int, list[int]] = {}
    rng = np.random.default_rng(1)
    keys = [int(k) for k in rng.integers(INT64_MIN, INT64_MAX, size=300, dtype=np.int64, endpoint=True)]
    keys[:4] = [INT64_MIN, INT64_MAX, 0, -1]  # the extremes of the signed 64-bit range
    absent = [k + 1 for k in keys if k + 1 not in set(keys) and k != INT64_MAX][:50]
    for seq, key in enumerate(keys, start=1):
        index.add(key, seq)
        model.setdefault(key, []).append(seq)
        if seq % 17 == 0 or seq < 12:  # look up everything so far, at many points between merges
            assert as_model(index, keys[:seq] + absent) == expected(model, keys[:seq])
    assert len(index) == len(keys)
    # the lookups above really crossed merged levels, not just the dict of recent keys
    assert len(index._levels) >= 2
    assert max(len(level_keys) for level_keys, _ in index._levels) > 4 * 4
    assert len(index._recent) < 4
    assert index.candidates(absent) == {}
    assert index.candidates([]) == {}


def test_several_seqs_under_one_key_span_levels_and_the_recent_dict(monkeypatch):
    monkeypatch.setattr(dedupe, "RECENT_LIMIT", 3)
    index = DedupeIndex()
    shared = 12345
    seq = 0
    seqs_of_shared = []
    for round_ in range(5):
        seq += 1
        index.add(shared, seq)
        seqs_of_shared.append(seq)
        for filler in range(7):  # push the shared key's earlier seqs down into merged levels
            seq += 1
            index.add(10_000 * (round_ + 1) + filler, seq)
    seq += 1
    index.add(shared, seq)  # and one more that stays in the recent dict
    seqs_of_shared.append(seq)
    assert shared in index._recent
    assert any(shared in level_keys for level_keys, _ in index._levels)
    assert sorted(index.candidates([shared])[shared]) == seqs_of_shared
    # a key asked for together with others keeps its own seqs only
    found = index.candidates([10_001, shared, 50_006, 7])
    assert sorted(found[shared]) == seqs_of_shared
    assert found[10_001] == [3] and found[50_006] == [8 * 4 + 8]
    assert 7 not in found


def test_load_then_add(monkeypatch):
    monkeypatch.setattr(dedupe, "RECENT_LIMIT", 4)
    index = DedupeIndex()
    index.load(np.array([], dtype=np.int64), np.array([], dtype=np.int64))  # an empty log
    assert len(index) == 0 and index.candidates([1, 2]) == {}
    keys = np.array([9, -3, 9, INT64_MAX, 0, INT64_MIN, -3, 5], dtype=np.int64)  # unsorted, repeated keys
    seqs = np.arange(1, len(keys) + 1, dtype=np.int64)
    index.load(keys, seqs)
    assert len(index) == len(keys)
    assert as_model(index, [9, -3, INT64_MAX, 0, INT64_MIN, 5, 4]) == {
        9: [1, 3], -3: [2, 7], INT64_MAX: [4], 0: [5], INT64_MIN: [6], 5: [8],
    }  # fmt: skip
    for seq, key in enumerate([9, 100, 101, 102, 103, 104, -3], start=9):  # adds after start-up
        index.add(key, seq)
    assert as_model(index, [9, -3, 100, 104, 5]) == {9: [1, 3, 9], -3: [2, 7, 15], 100: [10], 104: [14], 5: [8]}
    assert len(index) == len(keys) + 7
    # load accepts plain lists too, and keeps what is already there
    index.load([77, 9], [16, 17])
    assert as_model(index, [77, 9]) == {77: [16], 9: [1, 3, 9, 17]}


def test_a_key_asked_for_twice_is_found(monkeypatch):
    monkeypatch.setattr(dedupe, "RECENT_LIMIT", 2)
    index = DedupeIndex()
    for seq, key in enumerate([5, 6, 7, 8, 5], start=1):
        index.add(key, seq)
    found = index.candidates([5, 8, 5, 99, 8])
    assert set(found) == {5, 8}
    assert set(found[5]) == {1, 5} and set(found[8]) == {4}


@settings(max_examples=150, deadline=None)
@given(
    recent_limit=st.integers(1, 6),
    merge_factor=st.integers(1, 5),
    preload=st.lists(st.integers(-4, 4) | st.sampled_from([INT64_MIN, INT64_MAX]), max_size=20),
    groups=st.lists(st.lists(st.integers(-6, 6) | st.integers(INT64_MIN, INT64_MAX), max_size=6), max_size=25),
    probes=st.lists(st.integers(-8, 8) | st.sampled_from([INT64_MIN, INT64_MAX]), max_size=10),
)
def test_dedupe_index_matches_a_dict(recent_limit, merge_factor, preload, groups, probes):
    """Keys added one by one or in groups (add_many, as the writer does), with repeats, against a dict."""
    old = dedupe.RECENT_LIMIT, dedupe.MERGE_FACTOR
    dedupe.RECENT_LIMIT, dedupe.MERGE_FACTOR = recent_limit, merge_factor
    try:
        index = DedupeIndex()
        model: dict[int, list[int]] = {}
        index.load(np.array(preload, dtype=np.int64), np.arange(1, len(preload) + 1, dtype=np.int64))
        for seq, key in enumerate(preload, start=1):
            model.setdefault(key, []).append(seq)
        seq = len(preload)
        for n, group in enumerate(groups):
            pairs = [(key, seq + i) for i, key in enumerate(group, start=1)]
            seq += len(group)
            if n % 2 and len(pairs) == 1:
                index.add(*pairs[0])
            else:
                index.add_many(pairs)
            for key, s in pairs:
                model.setdefault(key, []).append(s)
            probe = list(dict.fromkeys([*group, *probes]))  # distinct keys: each seq must appear once
            assert as_model(index, probe) == expected(model, probe)
        everything = list(dict.fromkeys([*model, *probes]))
        assert as_model(index, everything) == expected(model, everything)
        assert len(index) == seq
    finally:
        dedupe.RECENT_LIMIT, dedupe.MERGE_FACTOR = old


# ---------------------------------------------------------------- the event log


def wire(id_: str, org: str = "o1", type_: str = "message.sent", at: str = "2026-03-02T10:00:00Z", **extra) -> dict:
    event = {"id": id_, "type": type_, "org_id": org, "user_id": "u1", "session_id": "s1", "occurred_at": at}
    event.update(extra)
    return event


def parsed(*events: dict) -> list[Event]:
    return [parse_event(msgspec.json.encode(e)) for e in events]


def submit(storage, *events: dict) -> list[bool]:
    return storage.submit(parsed(*events)).result(timeout=30)


def logged(storage) -> list[tuple]:
    """(seq, org_id, id, type, occurred_us) of every log entry, in order."""
    chunk = storage.read_log(0, 1_000_000)
    if chunk is None:
        return []
    t = chunk.table.to_pydict()
    rows = list(zip(t["seq"], t["org_id"], t["id"], t["type"], t["occurred_us"]))
    assert chunk.last_seq == (rows[-1][0] if rows else 0)
    return rows


def identities(storage) -> list[tuple[str, str]]:
    return [(org, id_) for _, org, id_, _, _ in logged(storage)]


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "d"


@pytest.fixture
def storage(data_dir):
    s = open_storage(load_settings(data_dir=data_dir))
    yield s
    s.close()


class BlockingKey:
    """Stands in for dedupe_key inside the writer; stops the writer on the event with id 'block'."""

    def __init__(self, real=dedupe_key) -> None:
        self.real = real
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, org_id: str, event_id: str) -> int:
        if event_id == "block" and not self.release.is_set():
            self.entered.set()
            assert self.release.wait(30), "test never released the writer"
        return self.real(org_id, event_id)


def test_duplicates_within_one_submit(storage):
    a, b = wire("a"), wire("b")
    assert submit(storage, a, a, b, a, b, wire("c")) == [True, False, True, False, False, True]
    assert identities(storage) == [("o1", "a"), ("o1", "b"), ("o1", "c")]
    assert [seq for seq, *_ in logged(storage)] == [1, 2, 3]  # dense, copies take no seq
    assert storage.log_position().last_seq == 3


def test_duplicates_across_submits_and_orgs(storage):
    assert submit(storage, wire("a"), wire("b")) == [True, True]
    assert submit(storage, wire("b"), wire("c"), wire("a")) == [False, True, False]
    # the same id in another org is another event; the dedupe key is (org_id, id)
    assert submit(storage, wire("a", org="o2"), wire("a")) == [True, False]
    assert submit(storage, wire("a", org="o2")) == [False]
    # a re-sent id with other content is still a no-op: the first copy stays
    later = wire("c", type_="session.started", at="2026-03-05T00:00:00Z")
    assert submit(storage, later) == [False]
    rows = logged(storage)
    assert [(org, id_) for _, org, id_, _, _ in rows] == [("o1", "a"), ("o1", "b"), ("o1", "c"), ("o2", "a")]
    assert rows[2][3] == "message.sent"
    assert storage.log_position().last_seq == 4


def test_duplicates_across_queued_submits_in_one_group_commit(data_dir, monkeypatch):
    blocker = BlockingKey()
    monkeypatch.setattr(sqlite_log, "dedupe_key", blocker)
    storage = open_storage(load_settings(data_dir=data_dir))
    try:
        first = storage.submit(parsed(wire("block")))
        assert blocker.entered.wait(30)
        # these wait in the queue while the writer is held, then go into one transaction together
        futures = [
            storage.submit(parsed(wire("a"), wire("b"))),
            storage.submit(parsed(wire("b"), wire("c"), wire("a"))),
            storage.submit(parsed(wire("c"), wire("block"), wire("d"))),
        ]
        assert not any(f.done() for f in [first, *futures])  # nothing acknowledged before its commit
        blocker.release.set()
        assert first.result(timeout=30) == [True]
        assert [f.result(timeout=30) for f in futures] == [[True, True], [False, True, False], [False, False, True]]
        assert identities(storage) == [("o1", "block"), ("o1", "a"), ("o1", "b"), ("o1", "c"), ("o1", "d")]
    finally:
        blocker.release.set()
        storage.close()


def test_duplicates_across_reopen(data_dir, monkeypatch):
    monkeypatch.setattr(dedupe, "RECENT_LIMIT", 8)  # so the index also holds merged levels
    events = [wire(f"e{i:03d}", org=f"o{i % 3}") for i in range(60)]
    storage = open_storage(load_settings(data_dir=data_dir))
    try:
        assert submit(storage, *events) == [True] * 60
        assert submit(storage, *events[::7]) == [False] * len(events[::7])  # caught in the live index
    finally:
        storage.close()

    storage = open_storage(load_settings(data_dir=data_dir))  # the index is rebuilt from the log
    try:
        assert storage.log_position().last_seq == 60
        assert submit(storage, *events) == [False] * 60
        new = [wire(f"n{i}") for i in range(20)]
        assert submit(storage, events[5], *new, events[59]) == [False, *[True] * 20, False]
        assert [seq for seq, *_ in logged(storage)] == list(range(1, 81))  # seqs continue after the reopen
    finally:
        storage.close()

    storage = open_storage(load_settings(data_dir=data_dir))
    try:
        assert submit(storage, *new[::3], *events[::11]) == [False] * (len(new[::3]) + len(events[::11]))
        assert storage.log_position().last_seq == 80
        assert submit(storage, wire("e000", org="o9")) == [True]  # same id, an org never seen: new
    finally:
        storage.close()


def test_a_hash_collision_stores_both_events(data_dir, monkeypatch):
    colliding = {"a", "b", "c"}

    def fake_key(org_id: str, event_id: str) -> int:
        return 42 if event_id in colliding else dedupe_key(org_id, event_id)

    monkeypatch.setattr(sqlite_log, "dedupe_key", fake_key)
    storage = open_storage(load_settings(data_dir=data_dir))
    try:
        assert submit(storage, wire("a")) == [True]
        assert submit(storage, wire("b")) == [True]  # a hash hit is only a candidate: b is new
        assert submit(storage, wire("a"), wire("b")) == [False, False]  # real duplicates still caught
        assert submit(storage, wire("c"), wire("c"), wire("z")) == [True, False, True]  # in one batch too
        assert submit(storage, wire("a", org="o2")) == [True]  # colliding key, other org: new
        assert identities(storage) == [("o1", "a"), ("o1", "b"), ("o1", "c"), ("o1", "z"), ("o2", "a")]
    finally:
        storage.close()

    storage = open_storage(load_settings(data_dir=data_dir))  # the collision survives a reopen
    try:
        assert submit(storage, wire("b"), wire("c"), wire("a"), wire("a", org="o2")) == [False] * 4
        colliding.add("d")
        assert submit(storage, wire("d")) == [True]
        assert storage.log_position().last_seq == 6
    finally:
        storage.close()


def test_a_failed_write_acknowledges_nothing_and_dedupes_nothing(storage):
    good = parsed(wire("a"), wire("b"))
    broken = msgspec.structs.replace(parsed(wire("x"))[0], user_id=None)  # breaks NOT NULL in the log
    with pytest.raises(sqlite3.IntegrityError):
        storage.submit([*good, broken]).result(timeout=30)
    assert storage.log_position().last_seq == 0
    assert logged(storage) == []
    # the failed batch left no trace in the dedupe index: its events are new when sent again
    assert storage.submit(good).result(timeout=30) == [True, True]
    assert storage.submit(parsed(wire("x"))).result(timeout=30) == [True]
    assert storage.log_position().last_seq == 3


def test_a_bad_batch_in_a_group_commit_fails_alone(data_dir, monkeypatch):
    blocker = BlockingKey()
    monkeypatch.setattr(sqlite_log, "dedupe_key", blocker)
    storage = open_storage(load_settings(data_dir=data_dir))
    try:
        held = storage.submit(parsed(wire("block")))
        assert blocker.entered.wait(30)
        broken = msgspec.structs.replace(parsed(wire("x"))[0], user_id=None)
        # queued together, so they reach the writer as one group commit
        before = storage.submit(parsed(wire("a"), wire("b")))
        bad = storage.submit([*parsed(wire("c")), broken])
        after = storage.submit(parsed(wire("a"), wire("c"), wire("d")))
        blocker.release.set()
        assert held.result(timeout=30) == [True]
        assert before.result(timeout=30) == [True, True]
        with pytest.raises(sqlite3.IntegrityError):
            bad.result(timeout=30)
        # a is a copy of a committed event; c of the failed batch was never stored, so it is new here
        assert after.result(timeout=30) == [False, True, True]
        assert identities(storage) == [("o1", "block"), ("o1", "a"), ("o1", "b"), ("o1", "c"), ("o1", "d")]
    finally:
        blocker.release.set()
        storage.close()


def test_overloaded_when_the_queue_is_full(data_dir, monkeypatch):
    blocker = BlockingKey()
    monkeypatch.setattr(sqlite_log, "dedupe_key", blocker)
    storage = open_storage(load_settings(data_dir=data_dir, ingest_queue_limit=2))
    try:
        held = storage.submit(parsed(wire("block")))
        assert blocker.entered.wait(30)  # the writer took it off the queue and is stuck on it
        queued = [storage.submit(parsed(wire("q1"))), storage.submit(parsed(wire("q2")))]
        with pytest.raises(Overloaded):
            storage.submit(parsed(wire("refused")))
        with pytest.raises(Overloaded):  # still full: refusing does not make room
            storage.submit(parsed(wire("refused")))
        assert issubclass(Overloaded, RuntimeError)
        blocker.release.set()
        assert held.result(timeout=30) == [True]
        assert [f.result(timeout=30) for f in queued] == [[True], [True]]
        assert ("o1", "refused") not in identities(storage)  # nothing of a refused batch is stored
        assert submit(storage, wire("refused")) == [True]  # the producer's retry goes through
        assert storage.log_position().last_seq == 4
    finally:
        blocker.release.set()
        storage.close()
