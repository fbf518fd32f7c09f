"""Cells (per org, day and team) answer exactly as the facts do, however the log arrived and was folded.

- The P95 interpolation from two ranks equals DuckDB's quantile_cont on any values.
- The cells a fold maintains equal the cells of one fold of the whole log, for events delivered in random order
  and folded in random chunks (an earlier event moves a run's anchor to another day, team or session).
- run_metrics, usage_metrics and code_metrics from cells equal the same queries over the facts, to the last bit,
  over a grid of ranges, groupings and team scopes; so do the org metrics and breakdowns built from them.
"""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from pathlib import Path

import duckdb
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import D0, N_DAYS, ORG, OTHER_ORG, random_events, submit

from agentdash.config import load_settings
from agentdash.metrics import MetricsQuery, breakdown, org_metrics
from agentdash.projector import Projector
from agentdash.storage import open_storage
from agentdash.storage.embedded import read_models
from agentdash.storage.embedded.cells import quantile_cont
from agentdash.storage.embedded.read_models import CELL_ANSWERS, SUMS_ONLY

CELL_TABLES = ("run_cells", "run_session_crossings", "usage_cells", "code_cells", "day_quantiles")
FIRST, LAST = D0 - timedelta(days=1), D0 + timedelta(days=N_DAYS + 1)


def folded(data_dir: Path, events: list[dict], seed: int | None):
    """A storage holding the events; in random order and random fold chunks when seeded, else in one fold."""
    storage = open_storage(load_settings(data_dir=data_dir))
    events = list(events)
    if seed is None:
        submit(storage, events)
        Projector(storage).catch_up()
        return storage
    rng = random.Random(seed)
    rng.shuffle(events)
    projector = Projector(storage, chunk_size=rng.randint(1, 40))
    at = 0
    while at < len(events):
        step = rng.randint(1, 60)
        submit(storage, events[at : at + step])
        at += step
        if rng.random() < 0.7:
            projector.fold_once()
    projector.catch_up()
    return storage


def cell_rows(storage) -> dict[str, list[tuple]]:
    db = storage._models._db
    rows = {table: sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr) for table in CELL_TABLES}
    histogram = "SELECT org_id, day, kind, bucket, n, list_sort(xs) FROM run_histogram"  # a list's order is arrival's
    rows["run_histogram"] = sorted(db.execute(histogram).fetchall(), key=repr)
    return rows


def queries() -> list[tuple[str, dict]]:
    """Every cell answer over ranges short and long, by day, team and user, unscoped, for a team, a user, a scope;
    the sums of usage and code also by model, repo and agent and filtered by each."""
    ranges = [(FIRST, LAST), (D0, D0), (D0 + timedelta(days=1), D0 + timedelta(days=3)), (LAST, LAST + timedelta(9))]
    scopes = [{}, {"team": "t1"}, {"teams": ["t2", "t3"]}, {"teams": []}, {"user": "u1"}, {"team": "t2", "user": "u2"}]
    finer = [{"model": m} for m in ("m1", "m3")] + [{"repo": r} for r in ("acme/web", "r")] + [{"agent": "codex"}]
    out = []
    for name in CELL_ANSWERS:
        groups = ("day", "team_id", "user_id") + (("model", "repo", "agent") if name in SUMS_ONLY else ())
        for (first, last), scope, group in [(r, s, g) for r in ranges for s in scopes for g in groups]:
            params = {**MetricsQuery(ORG, first, last).params(), **scope, "group": group}
            out.append((name, params))
        if name in SUMS_ONLY:
            for (first, last), scope, group in [(r, s, g) for r in ranges[:2] for s in finer for g in groups]:
                out.append((name, {**MetricsQuery(ORG, first, last).params(), **scope, "group": group}))
        out.append((name, {**MetricsQuery(OTHER_ORG, FIRST, LAST).params(), "group": "day"}))
    return out


def answers(storage, cells: bool) -> dict:
    storage._models.cells = cells
    got = {}
    for name, params in queries():
        rows = storage.query(name, dict(params))
        got[(name, repr(params))] = sorted((tuple(row) for row in rows), key=repr)
    query = MetricsQuery(ORG, FIRST, LAST)
    got["org"] = msgspec.to_builtins(org_metrics(storage, query))
    got["team t1"] = msgspec.to_builtins(org_metrics(storage, MetricsQuery(ORG, FIRST, LAST, team_id="t1")))
    got["by team"] = msgspec.to_builtins(breakdown(storage, query, "team"))
    got["by user"] = msgspec.to_builtins(breakdown(storage, query, "user"))
    got["user u1"] = msgspec.to_builtins(org_metrics(storage, MetricsQuery(ORG, FIRST, LAST, user_id="u1")))
    return got


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cells_answer_as_the_facts_do_for_any_delivery(tmp_path, seed):
    events = random_events(seed, n_sessions=30)
    shuffled = folded(tmp_path / "shuffled", events, seed)
    once = folded(tmp_path / "once", events, None)
    try:
        assert cell_rows(shuffled) == cell_rows(once)
        assert any(cell_rows(once)["run_session_crossings"]), "the data should hold sessions across cells"
        from_cells, from_facts = answers(shuffled, cells=True), answers(shuffled, cells=False)
        for key, want in from_facts.items():
            assert from_cells[key] == want, key
    finally:
        shuffled.close()
        once.close()


