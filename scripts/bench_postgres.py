"""The Postgres backend beside the embedded one, measured in the same run on the same events.

    .venv/bin/python scripts/bench_postgres.py              # a year of demo data (~1.3M events), several minutes
    .venv/bin/python scripts/bench_postgres.py --days 30    # a smoke run

For each backend: a fresh `agentdash serve` (Postgres: a throwaway local cluster with fsync on), the
demo history sent through the ingest API (2 sender threads, 500 events a batch), the time projection
needs after the last ack, then full-year metrics requests (p50/p95). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

import httpx

from agentdash.demo import send
from agentdash.demo.generator import GeneratorConfig, generate, window
from agentdash.testing import (
    PostgresCluster,
    ServerProcess,
    postgres_bin_dir,
)


@dataclass(frozen=True)
class Figures:
    backend: str
    events: int
    ingest_per_s: float
    projected_after_s: float
    year_p50_ms: float
    year_p95_ms: float
    day_p95_ms: float


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@contextmanager
def server_on(backend: str):
    with tempfile.TemporaryDirectory(prefix="agentdash-bench-") as tmp:
        cluster = None
        url = ""
        if backend == "postgres":
            cluster = PostgresCluster(postgres_bin_dir(), fsync=True).start()
            url = cluster.create_database("bench")
        server = ServerProcess(Path(tmp) / "data", ingest_orgs=("demo",), database_url=url).start()
        try:
            yield server
        finally:
            server.stop()
            if cluster:
                cluster.stop()


def measure(backend: str, events: list[dict], config: GeneratorConfig, repeats: int) -> Figures:
    with server_on(backend) as server:
        print(f"[{backend}] sending {len(events):,} events ...", file=sys.stderr)
        stats = send(f"{server.ingest_url}/v1/events", events, batch_size=500, concurrency=2, token=server.ingest_key)
        acked = time.perf_counter()
        server.wait_projected(timeout=1800)
        projected_after = time.perf_counter() - acked
        first, last = window(config)
        headers = {"authorization": f"Bearer {server.token('demo')}"}
        with httpx.Client(timeout=120, trust_env=False, headers=headers) as client:

            def timings(params: dict) -> list[float]:
                out = []
                for i in range(repeats + 1):
                    t0 = time.perf_counter()
                    client.get(f"{server.url}/api/v1/orgs/demo/metrics", params=params).raise_for_status()
                    if i:  # the first call warms caches: not counted
                        out.append((time.perf_counter() - t0) * 1000)
                return out

            year = timings({"from": first.isoformat(), "to": last.isoformat()})
            day = timings({"from": last.isoformat(), "to": last.isoformat()})
    return Figures(backend, stats.accepted, stats.events_per_second, projected_after,
                   pct(year, 0.5), pct(year, 0.95), pct(day, 0.95))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    if postgres_bin_dir() is None:
        sys.exit("PostgreSQL is not installed (apt-get install postgresql)")
    config = GeneratorConfig(days=args.days)
    events = generate(config)
    rows = [measure(backend, events, config, args.repeats) for backend in ("embedded", "postgres")]
    print(
        f"\n{args.days}-day demo history, {len(events):,} events; {os.cpu_count()} cores shared with whatever else runs"
    )
    print(
        f"{'backend':10} {'ingest ev/s':>12} {'projected after':>16} {'year p50 ms':>12} {'year p95 ms':>12} {'1 day p95 ms':>13}"
    )
    for f in rows:
        print(f"{f.backend:10} {f.ingest_per_s:12,.0f} {f.projected_after_s:15.1f}s {f.year_p50_ms:12.1f} "
              f"{f.year_p95_ms:12.1f} {f.day_p95_ms:13.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
