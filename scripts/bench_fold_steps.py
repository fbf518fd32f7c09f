"""The embedded fold's CPU per event, step by step, against a baseline revision in the same run.

    .venv/bin/python scripts/bench_fold_steps.py --events 300000 --chunk 30000
    .venv/bin/python scripts/bench_fold_steps.py --events 1000000 --chunk 30000 --tail 20000 --tail-chunk 1000

Builds one event log (demo generator events through Storage.submit), reads its chunks into Arrow once (the bare
read: the baseline every fold pays on top), then folds those same tables into fresh read models with the baseline
revision's read_models.py + duckdb.sql (`--baseline`, default HEAD, read with `git show`) and with the working
tree's, alternately, `--repeats` times; the minimum of each figure is printed. CPU is time.process_time(): all of
the process's threads, DuckDB's included. `--tail` folds the last events in `--tail-chunk` chunks into the model
the rest built: the projector's steady state (small chunks into a big model). At the end every read model table
of both variants is compared row by row: the figures are only worth anything if the answers are the same.
"""

from __future__ import annotations

import argparse
import collections
import gc
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import bench  # noqa: E402  (scripts/bench.py: the shared demo event pool)

from agentdash.config import load_settings  # noqa: E402
from agentdash.events import parse_event  # noqa: E402
from agentdash.storage import open_storage  # noqa: E402
from agentdash.storage import queries as named_queries  # noqa: E402
from agentdash.storage.base import LogChunk  # noqa: E402
from agentdash.storage.embedded import event_log  # noqa: E402
from agentdash.storage.embedded import read_models as current_read_models  # noqa: E402

TABLES = ("runs", "sessions", "activity", "queued", "usage", "code_changes", "prs", "pr_texts", "checkpoint")


def baseline_module(rev: str) -> types.ModuleType:
    """read_models.py of `rev`, loading duckdb.sql of `rev`."""

    def show(path: str) -> str:
        return subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout

    source = show("agentdash/storage/embedded/read_models.py")
    text = show("agentdash/storage/sql/duckdb.sql")
    parts = named_queries._NAME.split(text)
    queries = named_queries.NamedQueries(
        "duckdb", {n: s.strip() for n, s in zip(parts[1::2], parts[2::2], strict=True)}
    )
    module = types.ModuleType(f"baseline_read_models_{rev}")
    module.__dict__["__file__"] = str(ROOT / "agentdash/storage/embedded/read_models.py")
    exec(compile(source, f"{rev}:read_models.py", "exec"), module.__dict__)
    module.__dict__["load_queries"] = lambda dialect, **_: queries
    return module


class TimedConnection:
    """Forwards to a DuckDB connection, adding each execute's CPU to the step whose SQL it ran."""

    def __init__(self, db, names: dict[str, str], times: collections.Counter) -> None:
        self._db, self._names, self._times = db, names, times

    def _step(self, sql: str) -> str:
        name = self._names.get(sql)
        if name is None:
            name = next((n for s, n in self._names.items() if sql in s), "other")  # a statement of a block
        return name

    def execute(self, sql, *args, **kwargs):
        started = time.process_time()
        try:
            return self._db.execute(sql, *args, **kwargs)
        finally:
            self._times[self._step(sql)] += time.process_time() - started

    def register(self, *args, **kwargs):
        started = time.process_time()
        try:
            return self._db.register(*args, **kwargs)
        finally:
            self._times["register"] += time.process_time() - started

    def unregister(self, *args, **kwargs):
        started = time.process_time()
        try:
            return self._db.unregister(*args, **kwargs)
        finally:
            self._times["register"] += time.process_time() - started

    def __getattr__(self, name):
        return getattr(self._db, name)


def step_names(sql) -> dict[str, str]:
    names = {text: name for name, text in sql.items() if name.startswith("fold_")}
    names.update({"BEGIN TRANSACTION": "commit", "COMMIT": "commit", "ROLLBACK": "commit"})
    names.update({sql[n]: "checkpoint" for n in ("save_checkpoint",)})
    return names


