"""How agentdash's costs grow with the org (issue 14): the same year for a 1x, 10x (and 30x) org, side by side.

    .venv/bin/python scripts/bench_scale.py                            # 1x and 10x, embedded (~30 min on 2 cores)
    .venv/bin/python scripts/bench_scale.py --sizes 1,10,30 --backends embedded,postgres
    .venv/bin/python scripts/bench_scale.py --sizes 1 --days 30        # a smoke run

Each org is the demo generator's year with more people and teams (1x: 150 people in 8 teams, the demo;
10x: 1,500 in 40; 30x: 4,500 in 120), generated once into a cache of ready request bodies (so the generator's
own speed does not bound the ingest figure) and sent through the real ingest API by 2 client threads. For each
size and backend it prints: ingest rate, catch-up (last ack to fully folded), bytes per event on disk (the log,
and everything), the server's RSS (now and peak), restart time to /healthz, p50/p95 of the full-year metrics,
the last 30 days, every full-year breakdown and (with chromium) the year overview page; then the growth factor of
each figure from the smallest size to the largest. The smallest size is the baseline. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

import httpx
import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_postgres import pct  # noqa: E402

from agentdash.demo.generator import GeneratorConfig, generate_days, window  # noqa: E402
from agentdash.metrics import DIMENSIONS  # noqa: E402
from agentdash.testing import PostgresCluster, ServerProcess, postgres_bin_dir  # noqa: E402

ORGS = {1: (150, 8), 10: (1500, 40), 30: (4500, 120)}  # size -> (people, teams)
BATCH = 500
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "agentdash-bench-scale"


def org_config(size: int, days: int, end: dt.date) -> GeneratorConfig:
    people, teams = ORGS.get(size, (150 * size, 4 * size))
    return GeneratorConfig(days=days, people=people, teams=teams, end=end)


# --- request bodies, generated once ---------------------------------------------------------------


def cached_bodies(config: GeneratorConfig) -> Path:
    """A file of length-prefixed JSON bodies of BATCH events each, for this config (made on first use)."""
    path = CACHE / f"p{config.people}-t{config.teams}-d{config.days}-s{config.seed}-{config.end}.bodies"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    encode, batch, events, started = msgspec.json.encode, [], 0, time.perf_counter()
    with open(partial, "wb") as out:
        for day in generate_days(config):
            for event in day:
                batch.append(event)
                if len(batch) == BATCH:
                    _write_body(out, encode({"events": batch}))
                    events, batch = events + BATCH, []
            say_progress(f"generating {config.people} people: {events:,} events")
        if batch:
            _write_body(out, encode({"events": batch}))
    partial.rename(path)
    print(
        f"\n[bench] generated {config.people} people's year in {time.perf_counter() - started:.0f} s", file=sys.stderr
    )
    return path


def _write_body(out, body: bytes) -> None:
    out.write(struct.pack("<I", len(body)))
    out.write(body)


def read_bodies(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as source:
        while header := source.read(4):
            yield source.read(struct.unpack("<I", header)[0])


_last_progress = [0.0]


def say_progress(text: str) -> None:
    """At most one progress line on stderr every 5 s."""
    if time.monotonic() - _last_progress[0] > 5:
        _last_progress[0] = time.monotonic()
        print(f"[bench] {text}", file=sys.stderr, flush=True)


def post_bodies(url: str, path: Path, key: str, threads: int = 2) -> tuple[int, float]:
    """POST every body from `threads` keep-alive clients (retrying 429/503); returns (events acked, seconds)."""
    bodies, lock, acked = read_bodies(path), threading.Lock(), [0]
    errors: list[Exception] = []
    headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}

    def worker() -> None:
        with httpx.Client(timeout=120, trust_env=False, headers=headers) as client:
            while not errors:
                with lock:
                    body = next(bodies, None)
                if body is None:
                    return
                while (answer := client.post(url, content=body)).status_code in (429, 503):
                    time.sleep(0.05)
                if answer.status_code != 200:
                    errors.append(RuntimeError(f"ingest answered {answer.status_code}: {answer.text[:300]}"))
                    return
                with lock:
                    acked[0] += answer.json()["accepted"]
                    say_progress(f"sent {acked[0]:,} events")

    started = time.perf_counter()
    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return acked[0], time.perf_counter() - started


# --- one size on one backend ----------------------------------------------------------------------


@dataclass
class Figures:
    size: int
    backend: str
    events: int = 0
    ingest_per_s: float = 0.0
    catch_up_s: float = 0.0
    log_bytes_per_event: float = 0.0
    disk_bytes_per_event: float = 0.0
    rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    restart_s: float = 0.0
    timings_ms: dict[str, list[float]] = field(default_factory=dict)  # what -> each timed request


@contextmanager
def database(backend: str) -> Iterator[tuple[str, PostgresCluster | None]]:
    if backend != "postgres":
        yield "", None
        return
    bin_dir = postgres_bin_dir()
    assert bin_dir is not None, "main() checked that PostgreSQL is installed"
    cluster = PostgresCluster(bin_dir, fsync=True).start()
    try:
        yield cluster.create_database("bench"), cluster
    finally:
        cluster.stop()


def measure(size: int, backend: str, config: GeneratorConfig, bodies: Path, repeats: int, page: bool) -> Figures:
    figures = Figures(size, backend)
    with tempfile.TemporaryDirectory(prefix="agentdash-scale-") as tmp, database(backend) as (url, _):
        server = ServerProcess(Path(tmp) / "data", ingest_orgs=("demo",), database_url=url).start(timeout=120)
        try:
            figures.events, sent_s = post_bodies(f"{server.ingest_url}/v1/events", bodies, server.ingest_key)
            figures.ingest_per_s = figures.events / sent_s
            acked = time.perf_counter()
            server.wait_projected(timeout=7200, on_progress=lambda s: say_progress(f"folded {s['events_projected']:,}"))
            figures.catch_up_s = time.perf_counter() - acked
            time_answers(server, config, repeats, figures, page)
            assert server.process is not None
            figures.rss_mb, figures.peak_rss_mb = rss_mb(server.process.pid)
            log_bytes, all_bytes = disk_bytes(server, url)
            figures.log_bytes_per_event = log_bytes / figures.events
            figures.disk_bytes_per_event = all_bytes / figures.events
            server.stop()
            figures.restart_s = restart_to_healthz(server)
        finally:
            if server.process and server.process.poll() is None:
                server.stop()
    return figures


def time_answers(server: ServerProcess, config: GeneratorConfig, repeats: int, figures: Figures, page: bool) -> None:
    first, last = window(config)
    year = {"from": first.isoformat(), "to": last.isoformat()}
    month = {"from": (last - dt.timedelta(days=29)).isoformat(), "to": last.isoformat()}
    token = server.token("demo", user="bench-admin")
    api = f"{server.url}/api/v1/orgs/demo"
    requests = {"metrics, full year": ("/metrics", year), "metrics, last 30 days": ("/metrics", month)}
    requests |= {f"breakdown by {d}, full year": (f"/breakdown/{d}", year) for d in DIMENSIONS}
    with httpx.Client(timeout=300, trust_env=False, headers={"authorization": f"Bearer {token}"}) as client:
        for what, (path, params) in requests.items():
            say_progress(f"timing {what}")
            times = []
            for i in range(repeats + 1):
                started = time.perf_counter()
                client.get(api + path, params=params).raise_for_status()
                if i:  # the first request warms caches: not counted
                    times.append((time.perf_counter() - started) * 1000)
            figures.timings_ms[what] = times
    if page:
        figures.timings_ms["overview page, year"] = overview_page_ms(server, token, repeats)


def overview_page_ms(server: ServerProcess, token: str, repeats: int) -> list[float]:
    from browser import browser_page
    from ui_bench import time_page

    with browser_page() as browser:
        browser.goto(f"{server.url}/login?token={token}")
        times = [time_page(browser, f"{server.url}/?days=365") * 1000 for _ in range(min(repeats, 5) + 1)]
    return times[1:]


def rss_mb(pid: int) -> tuple[float, float]:
    """The server's resident memory now and its peak (VmRSS, VmHWM), in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def disk_bytes(server: ServerProcess, url: str) -> tuple[int, int]:
    """(the event log's bytes, every byte the backend keeps) on disk."""
    if not url:
        files = [p for p in server.data_dir.rglob("*") if p.is_file()]
        log = sum(p.stat().st_size for p in files if p.name.startswith("events.sqlite"))
        return log, sum(p.stat().st_size for p in files)
    import psycopg  # only with the postgres extra, which the postgres backend needs anyway

    with psycopg.connect(url) as db:
        (log,) = db.execute("SELECT coalesce(sum(pg_total_relation_size(oid)), 0) FROM pg_class "
                            "WHERE relname ~ '^events' AND relkind = 'r'").fetchall()[0]  # fmt: skip
        (everything,) = db.execute("SELECT pg_database_size(current_database())").fetchall()[0]
    return int(log), int(everything)


