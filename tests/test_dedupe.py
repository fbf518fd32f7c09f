"""Dedupe in the embedded backend: the in-memory DedupeIndex, and the log that checks its candidates (SPEC §1).

The dedupe contract of every backend (a re-sent (org_id, id) is a no-op) is in test_storage_contract.py.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from support import identities, submit, wire

from agentdash.config import load_settings
from agentdash.events import dedupe_key
from agentdash.storage import open_storage
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


# ---------------------------------------------------------------- the embedded event log
# What every backend promises about dedupe is in test_storage_contract.py; this is the embedded log's own way
# of keeping it: the in-memory index above, whose hits are only candidates.


def test_a_hash_collision_stores_both_events(tmp_path, monkeypatch):
    colliding = {"a", "b", "c"}

    def fake_key(org_id: str, event_id: str) -> int:
        return 42 if event_id in colliding else dedupe_key(org_id, event_id)

    monkeypatch.setattr(sqlite_log, "dedupe_key", fake_key)
    data_dir = tmp_path / "d"
    storage = open_storage(load_settings(data_dir=data_dir))
    try:
        assert submit(storage, [wire("a")]) == [True]
        assert submit(storage, [wire("b")]) == [True]  # a hash hit is only a candidate: b is new
        assert submit(storage, [wire("a"), wire("b")]) == [False, False]  # real duplicates still caught
        assert submit(storage, [wire("c"), wire("c"), wire("z")]) == [True, False, True]  # in one batch too
        assert submit(storage, [wire("a", org="o2")]) == [True]  # colliding key, other org: new
        assert identities(storage) == [("o1", "a"), ("o1", "b"), ("o1", "c"), ("o1", "z"), ("o2", "a")]
    finally:
        storage.close()

    storage = open_storage(load_settings(data_dir=data_dir))  # the collision survives a reopen
    try:
        assert submit(storage, [wire("b"), wire("c"), wire("a"), wire("a", org="o2")]) == [False] * 4
        colliding.add("d")
        assert submit(storage, [wire("d")]) == [True]
        assert storage.log_position().last_seq == 6
    finally:
        storage.close()


# ---------------------------------------------------------------- the dedupe snapshot
# A clean close saves the index beside the log; a start loads it and reads only the entries after it.


def _start(data_dir, caplog) -> tuple[object, int]:
    """An opened storage, and how many keys its start read from the log (not from the snapshot)."""
    caplog.clear()
    with caplog.at_level("INFO", logger=sqlite_log.__name__):
        storage = open_storage(load_settings(data_dir=data_dir))
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dedupe index:")]
    return storage, int(line.split("(")[1].split()[0])


def test_a_start_reads_the_snapshot_and_only_the_entries_after_it(tmp_path, caplog, monkeypatch):
    data_dir = tmp_path / "d"
    first = open_storage(load_settings(data_dir=data_dir))
    assert submit(first, [wire(f"e{i}") for i in range(300)]) == [True] * 300
    first.close()
    assert (data_dir / "events-dedupe.npz").exists()

    second, read = _start(data_dir, caplog)
    assert read == 0  # all 300 from the snapshot
    assert submit(second, [wire(f"e{i}") for i in range(300)]) == [False] * 300
    assert submit(second, [wire(f"late{i}") for i in range(7)]) == [True] * 7
    with monkeypatch.context() as crash:  # as after kill -9: the log committed, no snapshot saved at close
        crash.setattr(sqlite_log.SqliteEventLog, "_save_index", lambda self: None)
        second.close()

    third, read = _start(data_dir, caplog)
    try:
        assert read == 7  # the snapshot's 300, then the 7 logged after it
        assert submit(third, [wire(f"late{i}") for i in range(7)] + [wire("e0"), wire("new")]) == [False] * 8 + [True]
        assert third.log_position().last_seq == 308
    finally:
        third.close()


def test_a_snapshot_of_another_log_or_of_a_later_position_is_ignored(tmp_path, caplog):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for data_dir, prefix, n in ((ours, "o", 50), (theirs, "t", 80)):
        storage = open_storage(load_settings(data_dir=data_dir))
        submit(storage, [wire(f"{prefix}{i}") for i in range(n)])
        storage.close()
    snapshot = (ours / "events-dedupe.npz").read_bytes()

    (ours / "events-dedupe.npz").write_bytes((theirs / "events-dedupe.npz").read_bytes())  # another log's
    storage, read = _start(ours, caplog)
    try:
        assert read == 50 and "not this log's" in caplog.text  # rebuilt from the log
        assert submit(storage, [wire(f"o{i}") for i in range(50)]) == [False] * 50
        assert submit(storage, [wire(f"t{i}") for i in range(3)]) == [True] * 3  # theirs are not ours
    finally:
        storage.close()

    # Our own snapshot at seq 53, beside a copy of our log from when it ended at 50 (an older backup put back).
    (theirs / "events-dedupe.npz").unlink()
    later = (ours / "events-dedupe.npz").read_bytes()
    (ours / "events-dedupe.npz").write_bytes(snapshot)  # seq 50's: valid for a log of 53
    storage, read = _start(ours, caplog)
    storage.close()
    assert read == 3
    older = tmp_path / "older"
    older.mkdir()
    storage = open_storage(load_settings(data_dir=older))
    submit(storage, [wire(f"o{i}") for i in range(50)])
    storage.close()
    (older / "events-dedupe.npz").write_bytes(later)  # covers seq 53: this log ends at 50
    storage, read = _start(older, caplog)
    try:
        assert read == 50 and "not this log's" in caplog.text
    finally:
        storage.close()


def test_a_snapshot_whose_keys_are_out_of_order_is_ignored(tmp_path, caplog):
    """A start trusts the snapshot's order (it sorts nothing), so keys out of order mean a rebuild, never a miss."""
    data_dir = tmp_path / "d"
    storage = open_storage(load_settings(data_dir=data_dir))
    submit(storage, [wire(f"e{i}") for i in range(40)])
    storage.close()
    path = data_dir / "events-dedupe.npz"
    with np.load(path) as saved:
        header, keys, seqs = saved["header"], saved["keys"], saved["seqs"]
    np.savez(path, header=header, keys=keys[::-1], seqs=seqs[::-1])  # every key still there, in the wrong order

    storage, read = _start(data_dir, caplog)
    try:
        assert read == 40 and "out of order" in caplog.text
        assert submit(storage, [wire(f"e{i}") for i in range(40)]) == [False] * 40
    finally:
        storage.close()