def fold_all(module: types.ModuleType, path: Path, chunks: list[LogChunk], tail_from: int) -> dict:
    """Fold the chunks into fresh read models at `path`; CPU per step, per chunk, and wall time."""
    models = module.DuckdbReadModels(path)
    steps: collections.Counter = collections.Counter()
    tail_steps: collections.Counter = collections.Counter()
    models._db = TimedConnection(models._db, step_names(models._sql), steps)
    per_chunk: list[float] = []
    gc.collect()
    wall = time.perf_counter()
    cpu = time.process_time()
    tail_cpu = 0.0
    for i, chunk in enumerate(chunks):
        if i == tail_from:
            models._db._times = tail_steps
        started = time.process_time()
        models.fold(chunk)
        per_chunk.append(time.process_time() - started)
        if i >= tail_from:
            tail_cpu += per_chunk[-1]
    result = {
        "cpu": time.process_time() - cpu,
        "wall": time.perf_counter() - wall,
        "steps": steps,
        "tail_steps": tail_steps,
        "per_chunk": per_chunk,
        "tail_cpu": tail_cpu,
    }
    models._db = models._db._db
    result["rows"] = {t: sorted(models._db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES[:-1]}
    models.close()
    return result


def read_chunks(storage, sizes: list[int]) -> tuple[list[LogChunk], float, float]:
    """The log in chunks of these sizes, as the projector reads them; CPU of the reads, and of _table in them."""
    table_cpu = [0.0]
    build = event_log._table

    def timed_table(columns):
        started = time.process_time()
        try:
            return build(columns)
        finally:
            table_cpu[0] += time.process_time() - started

    event_log._table = timed_table
    try:
        chunks, seq = [], 0
        started = time.process_time()
        for size in sizes:
            chunk = storage.read_log(seq, size)
            assert chunk is not None
            chunks.append(chunk)
            seq = chunk.last_seq
        return chunks, time.process_time() - started, table_cpu[0]
    finally:
        event_log._table = build


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--chunk", type=int, default=30_000)
    parser.add_argument("--tail", type=int, default=0, help="of the events, the last this many ...")
    parser.add_argument("--tail-chunk", type=int, default=1000, help="... folded in chunks of this size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", default="HEAD", help="git revision to compare with ('' for none)")
    parser.add_argument("--days", type=int, default=365, help="days per generated history")
    args = parser.parse_args()
    n, tail = args.events, min(args.tail, args.events)

    events = bench.pool(n, args.days)
    variants: dict[str, types.ModuleType] = {}
    if args.baseline:
        variants["baseline"] = baseline_module(args.baseline)
    variants["current"] = current_read_models
    head = n - tail
    sizes = [min(args.chunk, head - i) for i in range(0, head, args.chunk)]
    sizes += [min(args.tail_chunk, n - i) for i in range(head, n, args.tail_chunk)]
    tail_from = len(sizes) - (len(range(head, n, args.tail_chunk)) if tail else 0)

    with tempfile.TemporaryDirectory() as tmp:
        storage = open_storage(load_settings(data_dir=Path(tmp) / "d"))
        now = time.time_ns() // 1000
        encode = msgspec.json.encode
        for i in range(0, n, 5000):
            storage.submit([parse_event(encode(r), now) for r in events[i : i + 5000]]).result()
        reads = [read_chunks(storage, sizes)]  # the first from memory (RecentRows) as far as it holds them
        chunks = reads[0][0]
        for _ in range(args.repeats - 1):
            reads.append(read_chunks(storage, sizes))  # from the SQLite file
        storage.close()

        best: dict[str, dict] = {}
        for r in range(args.repeats):
            for name, module in variants.items():
                result = fold_all(module, Path(tmp) / f"{name}{r}.duckdb", chunks, tail_from)
                print(f"  [{name} run {r}] cpu {result['cpu'] / n * 1e6:.2f} us/event, wall {result['wall']:.1f} s",
                      file=sys.stderr)  # fmt: skip
                rows = result.pop("rows")
                if name not in best:
                    best[name] = {"rows": rows, "steps": collections.Counter(), "runs": []}
                best[name]["runs"].append(result)

    def us(seconds: float, events: int = n) -> str:
        return f"{seconds / events * 1e6:7.2f}"

    mem_read, mem_table = reads[0][1], reads[0][2]
    disk_read = min(x[1] for x in reads[1:]) if len(reads) > 1 else float("nan")
    disk_table = min(x[2] for x in reads[1:]) if len(reads) > 1 else float("nan")
    print(f"events {n:,}, chunks of {args.chunk:,} ({len(sizes)} chunks"
          + (f"; the last {tail:,} in chunks of {args.tail_chunk:,})" if tail else ")")
          + f"; min of {args.repeats} runs; CPU us/event")  # fmt: skip
    print(f"bare read into Arrow (baseline of every fold): first pass (RecentRows/disk) {us(mem_read)} "
          f"(_table {us(mem_table)}); from SQLite {us(disk_read)} (_table {us(disk_table)})")  # fmt: skip
    names = list(best)
    all_steps = sorted({s for v in best.values() for run in v["runs"] for s in run["steps"]},
                       key=lambda s: -max(run["steps"][s] for run in best[names[0]]["runs"]))  # fmt: skip
    print(f"{'step':22s}" + "".join(f"{name:>12s}" for name in names) + ("   (tail chunks:)" if tail else ""))
    for step in all_steps:
        print(f"  {step:20s}" + "".join(f"{us(min(run['steps'][step] for run in best[v]['runs']), head):>12s}" for v in names)
              + ("".join(f"{us(min(run['tail_steps'][step] for run in best[v]['runs']), tail):>12s}" for v in names)
                 if tail else ""))  # fmt: skip

    def fold_cpu(v: str) -> float:
        return min(run["cpu"] - run["tail_cpu"] for run in best[v]["runs"])

    print(f"{'fold total (cpu)':22s}" + "".join(f"{us(fold_cpu(v), head):>12s}" for v in names)
          + ("".join(f"{us(min(run['tail_cpu'] for run in best[v]['runs']), tail):>12s}" for v in names) if tail else ""))  # fmt: skip
    read_head = mem_read * head / n  # about: the read's share of the chunks before the tail
    print(f"{'fold + read (cpu)':22s}" + "".join(f"{us(fold_cpu(v) + read_head, head):>12s}" for v in names))
    print(f"{'fold wall s':22s}" + "".join(f"{min(run['wall'] for run in best[v]['runs']):12.2f}" for v in names))
    k = max(1, min(5, tail_from // 3))
    for label, lo, hi in (("first chunks", 0, k), ("last big chunks", tail_from - k, tail_from)):
        events_in = sum(sizes[lo:hi])
        print(f"{label + ' (per event)':22s}" + "".join(
            f"{us(min(sum(run['per_chunk'][lo:hi]) for run in best[v]['runs']), events_in):>12s}" for v in names))  # fmt: skip
    if tail:
        print(f"{'tail chunks (per ev.)':22s}" + "".join(
            f"{us(min(run['tail_cpu'] for run in best[v]['runs']), tail):>12s}" for v in names))  # fmt: skip
        chunks_n = len(sizes) - tail_from
        print(f"{'tail ms per chunk':22s}" + "".join(
            f"{min(run['tail_cpu'] for run in best[v]['runs']) / chunks_n * 1e3:12.2f}" for v in names))  # fmt: skip
    if len(names) == 2:
        a, b = (best[v]["rows"] for v in names)
        diff = [t for t in a if a[t] != b[t]]
        print("read models: " + (f"DIFFER in {', '.join(diff)}" if diff else "identical in every table"))
        return 1 if diff else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