def restart_to_healthz(server: ServerProcess) -> float:
    """Seconds from exec of `agentdash serve` on the filled data dir to its first /healthz 200."""
    args = [*server.command, "serve", "--data-dir", str(server.data_dir), "--port", str(server.port),
            "--ingest-port", str(server.ingest_port), "--dev", *server._backend()]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                if httpx.get(f"{server.ingest_url}/healthz", timeout=2, trust_env=False).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"the restarted server exited with {process.returncode}")
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)


# --- report ---------------------------------------------------------------------------------------


def report(rows: list[Figures]) -> None:
    for backend in dict.fromkeys(f.backend for f in rows):
        mine = [f for f in rows if f.backend == backend]
        print(f"\n## {backend}: {', '.join(f'{f.size}x = {f.events:,} events' for f in mine)}; "
              f"{os.cpu_count()} cores shared with whatever else runs")  # fmt: skip
        lines: list[tuple[str, list[float], str]] = [
            ("ingest, events/s", [f.ingest_per_s for f in mine], ",.0f"),
            ("catch-up after last ack, s", [f.catch_up_s for f in mine], ".1f"),
            ("log bytes per event", [f.log_bytes_per_event for f in mine], ".0f"),
            ("all bytes on disk per event", [f.disk_bytes_per_event for f in mine], ".0f"),
            ("RSS after the queries, MB", [f.rss_mb for f in mine], ".0f"),
            ("peak RSS, MB", [f.peak_rss_mb for f in mine], ".0f"),
            ("restart to /healthz, s", [f.restart_s for f in mine], ".2f"),
        ]
        for what in mine[0].timings_ms:
            for q, name in ((0.5, "p50"), (0.95, "p95")):
                lines.append((f"{what} {name}, ms", [pct(f.timings_ms[what], q) for f in mine], ".0f"))
        header = "".join(f"{f'{f.size}x':>12}" for f in mine)
        growth = f"{f'growth {mine[0].size}x->{mine[-1].size}x':>20}" if len(mine) > 1 else ""
        print(f"  {'':44}{header}{growth}")
        for name, values, form in lines:
            cells = "".join(f"{format(v, form):>12}" for v in values)
            ratio = f"{values[-1] / values[0]:>19.1f}x" if len(values) > 1 and values[0] else ""
            print(f"  {name:44}{cells}{ratio}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10", help="org sizes, multiples of the demo org (default 1,10)")
    parser.add_argument("--backends", default="embedded", help="embedded and/or postgres, comma-separated")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeats", type=int, default=10, help="timed requests per answer (after one warm-up)")
    parser.add_argument("--no-page", action="store_true", help="skip the overview page (needs chromium)")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    backends = args.backends.split(",")
    if "postgres" in backends and postgres_bin_dir() is None:
        sys.exit("PostgreSQL is not installed (apt-get install postgresql)")
    from browser import chromium_path

    page = not args.no_page and chromium_path() is not None
    end = dt.datetime.now(dt.UTC).date()
    rows = []
    for size in sizes:
        config = org_config(size, args.days, end)
        bodies = cached_bodies(config)
        for backend in backends:
            print(f"[bench] {size}x on {backend} ...", file=sys.stderr, flush=True)
            rows.append(measure(size, backend, config, bodies, args.repeats, page))
    report(rows)
    if not page:
        print("\n(no overview page timings: chromium is not installed, or --no-page)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
