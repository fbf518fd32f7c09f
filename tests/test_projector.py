"""The projector folds the event log into read models whose metrics equal those of the distinct events.

Properties checked here (SPEC §1 last paragraph, §2–§3):
- any arrival order, duplication, batching, fold chunk size and fold timing gives the metrics of
  one in-order fold of the distinct events, and those equal the reference oracle's (embedded);
- the follow-up flag in every arrival order, one event per fold (each backend);
- a fold killed midway (SIGKILL, embedded) leaves the checkpoint where it was, and the next fold counts every
  event exactly once;
- ProjectionStatus counts what is logged, folded and still to fold (each backend).
Rebuild, a fold that fails midway and reopen are part of the storage contract: test_storage_contract.py.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import (
    D0,
    D0_US,
    FOUR_HOURS,
    HOUR,
    MINUTE,
    ORG,
    all_metrics,
    all_oracle,
    assert_all_same,
    assert_same,
    oracle,
    product,
    random_events,
    render_time,
    scenarios,
    submit,
)

from agentdash.config import load_settings
from agentdash.events import parse_event
from agentdash.projector import Projector
from agentdash.storage import open_storage
from agentdash.storage.embedded import read_models as duckdb_models

# ---------------------------------------------------------------- helpers


def open_at(data_dir: Path, **flags):
    return open_storage(load_settings(data_dir=data_dir, **flags))


def in_order_metrics(events: list[dict], data_dir: Path) -> dict:
    """Metrics of one in-order delivery and one fold of the distinct events."""
    storage = open_at(data_dir)
    try:
        if events:
            assert all(submit(storage, events))
        Projector(storage).catch_up()
        return all_metrics(storage)
    finally:
        storage.close()


# ---------------------------------------------------------------- property: any delivery, same metrics


@st.composite
def deliveries(draw, n: int):
    """A random permutation with random extra copies, cut into batches, with folds between them."""
    order = draw(st.permutations(range(n)))
    copies = draw(st.lists(st.integers(0, n - 1), max_size=n // 2 + 2)) if n else []
    sequence = list(order)
    for c in copies:
        sequence.insert(draw(st.integers(0, len(sequence))), c)
    cuts = sorted(draw(st.lists(st.integers(0, len(sequence)), max_size=6)))
    batches = [sequence[a:b] for a, b in zip([0, *cuts], [*cuts, len(sequence)], strict=True)]
    steps = []
    for batch in batches:
        together = draw(st.booleans())  # submit the batch in parts without waiting: one group commit
        fold = draw(st.sampled_from(["none", "once", "twice", "catch_up"]))
        steps.append((batch, together, fold))
    return draw(st.integers(1, 12)), steps


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(events=scenarios(), data=st.data())
def test_any_delivery_gives_the_metrics_of_the_distinct_events(events, data):
    chunk_size, steps = data.draw(deliveries(len(events)), label="delivery")
    with tempfile.TemporaryDirectory() as tmp:
        storage = open_at(Path(tmp) / "shuffled")
        projector = Projector(storage, chunk_size=chunk_size)
        try:
            stored = 0
            for batch, together, fold in steps:
                batch_events = [events[i] for i in batch]
                if together and len(batch_events) > 1:
                    half = len(batch_events) // 2
                    futures = [storage.submit([parse_event(msgspec.json.encode(e)) for e in part])
                               for part in (batch_events[:half], batch_events[half:])]  # fmt: skip
                    results = [r for f in futures for r in f.result(timeout=30)]
                elif batch_events:
                    results = submit(storage, batch_events)
                else:
                    results = []
                stored += sum(results)
                if fold == "once":
                    projector.fold_once()
                elif fold == "twice":
                    projector.fold_once()
                    projector.fold_once()
                elif fold == "catch_up":
                    projector.catch_up()
            assert stored == len(events)  # every distinct event stored once, every copy refused
            projector.catch_up()
            status = projector.status()
            assert (status.events_logged, status.events_projected, status.lag_events) == (len(events),) * 2 + (0,)
            shuffled = all_metrics(storage)
        finally:
            storage.close()
        once = in_order_metrics(events, Path(tmp) / "in-order")
    assert_all_same(shuffled, once)
    assert_all_same(shuffled, all_oracle(events))


def test_follow_up_in_another_chunk_than_the_handoff_in_every_order(storage):
    """The follow-up flag depends on events of two runs; each arrival order, one event per fold."""
    t = D0_US + 10 * HOUR

    def event(id_, type_, at, run, session="s1", user="u1", **extra):
        return {"id": id_, "type": type_, "org_id": ORG, "user_id": user, "session_id": session,
                "run_id": run, "occurred_at": render_time(at, 0), **extra}  # fmt: skip

    base = [
        event("a1", "run.queued", t, "r1"),
        event("a2", "run.started", t + MINUTE, "r1"),
        event("a3", "run.finished", t + 2 * MINUTE, "r1", status="succeeded"),
    ]
    moving = [
        event("b1", "handoff", t + HOUR, "r1"),
        # r2 is anchored in session s9 by its earliest event; its run.queued in s1 is the follow-up
        event("b2", "run.queued", t - HOUR, "r2", session="s9"),
        event("b3", "run.queued", t + HOUR + FOUR_HOURS, "r2"),  # exactly 4 h after the handoff
        event("b4", "handoff", t + 90 * MINUTE, "r1"),  # a later handoff does not move the window
    ]
    orders = list(itertools.permutations(moving))
    for k, order in enumerate(orders):  # one org per order, so one storage holds them all
        submit(storage, [{**e, "org_id": f"p{k}"} for e in [*base, *order]])
    Projector(storage, chunk_size=1).catch_up()
    for k, order in enumerate(orders):
        events = [{**e, "org_id": f"p{k}"} for e in [*base, *order]]
        got = product(storage, f"p{k}", D0, D0)
        want = oracle(events, f"p{k}", D0, D0)
        assert want["post_handoff_iteration_rate"] == 1.0
        assert_same(got, want, f"order {[e['id'] for e in order]}")


# ---------------------------------------------------------------- crash safety (embedded: the process dies)


# statements of one fold: BEGIN, the fold steps, save_checkpoint, COMMIT
FOLD_STATEMENTS = 1 + len(duckdb_models.FOLD_STEPS) + 2


KILL_MIDWAY = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import msgspec
    from agentdash.config import load_settings
    from agentdash.events import parse_event
    from agentdash.projector import Projector
    from agentdash.storage import open_storage

    data_dir, kill_at = Path(sys.argv[1]), int(sys.argv[2])
    events = msgspec.json.decode(Path(sys.argv[3]).read_bytes())
    storage = open_storage(load_settings(data_dir=data_dir))
    stored = storage.submit([parse_event(msgspec.json.encode(e)) for e in events]).result()
    print(sum(stored), flush=True)
    models = storage._models
    real = models._db

    class Killer:
        count = 0
        def execute(self, sql, *args, **kwargs):
            Killer.count += 1
            result = real.execute(sql, *args, **kwargs)
            if Killer.count == kill_at:  # this statement ran; the process dies before the next
                sys.stdout.write("killing\\n"); sys.stdout.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        def __getattr__(self, name):
            return getattr(real, name)

    models._db = Killer()
    Projector(storage, chunk_size=int(sys.argv[4])).catch_up()
    print("not killed")
    """
)