def test_run_metrics_with_a_finer_filter_come_from_the_facts_usage_and_code_from_cells(tmp_path):
    storage = folded(tmp_path / "d", random_events(4, n_sessions=10), None)
    try:
        models = storage._models
        base = MetricsQuery(ORG, FIRST, LAST).params()
        assert models._cell_answer("run_metrics", {**base, "group": "team_id"}) == "run_metrics_cells"
        assert models._cell_answer("run_metrics", {**base, "group": "user_id"}) == "run_metrics_cells"
        assert models._cell_answer("run_metrics", {**base, "group": "model"}) == "run_metrics"
        assert models._cell_answer("run_metrics", {**base, "repo": "r", "group": "day"}) == "run_metrics"
        assert models._cell_answer("usage_metrics", {**base, "model": "m", "group": "day"}) == "usage_metrics_cells"
        assert models._cell_answer("code_metrics", {**base, "group": "agent"}) == "code_metrics_cells"
        assert models._cell_answer("failure_metrics", {**base, "group": "day"}) == "failure_metrics"
    finally:
        storage.close()


def test_a_wrong_cell_is_caught(tmp_path):
    """The comparison above can fail: a cell off by one run, or a lost crossing, changes the answers."""
    storage = folded(tmp_path / "d", random_events(5, n_sessions=30), None)
    try:
        facts = answers(storage, cells=False)
        db = storage._models._db
        db.execute("UPDATE run_cells SET runs = runs + 1 WHERE rowid = (SELECT min(rowid) FROM run_cells)")
        assert answers(storage, cells=True) != facts
        db.execute("UPDATE run_cells SET runs = runs - 1 WHERE rowid = (SELECT min(rowid) FROM run_cells)")
        assert answers(storage, cells=True) == facts
        db.execute("DELETE FROM run_session_crossings")
        assert answers(storage, cells=True) != facts
        storage.close()
        storage = folded(tmp_path / "d2", random_events(5, n_sessions=30), None)
        db = storage._models._db
        # A range's P95 comes from the histogram's values: shift them and it moves.
        db.execute("UPDATE run_histogram SET xs = list_transform(xs, lambda x: x + 1)")
        assert answers(storage, cells=True)["org"]["run_duration_p95_s"] != facts["org"]["run_duration_p95_s"]
    finally:
        storage.close()


def test_a_day_range_without_runs_answers_as_the_facts(tmp_path):
    storage = folded(tmp_path / "d", random_events(6, n_sessions=5), None)
    try:
        far = date(2030, 1, 1)
        params = {**MetricsQuery(ORG, far, far + timedelta(days=3)).params(), "group": "day"}
        storage._models.cells = True
        from_cells = [tuple(r) for r in storage.query("run_metrics", dict(params))]
        storage._models.cells = False
        assert from_cells == [tuple(r) for r in storage.query("run_metrics", dict(params))]
    finally:
        storage.close()


integers = st.one_of(
    st.integers(-(10**7), 10**7), st.integers(0, 10**13), st.integers(10**15, 2**62), st.sampled_from([0, 1, -1])
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(integers, min_size=1, max_size=80))
def test_the_p95_interpolation_is_duckdbs(values):
    want = duckdb.execute("SELECT quantile_cont(x, 0.95) FROM (SELECT unnest($xs)::BIGINT AS x)", {"xs": values})
    ordered = sorted(values)
    rank = (len(values) - 1) * 0.95
    assert quantile_cont(ordered[math.floor(rank)], ordered[math.ceil(rank)], rank) == want.fetchone()[0]


def test_a_fold_checkpoints_once_the_wal_outgrows_the_database(tmp_path, monkeypatch):
    monkeypatch.setattr(read_models, "WAL_FLOOR_BYTES", 0)
    storage = open_storage(load_settings(data_dir=tmp_path / "d"))
    try:
        database = storage._models._path
        wal = database.with_name(database.name + ".wal")
        projector = Projector(storage, chunk_size=50)
        events = random_events(7, n_sessions=60)
        for at in range(0, len(events), 50):
            submit(storage, events[at : at + 50])
            projector.fold_once()
            assert not wal.exists() or wal.stat().st_size <= database.stat().st_size
        assert database.stat().st_size > 0
    finally:
        storage.close()
