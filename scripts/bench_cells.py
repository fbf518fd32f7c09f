"""Year answers from the cells against the same answers from the facts, in the same run, at 1x and N x the demo org.

    .venv/bin/python scripts/bench_cells.py                  # 1x and 10x, 5 timed repeats each
    .venv/bin/python scripts/bench_cells.py --sizes 1,10,30 --repeats 9

1x is the demo generator's year (150 people, 8 teams) through Storage.submit and one catch-up fold, cached in
~/.cache/agentdash-bench-cells/1x. N x copies its read models N times with every id (run, session, user, team)
suffixed per copy, and fold_cells rebuilds every cell: N times the people, teams, runs and sessions over the same
days, built in a minute rather than through N times the ingest (scripts/bench_scale.py measures that path). Each
answer is timed with cells on and off alternately (the read models' `cells` flag), and the two answers are compared:
the figures count only if equal.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import duckdb
import msgspec

from agentdash.config import load_settings
from agentdash.demo.generator import GeneratorConfig, generate
from agentdash.events import parse_event
from agentdash.metrics import MetricsQuery, breakdown, org_metrics
from agentdash.projector import Projector
from agentdash.storage import open_storage
from agentdash.storage.embedded.read_models import VERSION
from agentdash.storage.queries import load_queries

CACHE = Path.home() / ".cache" / "agentdash-bench-cells"
# Columns that name a person, team, run or session: suffixed per copy. The cells are then rebuilt by fold_cells.
IDS = {
    "runs": ("run_id", "user_id", "team_id", "session_id", "first_id"),
    "sessions": ("session_id", "user_id", "team_id", "first_id"),
    "activity": ("user_id", "team_id"),
    "queued": ("session_id", "user_id", "run_id"),
    "usage": ("run_id", "session_id"),
    "code_changes": ("id", "run_id", "session_id"),
    "prs": ("user_id", "team_id", "event_user_id", "event_team_id"),
}


def one_x() -> Path:
    """The demo year, logged and folded (built once per read-model version)."""
    path = CACHE / f"1x-v{VERSION}"
    if (path / "built").exists():
        return path
    shutil.rmtree(path, ignore_errors=True)
    started = time.perf_counter()
    events = generate(GeneratorConfig(days=365, seed=7))
    storage = open_storage(load_settings(data_dir=path))
    now = time.time_ns() // 1000
    for i in range(0, len(events), 5000):
        storage.submit([parse_event(msgspec.json.encode(e), now) for e in events[i : i + 5000]]).result()
    Projector(storage).catch_up()
    storage.close()
    (path / "built").touch()
    print(f"built 1x: {len(events):,} events in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def scaled(base: Path, size: int) -> Path:
    """A data dir whose read models hold `size` suffixed copies of the 1x ones (the log is the 1x log)."""
    if size == 1:
        return base
    path = CACHE / f"{size}x-v{VERSION}"
    if (path / "built").exists():
        return path
    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(base, path)
    db = duckdb.connect(str(path / "read_models.duckdb"))
    for table, ids in IDS.items():
        columns = [row[0] for row in db.execute(f"DESCRIBE {table}").fetchall()]
        db.execute(f"CREATE TEMP TABLE base AS SELECT * FROM {table}")
        for copy in range(1, size):
            picked = ", ".join(f"{c} || '~{copy}' AS {c}" if c in ids else c for c in columns)
            db.execute(f"INSERT INTO {table} SELECT {picked} FROM base")
        db.execute("DROP TABLE base")
    # Every day and session dirty: fold_cells rebuilds every cell from the copied facts, as a fold would.
    db.execute(
        "CREATE TEMP TABLE dirty_days AS SELECT DISTINCT org_id, day FROM runs UNION SELECT org_id, day FROM sessions"
    )
    db.execute("CREATE TEMP TABLE dirty_sessions AS SELECT DISTINCT org_id, session_id FROM runs")
    db.execute(load_queries("duckdb")["fold_cells"])
    db.execute("CHECKPOINT")
    runs = db.execute("SELECT count(*) FROM runs").fetchone()[0]
    db.close()
    (path / "built").touch()
    print(f"built {size}x: {runs:,} runs", flush=True)
    return path


def timed(storage, answer: Callable[[], object], repeats: int) -> tuple[list[float], list[float]]:
    """Milliseconds of the answer with cells on and off, alternating; the two answers must be equal."""
    times: dict[bool, list[float]] = {True: [], False: []}
    results = {}
    for cells in (True, False):
        storage._models.cells = cells
        results[cells] = msgspec.to_builtins(answer())  # warm-up, and the answer to compare
    if results[True] != results[False]:
        raise SystemExit("cells and facts answer differently: the figures mean nothing")
    for _ in range(repeats):
        for cells in (True, False):
            storage._models.cells = cells
            started = time.perf_counter()
            answer()
            times[cells].append((time.perf_counter() - started) * 1000)
    return times[True], times[False]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def report(size: int, storage, repeats: int) -> None:
    end: date = storage._models._db.execute("SELECT max(day) FROM runs").fetchone()[0]
    year = MetricsQuery("demo", end - timedelta(days=364), end)
    team = min(row.key for row in storage.query("activity_keys", {**year.params(), "group": "team_id"}))
    answers = {
        "year metrics": lambda: org_metrics(storage, year),
        "last 30 days metrics": lambda: org_metrics(storage, MetricsQuery("demo", end - timedelta(days=29), end)),
        "year, one team": lambda: org_metrics(storage, MetricsQuery("demo", year.date_from, end, team_id=team)),
        "year by team": lambda: breakdown(storage, year, "team"),
        "year by user": lambda: breakdown(storage, year, "user"),
    }
    for name, answer in answers.items():
        cells, facts = timed(storage, answer, repeats)
        ratio = statistics.median(facts) / statistics.median(cells)
        print(f"{size:>3}x  {name:<24} {statistics.median(cells):8.0f} /{p95(cells):6.0f}    "
              f"{statistics.median(facts):8.0f} /{p95(facts):6.0f}    {ratio:9.1f}x", flush=True)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10", help="org sizes, multiples of the demo org (default 1,10)")
    parser.add_argument("--repeats", type=int, default=5, help="timed answers per path (after one warm-up)")
    args = parser.parse_args()
    base = one_x()
    print(f"{'size':>4}  {'answer':<24} {'cells p50/p95 ms':>18} {'facts p50/p95 ms':>18} {'facts/cells':>11}")
    for size in (int(s) for s in args.sizes.split(",")):
        storage = open_storage(load_settings(data_dir=scaled(base, size)))
        try:
            report(size, storage, args.repeats)
        finally:
            storage.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