@pytest.mark.parametrize("kill_at", [2, FOLD_STATEMENTS - 1, FOLD_STATEMENTS + 3])
def test_sigkill_during_a_fold_loses_and_doubles_nothing(tmp_path, kill_at):
    events = random_events(seed=12, n_sessions=10)
    first, second = events[:40], events[40:]
    data_dir = tmp_path / "d"
    storage = open_at(data_dir)
    try:
        submit(storage, first)
        Projector(storage).catch_up()
    finally:
        storage.close()
    batch = tmp_path / "second.json"
    batch.write_bytes(msgspec.json.encode(second + first[:5]))
    chunk = len(second) // 2  # two chunks: kill_at past one fold's statements dies in the second
    done = subprocess.run(
        [sys.executable, "-c", KILL_MIDWAY, str(data_dir), str(kill_at), str(batch), str(chunk)],
        check=False, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    assert done.returncode == -9, done.stderr
    assert done.stdout == f"{len(second)}\nkilling\n"  # the copies were refused; it died mid-fold

    storage = open_at(data_dir)
    try:
        projector = Projector(storage)
        state = storage.fold_state().seq
        expected_seq = len(first) if kill_at <= FOLD_STATEMENTS - 1 else len(first) + chunk
        assert state == expected_seq  # the interrupted chunk's checkpoint never committed
        assert projector.status().events_logged == len(events)  # acknowledged events survived the kill
        assert projector.catch_up() == len(events) - state
        assert_all_same(all_metrics(storage), all_oracle(events))
    finally:
        storage.close()


# ---------------------------------------------------------------- ProjectionStatus


def test_projection_status_counts_logged_folded_and_lagging(storage):
    events = random_events(seed=14, n_sessions=6)
    n = len(events)
    assert n >= 10
    projector = Projector(storage, chunk_size=4)
    empty = projector.status()
    assert (empty.events_logged, empty.events_projected, empty.lag_events) == (0, 0, 0)
    assert empty.lag_seconds == 0.0 and empty.last_fold_at_us is None

    before_submit = time.time_ns() // 1000
    submit(storage, events + events[:3])  # copies are not logged
    status = projector.status()
    assert (status.events_logged, status.events_projected, status.lag_events) == (n, 0, n)
    assert status.last_fold_at_us is None
    assert 0.0 <= status.lag_seconds <= (time.time_ns() // 1000 - before_submit) / 1e6 + 0.001

    assert projector.fold_once() == 4
    status = projector.status()
    assert (status.events_logged, status.events_projected, status.lag_events) == (n, 4, n - 4)
    assert status.last_fold_at_us is not None and status.last_fold_at_us >= before_submit

    assert projector.catch_up() == n - 4
    status = projector.status()
    assert (status.events_logged, status.events_projected, status.lag_events) == (n, n, 0)
    assert status.lag_seconds == 0.0
    assert projector.fold_once() == 0

    submit(storage, events[:2])  # only copies: nothing new to fold
    assert projector.status().lag_events == 0
    extra = {**events[0], "id": "zz-new"}
    assert submit(storage, [extra]) == [True]
    status = projector.status()
    assert (status.events_logged, status.events_projected, status.lag_events) == (n + 1, n, 1)


def test_catch_up_leaves_what_arrives_during_its_last_fold_to_the_next_tick(storage):
    """A short chunk met the log's end: catch_up stops there instead of chasing a burst in small chunks."""
    events = random_events(seed=15, n_sessions=6)
    first, later = events[: len(events) // 2], events[len(events) // 2 :]
    submit(storage, first)
    projector = Projector(storage, chunk_size=len(events))
    read_log = storage.read_log

    def read_then_receive_more(after_seq, limit):
        chunk = read_log(after_seq, limit)
        if later:  # what the ingest API takes while this chunk folds
            submit(storage, [later.pop(0)])
        return chunk

    storage.read_log = read_then_receive_more
    try:
        assert projector.catch_up() == len(first)
        assert projector.status().lag_events == 1
        assert projector.catch_up() == 1
    finally:
        storage.read_log = read_log
