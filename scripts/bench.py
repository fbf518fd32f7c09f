"""agentdash benchmarks (issue 2, "Speed"): each figure beside a baseline measured in the same run.

    .venv/bin/python scripts/bench.py            # full sizes, a few minutes on 2 cores
    .venv/bin/python scripts/bench.py --quick    # small sizes, a smoke test (~1 min)
    .venv/bin/python scripts/bench.py --only ingest

Every benchmark that talks HTTP starts its own `agentdash serve` subprocess on free ports with a
fresh temporary data dir. Nothing here asserts a timing: it prints figures, baselines, ratios and
whether the issue's target is met. Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

import httpx
import msgspec
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from agentdash.config import load_settings
from agentdash.demo import send
from agentdash.demo.generator import GeneratorConfig, generate, window
from agentdash.events import dedupe_key, parse_event
from agentdash.projector import Projector
from agentdash.storage import open_storage
from agentdash.storage.embedded.event_log import INSERT, SCHEMA, connect, event_row
from agentdash.testing import ServerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ("ingest", "otlp", "latency", "fold", "freshness", "metrics", "demo")


@dataclass(frozen=True)
class Sizes:
    ingest_events: int
    naive_sample: int  # rows timed into the naive (unique-indexed) table
    latency_prefill: int
    latency_seconds: float
    fold_events: int
    fresh_seconds: float
    metrics_days: int
    metrics_repeats: int
    demo_days: int
    pool_days: int  # days per generated history in the shared event pool


FULL = Sizes(600_000, 200_000, 1_000_000, 15, 1_000_000, 30, 365, 50, 365, 365)
QUICK = Sizes(100_000, 40_000, 100_000, 5, 200_000, 10, 30, 10, 30, 60)


# --- output -------------------------------------------------------------------------------------


class Progress:
    """One counter line on stderr, rewritten in place."""

    def __init__(self, label: str, total: int | None = None) -> None:
        self.label, self.total, self.done = label, total, 0
        self._last = 0.0
        self._lock = threading.Lock()
        self._started = time.perf_counter()
        self._tty = sys.stderr.isatty()

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            self._show()

    def set(self, value: int) -> None:
        with self._lock:
            self.done = value
            self._show()

    def _show(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < (0.25 if self._tty else 5.0):
            return
        self._last = now
        of = f"/{self.total:,}" if self.total else ""
        text = f"  {self.label}: {self.done:,}{of}  ({now - self._started:.1f} s)"
        sys.stderr.write(f"\r{text}\033[K" if self._tty else f"{text}\n")
        sys.stderr.flush()

    def close(self) -> None:
        with self._lock:
            self._show(force=True)
            if self._tty:
                sys.stderr.write("\n")
            sys.stderr.flush()


def note(text: str) -> None:
    sys.stderr.write(f"[bench] {text}\n")
    sys.stderr.flush()


def say(text: str = "") -> None:
    print(text, flush=True)


def pct(values: list[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default), q in [0, 1]."""
    data = sorted(values)
    if not data:
        return float("nan")
    pos = (len(data) - 1) * q
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


@dataclass
class Row:
    name: str
    figure: str
    baseline: str
    ratio: str
    target: str
    met: bool | None


RESULTS: list[Row] = []


# --- a real server subprocess ------------------------------------------------------------------


class Server(ServerProcess):
    """agentdash.testing.server_process.ServerProcess with the bench's patience and a progress line while folding."""

    def stop(self, timeout: float = 120) -> int | None:
        if self.process is None:
            return None
        try:
            return super().stop(timeout=timeout)
        except subprocess.TimeoutExpired:
            note(f"server {self.process.pid} did not stop in {timeout} s; killed it")
            return self.process.returncode

    def log(self) -> str:
        return super().log()[-4000:]

    def wait_projected(self, timeout: float = 600, label: str = "projected") -> tuple[dict, float]:
        """Wait until lag_events == 0; returns the last /status and the seconds waited."""
        started = time.perf_counter()
        progress: list[Progress] = []

        def show(status: dict) -> None:
            if status["lag_events"] and not progress:
                progress.append(Progress(label, status["events_logged"]))
            if progress:
                progress[0].set(status["events_projected"])

        status = super().wait_projected(timeout, on_progress=show)
        if progress:
            progress[0].close()
        return status, time.perf_counter() - started


class fresh_server:
    """`with fresh_server(*flags) as server:` a started server on its own temp data dir, stopped after."""

    def __init__(self, *extra: str) -> None:
        self.extra = extra

    def __enter__(self) -> Server:
        self.tmp = tempfile.TemporaryDirectory(prefix="agentdash-bench-")
        self.server = Server(Path(self.tmp.name) / "data", ingest_orgs=("demo", "fresh"))  # the orgs sent here
        started = time.perf_counter()
        self.server.start(*self.extra)
        note(
            f"server pid {self.server.process.pid} up in {time.perf_counter() - started:.1f} s "
            f"(ingest :{self.server.ingest_port}, dashboard :{self.server.port})"
        )
        return self.server

    def __exit__(self, *exc) -> None:
        started = time.perf_counter()
        code = self.server.stop()
        note(f"server stopped (exit {code}) in {time.perf_counter() - started:.1f} s")
        if code not in (0, None):
            note("server log tail:\n" + self.server.log())
        self.tmp.cleanup()


# --- event pool ----------------------------------------------------------------------------------

_POOL: list[dict] = []
_POOL_SEED = [42]


def pool(n: int, days: int) -> list[dict]:
    """At least n generator events (random uuid-shaped ids), generating more histories as needed.

    Histories with different seeds have different ids; the pool is shared by the benchmarks, but each
    benchmark's server starts empty, so reusing events across benchmarks is never a duplicate.
    """
    while len(_POOL) < n:
        seed = _POOL_SEED[0]
        started = time.perf_counter()
        events = generate(GeneratorConfig(days=days, seed=seed))
        _POOL.extend(events)
        _POOL_SEED[0] += 1
        note(f"generated {len(events):,} events (days={days}, seed={seed}) in {time.perf_counter() - started:.1f} s")
        gc.freeze()  # keep the cyclic GC from rescanning a million dicts again and again
    return _POOL[:n]


def encode_batches(events: list[dict], size: int) -> list[bytes]:
    return [msgspec.json.encode({"events": events[i : i + size]}) for i in range(0, len(events), size)]


def parsed_rows(events: list[dict], first_seq: int = 1) -> list[tuple]:
    """The rows the server's log would hold for these events: seq, dedupe key, received, event_row."""
    now_us = time.time_ns() // 1000
    rows = []
    encode = msgspec.json.encode
    for i, raw in enumerate(events):
        e = parse_event(encode(raw), now_us)
        rows.append((first_seq + i, dedupe_key(e.org_id, e.id), now_us, *event_row(e)))
    return rows


# --- 1. ingest throughput -----------------------------------------------------------------------


def post_all(url: str, bodies: list[bytes], counts: list[int], threads: int, progress: Progress,
             auth: dict[str, str]) -> tuple[float, list[tuple[float, int]], int]:  # fmt: skip
    """POST every body from `threads` keep-alive clients; returns wall seconds, (t, events) acks, retries."""
    lock = threading.Lock()
    next_index = [0]
    acks: list[tuple[float, int]] = []
    retries = [0]
    errors: list[BaseException] = []

    def worker() -> None:
        with httpx.Client(timeout=60, trust_env=False, headers={"content-type": "application/json", **auth}) as client:
            while True:
                with lock:
                    i = next_index[0]
                    next_index[0] += 1
                if i >= len(bodies) or errors:
                    return
                try:
                    while True:
                        r = client.post(url, content=bodies[i])
                        if r.status_code == 200:
                            break
                        if r.status_code in (429, 503):
                            with lock:
                                retries[0] += 1
                            time.sleep(0.05)
                            continue
                        raise RuntimeError(f"ingest answered {r.status_code}: {r.text[:300]}")
                    answer = msgspec.json.decode(r.content)
                    if answer["rejected"]:
                        raise RuntimeError(f"ingest rejected events: {answer['rejected'][:3]}")
                except BaseException as exc:
                    errors.append(exc)
                    return
                with lock:
                    acks.append((time.perf_counter(), counts[i]))
                progress.add(counts[i])

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    return seconds, [(t - started, n) for t, n in acks], retries[0]


def slowest_window(acks: list[tuple[float, int]], seconds: float, width: float = 5.0) -> float:
    """Lowest events/s over any full `width`-second window (sustained, not a burst average)."""
    if seconds < 2 * width:
        return float("nan")
    rates = []
    for start in range(int(seconds - width) + 1):
        n = sum(c for t, c in acks if start < t <= start + width)
        rates.append(n / width)
    return min(rates)


def bench_ingest(sizes: Sizes) -> None:
    say("\n## 1. ingest throughput (POST /v1/events, batches of 500, 2 client threads, random uuid ids)")
    events = pool(sizes.ingest_events, sizes.pool_days)
    bodies = encode_batches(events, 500)
    counts = [len(events[i : i + 500]) for i in range(0, len(events), 500)]
    with fresh_server() as server:
        progress = Progress("ingest events acknowledged", len(events))
        server_cpu, client_cpu = proc_cpu_s(server.process.pid), time.process_time()
        seconds, acks, retries = post_all(
            f"{server.ingest_url}/v1/events", bodies, counts, 2, progress, server.ingest_headers
        )
        server_cpu, client_cpu = proc_cpu_s(server.process.pid) - server_cpu, time.process_time() - client_cpu
        progress.close()
        logged = server.status()["events_logged"]
    rate = len(events) / seconds
    sustained = slowest_window(acks, seconds)

    note("building the same rows for the raw SQLite baselines")
    rows = parsed_rows(events)
    with tempfile.TemporaryDirectory(prefix="agentdash-bench-sqlite-") as tmp:
        ceiling = sqlite_ceiling(Path(tmp) / "ceiling.sqlite", rows)
        naive, naive_n = sqlite_naive(Path(tmp) / "naive.sqlite", rows, prefill=logged, sample=sizes.naive_sample)

    say(
        f"  events sent            {len(events):>12,}   in {seconds:.1f} s   (503 retries: {retries}; log holds {logged:,})"
    )
    say(f"  ingest over HTTP       {rate:>12,.0f} events/s   (slowest 5-s window {sustained:,.0f}/s)")
    say(
        f"  CPU while posting      server {server_cpu:.1f} s ({server_cpu / seconds:.0%} of a core, "
        f"{server_cpu / len(events) * 1e6:.1f} us/event incl. projector folds), bench client {client_cpu:.1f} s "
        f"({client_cpu / seconds:.0%})"
    )
    say(f"  append ceiling         {ceiling:>12,.0f} rows/s     raw executemany, no index, commit per 500")
    say(
        f"  naive unique index     {naive:>12,.0f} rows/s     INSERT OR IGNORE, UNIQUE(org_id, id), "
        f"{naive_n:,} rows into a table pre-filled to {logged:,}"
    )
    say(f"  ingest = {rate / ceiling:.0%} of the ceiling, {rate / naive:.1f}x the naive design")
    RESULTS.append(
        Row(
            "ingest events/s (HTTP, 500/batch)",
            f"{rate:,.0f}/s",
            f"ceiling {ceiling:,.0f}/s; naive {naive:,.0f}/s",
            f"{rate / ceiling:.0%} of ceiling, {rate / naive:.1f}x naive",
            ">= 60,000/s",
            rate >= 60_000,
        )
    )


def sqlite_ceiling(path: Path, rows: list[tuple]) -> float:
    """The append ceiling: the same rows, same table and PRAGMAs as the server's log, no dedupe at all."""
    db = connect(path)  # the log's own PRAGMAs: WAL, synchronous=NORMAL, cache_size, busy_timeout
    db.execute(SCHEMA)
    progress = Progress("ceiling rows", len(rows))
    started = time.perf_counter()
    for i in range(0, len(rows), 500):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(INSERT, rows[i : i + 500])
        db.execute("COMMIT")
        progress.add(len(rows[i : i + 500]))
    seconds = time.perf_counter() - started
    progress.close()
    db.close()
    return len(rows) / seconds


def sqlite_naive(path: Path, rows: list[tuple], prefill: int, sample: int) -> tuple[float, int]:
    """The naive design: dedupe by a unique index on (org_id, id), measured at the size the server ended at."""
    db = connect(path)
    db.execute(SCHEMA)
    # Pre-fill with `prefill` other rows (fresh uuid4 ids) and build the index once, in bulk.
    progress = Progress("naive pre-fill rows", prefill)
    template = rows[0]
    db.execute("BEGIN")
    for start in range(0, prefill, 50_000):
        part = []
        for seq in range(start + 1, min(start + 50_000, prefill) + 1):
            src = rows[(seq - 1) % len(rows)]
            event_id = str(uuid.uuid4())
            part.append((seq, dedupe_key(src[5], event_id), template[2], event_id, *src[4:]))
        db.executemany(INSERT, part)
        progress.add(len(part))
    db.execute("COMMIT")
    progress.close()
    db.execute("CREATE UNIQUE INDEX events_org_id ON events (org_id, id)")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    timed = [(prefill + i + 1, *row[1:]) for i, row in enumerate(rows[:sample])]
    insert = INSERT.replace("INSERT INTO", "INSERT OR IGNORE INTO")
    progress = Progress("naive timed rows", len(timed))
    started = time.perf_counter()
    for i in range(0, len(timed), 500):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(insert, timed[i : i + 500])
        db.execute("COMMIT")
        progress.add(len(timed[i : i + 500]))
    seconds = time.perf_counter() - started
    progress.close()
    db.close()
    return len(timed) / seconds, len(timed)


# --- 1b. OTLP logs ingest ------------------------------------------------------------------------

# One Claude Code prompt as it exports it: the prompt, three model calls, the answer (5 records, 6 events).
_PROMPT_RECORDS = ("user_prompt", "api_request", "api_request", "api_request", "assistant_response")


def _kv(key: str, value: str | int | float) -> KeyValue:
    if isinstance(value, str):
        return KeyValue(key=key, value=AnyValue(string_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(double_value=value))


def otlp_exports(n_records: int, per_export: int, users: int = 200) -> list[bytes]:
    """Claude-Code-shaped log exports (protobuf) of `per_export` records each, every record distinct."""
    exports, request, now_ns = [], ExportLogsServiceRequest(), time.time_ns()
    for i in range(n_records):
        if i % per_export == 0:
            if i:
                exports.append(request.SerializeToString())
            request = ExportLogsServiceRequest()
            resource = request.resource_logs.add()
            user = (i // per_export) % users
            resource.resource.attributes.extend([_kv("service.name", "claude-code"), _kv("service.version", "2.1.0"),
                                                 _kv("user.email", f"dev{user}@example.com"), _kv("team.id", "platform")])  # fmt: skip
            records = resource.scope_logs.add().log_records
        prompt, kind = i // len(_PROMPT_RECORDS), _PROMPT_RECORDS[i % len(_PROMPT_RECORDS)]
        record = records.add(time_unix_nano=now_ns - (n_records - i) * 1_000_000)
        record.body.string_value = f"claude_code.{kind}"
        record.attributes.extend([_kv("event.name", kind), _kv("session.id", f"ses-{prompt // 4}"),
                                  _kv("prompt.id", f"prompt-{prompt}"), _kv("event.sequence", i)])  # fmt: skip
        if kind == "api_request":
            record.attributes.extend([_kv("model", "claude-sonnet-4-5"), _kv("input_tokens", 1200 + i % 97),
                                      _kv("output_tokens", 80), _kv("cache_read_tokens", 900),
                                      _kv("cache_creation_tokens", 20), _kv("cost_usd", 0.0042)])  # fmt: skip
    exports.append(request.SerializeToString())
    return exports


def post_otlp(url: str, bodies: list[bytes], threads: int, progress: Progress, key: str, per_export: int) -> float:
    """POST every export from `threads` keep-alive clients, retrying 429/503; returns wall seconds."""
    lock, next_index, errors = threading.Lock(), [0], []
    headers = {"content-type": "application/x-protobuf", "authorization": f"Bearer {key}"}

    def worker() -> None:
        with httpx.Client(timeout=60, trust_env=False, headers=headers) as client:
            while True:
                with lock:
                    i = next_index[0]
                    next_index[0] += 1
                if i >= len(bodies) or errors:
                    return
                r = client.post(url, content=bodies[i])
                while r.status_code in (429, 503):
                    time.sleep(0.05)
                    r = client.post(url, content=bodies[i])
                answer = ExportLogsServiceResponse.FromString(r.content) if r.status_code == 200 else None
                if answer is None or answer.partial_success.rejected_log_records:
                    errors.append(RuntimeError(f"OTLP answered {r.status_code}: {r.content[:300]!r}"))
                    return
                progress.add(per_export)

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


def bench_otlp(sizes: Sizes) -> None:
    n = sizes.ingest_events // 2
    say("\n## 1b. OTLP logs ingest (POST /v1/logs, protobuf, 512 records per export, 2 client threads) vs JSON")
    exports = otlp_exports(n, 512)
    events = pool(n, sizes.pool_days)
    bodies = encode_batches(events, 500)
    counts = [len(events[i : i + 500]) for i in range(0, len(events), 500)]
    with fresh_server() as server:
        key = server.create_ingest_key("demo", name="bench-otlp")
        progress = Progress("OTLP records acknowledged", n)
        otlp_s = post_otlp(f"{server.ingest_url}/v1/logs", exports, 2, progress, key, 512)
        progress.close()
        otlp_events = server.status()["events_logged"]
        progress = Progress("JSON events acknowledged", len(events))
        json_s, _, _ = post_all(f"{server.ingest_url}/v1/events", bodies, counts, 2, progress, server.ingest_headers)
        progress.close()
        latency, base = otlp_latency(server, key, sizes.latency_seconds)
    with fresh_server("--otlp-workers", "0") as server:  # the baseline: every export translated in the server
        key = server.create_ingest_key("demo", name="bench-otlp")
        progress = Progress("OTLP records acknowledged (no workers)", n)
        in_server_s = post_otlp(f"{server.ingest_url}/v1/logs", exports, 2, progress, key, 512)
        progress.close()
    records_rate, otlp_event_rate, json_rate = n / otlp_s, otlp_events / otlp_s, len(events) / json_s
    say(f"  OTLP records           {records_rate:>12,.0f} records/s  ({n:,} records -> {otlp_events:,} events, "
        f"{otlp_event_rate:,.0f} events/s)")  # fmt: skip
    say(f"  without translate workers {n / in_server_s:>9,.0f} records/s  (--otlp-workers 0: "
        f"{in_server_s / otlp_s:.2f}x slower)")  # fmt: skip
    say(f"  JSON /v1/events        {json_rate:>12,.0f} events/s   (same server, same run)")
    per_event = (otlp_s / otlp_events) / (json_s / len(events))
    say(f"  time per event: OTLP {per_event:.2f}x JSON")
    p99, b99 = pct(latency, 0.99), pct(base, 0.99)
    say(f"  one export of 10 records at 50/s: p50 {pct(latency, 0.5):.2f} ms, p99 {p99:.2f} ms "
        f"(GET /healthz p99 {b99:.2f} ms)")  # fmt: skip
    RESULTS.append(Row("OTLP logs records/s (protobuf, 512/export)", f"{records_rate:,.0f}/s",
                       f"JSON {json_rate:,.0f} events/s", f"{per_event:.2f}x JSON per event",
                       ">= 50,000/s, <= 1.5x JSON", records_rate >= 50_000 and per_event <= 1.5))  # fmt: skip
    RESULTS.append(Row("OTLP export p99 @50/s (10 records)", f"{p99:.2f} ms", f"healthz p99 {b99:.2f} ms",
                       f"{p99 / b99:.1f}x", "p99 < 15 ms", p99 < 15))  # fmt: skip


def otlp_latency(server: Server, key: str, seconds: float) -> tuple[list[float], list[float]]:
    """Latency of single small exports at 50/s on one connection, beside GET /healthz at the same pace."""
    exports = otlp_exports(int(50 * seconds) * 10, 10, users=7)
    headers = {"content-type": "application/x-protobuf", "authorization": f"Bearer {key}"}
    with httpx.Client(timeout=10, trust_env=False) as client:
        health = f"{server.ingest_url}/healthz"
        for _ in range(50):
            client.get(health)
        base, _ = paced(client, lambda i: client.build_request("GET", health), 50, seconds, "GET /healthz (baseline)")
        latency, _ = paced(client, lambda i: client.build_request("POST", f"{server.ingest_url}/v1/logs",
                           content=exports[i], headers=headers), 50, seconds, "POST /v1/logs, 10 records")  # fmt: skip
    return latency, base


# --- 2. single-event POST latency ---------------------------------------------------------------


def paced(
    client: httpx.Client, make: Callable[[int], httpx.Request], rate: float, seconds: float, label: str
) -> tuple[list[float], float]:
    """Send `rate` requests/s for `seconds` on one keep-alive connection; per-request latency in ms."""
    n = int(rate * seconds)
    latencies = []
    progress = Progress(label, n)
    behind = 0
    started = time.perf_counter()
    for i in range(n):
        due = started + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        elif wait < -0.001:
            behind += 1
        request = make(i)
        t0 = time.perf_counter()
        response = client.send(request)
        latencies.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{request.url} answered {response.status_code}: {response.text[:300]}")
        progress.add()
    progress.close()
    achieved = n / (time.perf_counter() - started)
    if behind > n * 0.05:
        note(f"{label}: {behind} of {n} requests were sent > 1 ms late (the client fell behind its schedule)")
    return latencies, achieved


def bench_latency(sizes: Sizes) -> None:
    say(f"\n## 2. single-event POST latency at 200 requests/s (server holding ~{sizes.latency_prefill:,} events)")
    events = pool(sizes.latency_prefill, sizes.pool_days)
    with fresh_server() as server:
        progress = Progress("prefill events sent", len(events))
        stats = send(f"{server.ingest_url}/v1/events", events, batch_size=500, concurrency=2, progress=progress.add,
                     token=server.ingest_key)  # fmt: skip
        progress.close()
        note(f"prefill: {stats.accepted:,} accepted at {stats.events_per_second:,.0f}/s")
        status, _ = server.wait_projected(label="prefill projected")
        time.sleep(1.0)
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        n = int(200 * sizes.latency_seconds)
        bodies = [msgspec.json.encode({"events": [{
            "id": str(uuid.uuid4()), "type": "session.started", "org_id": "demo", "user_id": "bench-latency",
            "team_id": "platform", "session_id": f"ses-bench-{i}", "occurred_at": now,
        }]}) for i in range(n)]  # fmt: skip
        with httpx.Client(timeout=10, trust_env=False) as client:
            health = f"{server.ingest_url}/healthz"
            post = f"{server.ingest_url}/v1/events"
            for _ in range(50):  # warm the connection and both code paths
                client.get(health)
            warm = client.post(post, content=msgspec.json.encode({"events": [{
                "id": str(uuid.uuid4()), "type": "session.started", "org_id": "demo", "user_id": "bench-latency",
                "session_id": "ses-bench-warm", "occurred_at": now}]}), headers={"content-type": "application/json", **server.ingest_headers})  # fmt: skip
            warm.raise_for_status()
            base, base_rate = paced(
                client,
                lambda i: client.build_request("GET", health),
                200,
                sizes.latency_seconds,
                "GET /healthz (baseline)",
            )
            lat, lat_rate = paced(client, lambda i: client.build_request(
                "POST", post, content=bodies[i], headers={"content-type": "application/json", **server.ingest_headers}),
                200, sizes.latency_seconds, "POST /v1/events, 1 event")  # fmt: skip
        end = server.status()
    say(f"  log size during the test {status['events_logged']:,} -> {end['events_logged']:,} events")
    say(f"  {'':24} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}   rate")
    for name, values, achieved in (("POST 1 event (ms)", lat, lat_rate), ("GET /healthz (ms)", base, base_rate)):
        say(
            f"  {name:24} {pct(values, 0.5):8.2f} {pct(values, 0.95):8.2f} {pct(values, 0.99):8.2f} {max(values):8.2f}"
            f"   {achieved:.0f} req/s, n={len(values)}"
        )
    p99, b99 = pct(lat, 0.99), pct(base, 0.99)
    slow = sum(1 for v in lat if v > 10)
    say(
        f"  POST requests over 10 ms: {slow} of {len(lat)} ({slow / len(lat):.1%}); "
        f"healthz over 10 ms: {sum(1 for v in base if v > 10)}"
    )
    say(f"  POST p99 is {p99 / b99:.1f}x the bare HTTP round trip (+{p99 - b99:.2f} ms)")
    RESULTS.append(
        Row(
            "POST 1 event p99 @200 req/s",
            f"{p99:.2f} ms (p50 {pct(lat, 0.5):.2f})",
            f"healthz p99 {b99:.2f} ms",
            f"{p99 / b99:.1f}x",
            "p99 < 10 ms",
            p99 < 10,
        )
    )


# --- 3. projector fold rate and freshness -------------------------------------------------------


def bench_fold(sizes: Sizes) -> None:
    say(f"\n## 3a. projector fold rate (in a fresh process, {sizes.fold_events:,} events, default fold chunk)")
    # In a child process: this process holds the event pool, whose garbage-collector cost would slow
    # the Python side of the log read and make the figure depend on which benchmarks ran before.
    args = [sys.executable, __file__, "--fold-child"] + (["--quick"] if sizes is QUICK else [])
    out = subprocess.run(args, stdout=subprocess.PIPE, text=True, cwd=ROOT, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("FOLD_RESULT "))
    r = msgspec.json.decode(line.removeprefix("FOLD_RESULT "))
    folded, fold_s, logged, read_s, reads = r["folded"], r["fold_s"], r["logged"], r["read_s"], r["reads"]
    tick, tick_s = r["tick"], r["tick_s"]
    fold_rate, read_rate = folded / fold_s, logged / read_s
    say(f"  fold (read + fold)     {fold_rate:>12,.0f} events/s   {folded:,} events in {fold_s:.1f} s")
    say(
        f"  baseline: read only    {read_rate:>12,.0f} events/s   {logged:,} events in {read_s:.1f} s (SQLite -> Arrow; "
        f"passes {', '.join(f'{r:.1f}' for r in reads)} s)"
    )
    say(
        f"  fold step alone        {folded / max(fold_s - read_s, 1e-9):>12,.0f} events/s   "
        f"(catch_up minus the read: {fold_s - read_s:.1f} s)"
    )
    say(f"  one tick on a {logged:,}-event model: {tick:,} new events folded in {tick_s * 1000:.0f} ms")
    say(
        f"  folding runs at {fold_rate / read_rate:.0%} of the bare read rate; the read is {read_s / fold_s:.0%} of the fold time"
    )
    RESULTS.append(
        Row(
            "projector fold rate",
            f"{fold_rate:,.0f}/s",
            f"read-only {read_rate:,.0f}/s",
            f"{fold_rate / read_rate:.0%} of read",
            ">= 150,000/s",
            fold_rate >= 150_000,
        )
    )


def fold_child(sizes: Sizes) -> None:
    """Build a log of sizes.fold_events in process, then time read-only passes and Projector.catch_up."""
    events = pool(sizes.fold_events + 1000, sizes.pool_days)
    extra = events[sizes.fold_events :]
    events = events[: sizes.fold_events]
    with tempfile.TemporaryDirectory(prefix="agentdash-bench-fold-") as tmp:
        settings = load_settings(data_dir=Path(tmp) / "data")
        storage = open_storage(settings)
        try:
            progress = Progress("log entries written", len(events))
            now_us = time.time_ns() // 1000
            encode = msgspec.json.encode
            inflight = []
            for i in range(0, len(events), 500):
                batch = [parse_event(encode(raw), now_us) for raw in events[i : i + 500]]
                inflight.append(storage.submit(batch))
                if len(inflight) >= 16:
                    inflight.pop(0).result()
                progress.add(len(batch))
            for future in inflight:
                future.result()
            progress.close()
            logged = storage.log_position().last_seq
            del events, batch
            _POOL.clear()
            gc.unfreeze()
            gc.collect()

            reads = []
            for attempt in (1, 2):  # the first pass also warms the reader connection's page cache
                progress = Progress(f"baseline: log read into Arrow, pass {attempt}", logged)
                started = time.perf_counter()
                after = 0
                while (chunk := storage.read_log(after, settings.fold_chunk)) is not None:
                    after = chunk.last_seq
                    progress.set(after)
                reads.append(time.perf_counter() - started)
                progress.close()
                del chunk
            read_s = min(reads)

            note(f"folding {logged:,} events (Projector.catch_up, chunk {settings.fold_chunk:,})")
            projector = Projector(storage, settings.fold_chunk)
            started = time.perf_counter()
            folded = projector.catch_up()
            fold_s = time.perf_counter() - started

            # What one projector tick costs on a model this size: fold 1,000 new events.
            storage.submit([parse_event(encode(raw), now_us) for raw in extra]).result()
            started = time.perf_counter()
            tick = projector.fold_once()
            tick_s = time.perf_counter() - started
        finally:
            storage.close()
    result = {"folded": folded, "fold_s": fold_s, "logged": logged, "read_s": read_s, "reads": reads,
              "tick": tick, "tick_s": tick_s}  # fmt: skip
    print("FOLD_RESULT " + msgspec.json.encode(result).decode(), flush=True)


def bench_freshness(sizes: Sizes) -> None:
    rate, batch = 5000, 100
    say(
        f"\n## 3b. freshness at the default --projector-interval 1 under a steady {rate:,} events/s "
        f"({sizes.fresh_seconds:.0f} s)"
    )
    batches_n = int(sizes.fresh_seconds * rate / batch)
    every = 25  # one tagged event every 25 batches = 2 per second
    history = pool(batches_n * batch, sizes.pool_days)
    started_at = datetime.now(UTC)
    stamp = started_at.isoformat(timespec="milliseconds")
    day = started_at.date().isoformat()
    bodies, tags = [], 0
    for b in range(batches_n):
        part = history[b * batch : (b + 1) * batch]
        if b % every == 0:
            tags += 1
            part = part[:-1] + [{"id": str(uuid.uuid4()), "type": "session.started", "org_id": "fresh",
                                 "user_id": f"fresh-u-{tags:05d}", "session_id": f"fresh-s-{tags:05d}",
                                 "occurred_at": stamp}]  # fmt: skip
        bodies.append(msgspec.json.encode({"events": part}))

    with fresh_server() as server:
        token = server.token("fresh")
        samples: list[dict] = []  # per tag: t_ack, target seq, t_status, t_api
        lock = threading.Lock()
        done = threading.Event()
        max_lag = [0]
        errors: list[BaseException] = []

        def poller() -> None:
            metrics_url = f"{server.url}/api/v1/orgs/fresh/metrics"
            with httpx.Client(timeout=10, trust_env=False, headers={"authorization": f"Bearer {token}"}) as client:
                while not done.is_set() or any(s.get("t_api") is None for s in samples):
                    try:
                        status = client.get(f"{server.ingest_url}/status").json()
                        t = time.perf_counter()
                        max_lag[0] = max(max_lag[0], status["lag_events"])
                        with lock:
                            waiting = [s for s in samples if s.get("t_api") is None]
                            for s in samples:
                                if s.get("t_status") is None and status["events_projected"] >= s["target"]:
                                    s["t_status"] = t
                        if waiting:
                            r = client.get(metrics_url, params={"from": day, "to": day})
                            r.raise_for_status()
                            t = time.perf_counter()
                            visible = r.json()["active_users"] or 0
                            with lock:
                                for s in samples[:visible]:
                                    if s.get("t_api") is None:
                                        s["t_api"] = t
                        if done.is_set() and time.perf_counter() - done_at[0] > 60:
                            raise TimeoutError("tagged events still not visible 60 s after the last send")
                    except BaseException as exc:
                        errors.append(exc)
                        return
                    time.sleep(0.1)

        done_at = [0.0]
        poll_thread = threading.Thread(target=poller, daemon=True)
        poll_thread.start()
        progress = Progress("events sent", batches_n * batch)
        behind = 0
        with httpx.Client(
            timeout=30, trust_env=False, headers={"content-type": "application/json", **server.ingest_headers}
        ) as client:
            t0 = time.perf_counter()
            for b, body in enumerate(bodies):
                due = t0 + b * batch / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                else:
                    behind += 1
                r = client.post(f"{server.ingest_url}/v1/events", content=body)
                if r.status_code != 200:
                    raise RuntimeError(f"ingest answered {r.status_code}: {r.text[:300]}")
                t_ack = time.perf_counter()
                if b % every == 0:
                    target = client.get(f"{server.ingest_url}/status").json()["events_logged"]
                    with lock:
                        samples.append({"t_ack": t_ack, "target": target})
                progress.add(batch)
            send_s = time.perf_counter() - t0
        progress.close()
        done_at[0] = time.perf_counter()
        done.set()
        poll_thread.join(timeout=90)
        if errors:
            raise errors[0]
        # Confirm at the end: every tagged user is in the metrics API.
        r = httpx.get(
            f"{server.url}/api/v1/orgs/fresh/metrics",
            params={"from": day, "to": day},
            headers={"authorization": f"Bearer {token}"},
            trust_env=False,
            timeout=30,
        )
        final_users = r.json()["active_users"]
    achieved = batches_n * batch / send_s
    api = [s["t_api"] - s["t_ack"] for s in samples]
    by_status = [s["t_status"] - s["t_ack"] for s in samples if s.get("t_status") is not None]
    say(
        f"  sent {batches_n * batch:,} events at {achieved:,.0f}/s ({behind} of {batches_n} batches late); "
        f"{len(samples)} tagged events; max lag seen {max_lag[0]:,} events"
    )
    say(f"  end check: metrics API shows {final_users} of {tags} tagged users")
    say(f"  {'':34} {'p50':>7} {'p95':>7} {'max':>7}  (seconds, 100 ms polling)")
    say(f"  {'200 -> visible in metrics API':34} {pct(api, 0.5):7.2f} {pct(api, 0.95):7.2f} {max(api):7.2f}")
    if by_status:
        say(
            f"  {'200 -> /status events_projected':34} {pct(by_status, 0.5):7.2f} {pct(by_status, 0.95):7.2f} {max(by_status):7.2f}"
        )
    say("  baseline: the projector interval, 1.00 s")
    p95 = pct(api, 0.95)
    RESULTS.append(
        Row(
            "freshness p95 @5k events/s",
            f"{p95:.2f} s (p50 {pct(api, 0.5):.2f}, max {max(api):.2f})",
            "interval 1.00 s",
            f"{p95:.1f}x",
            "p95 < 3 s",
            p95 < 3 and final_users == tags,
        )
    )


# --- 4. metrics API latency ---------------------------------------------------------------------


def bench_metrics(sizes: Sizes) -> None:
    config = GeneratorConfig(days=sizes.metrics_days)
    say(f"\n## 4. metrics API latency ({sizes.metrics_days}-day demo history, org demo)")
    started = time.perf_counter()
    events = generate(config)
    note(f"generated {len(events):,} events in {time.perf_counter() - started:.1f} s")
    first, last = window(config)
    teams = sorted({e["team_id"] for e in events[:50_000]})
    with fresh_server() as server:
        progress = Progress("demo history sent", len(events))
        stats = send(f"{server.ingest_url}/v1/events", events, batch_size=500, concurrency=2, progress=progress.add,
                     token=server.ingest_key)  # fmt: skip
        progress.close()
        del events
        note(f"sent {stats.accepted:,} events at {stats.events_per_second:,.0f}/s")
        status, waited = server.wait_projected(label="demo history projected")
        note(f"projection caught up {waited:.1f} s after the last ack")
        token = server.token("demo")
        base = f"{server.url}/api/v1/orgs/demo"
        timings: dict[str, list[float]] = {}
        cold: dict[str, float] = {}
        full_body: dict = {}
        with httpx.Client(timeout=60, trust_env=False, headers={"authorization": f"Bearer {token}"}) as client:

            def timed(name: str, path: str, params: dict, repeats: int) -> None:
                nonlocal full_body
                for i in range(repeats + 1):
                    t0 = time.perf_counter()
                    r = client.get(f"{base}{path}", params=params)
                    ms = (time.perf_counter() - t0) * 1000
                    if r.status_code != 200:
                        raise RuntimeError(f"{path} answered {r.status_code}: {r.text[:300]}")
                    if i == 0:
                        cold[name] = ms  # first call: not in the percentiles
                        if name == "full year":
                            full_body = r.json()
                    else:
                        timings.setdefault(name, []).append(ms)
                    progress.add()

            year = {"from": first.isoformat(), "to": last.isoformat()}
            n = sizes.metrics_repeats
            total = 2 * (n + 1) + len(teams) * 4 + 4 * 6
            progress = Progress("read API requests", total)
            timed("full year", "/metrics", year, n)
            timed("one day (baseline)", "/metrics", {"from": last.isoformat(), "to": last.isoformat()}, n)
            for team in teams:
                timed("full year, team_id filter", "/metrics", {**year, "team_id": team}, 3)
            for dim in ("team", "user", "model", "repo"):
                timed(f"breakdown/{dim}, full year", f"/breakdown/{dim}", year, 5)
            progress.close()
    series = full_body.get("series") or []
    say(
        f"  server holds {status['events_logged']:,} events; full-year answer has {len(full_body)} keys, "
        f"{len(series)} series days, runs={full_body.get('runs')}"
    )
    say(f"  {'request (ms)':32} {'n':>4} {'first':>8} {'p50':>8} {'p95':>8} {'max':>8}")
    for name, values in timings.items():
        say(
            f"  {name:32} {len(values):>4} {cold[name]:8.1f} {pct(values, 0.5):8.1f} {pct(values, 0.95):8.1f} {max(values):8.1f}"
        )
    p95, b95 = pct(timings["full year"], 0.95), pct(timings["one day (baseline)"], 0.95)
    RESULTS.append(
        Row(
            f"metrics API {sizes.metrics_days} d p95",
            f"{p95:.1f} ms (p50 {pct(timings['full year'], 0.5):.1f})",
            f"1 day p95 {b95:.1f} ms",
            f"{p95 / b95:.1f}x",
            "p95 < 100 ms",
            p95 < 100,
        )
    )


# --- 5. demo start to ready ---------------------------------------------------------------------


def bench_demo(sizes: Sizes) -> None:
    days = sizes.demo_days
    say(f"\n## 5. `agentdash demo --days {days}` start to ready")
    note(f"baseline: generating {days} days in process")
    started = time.perf_counter()
    events = generate(GeneratorConfig(days=days))
    gen_s = time.perf_counter() - started
    n_events = len(events)
    del events
    gc.collect()

    with tempfile.TemporaryDirectory(prefix="agentdash-bench-demo-") as tmp:
        args = [sys.executable, "-m", "agentdash", "demo", "--days", str(days), "--data-dir", str(Path(tmp) / "demo"),
                "--reset", "--port", str(free_port()), "--ingest-port", str(free_port())]  # fmt: skip
        lines: list[str] = []
        ready = threading.Event()
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
        ready_at = [0.0]

        def reader() -> None:
            buf = b""
            assert proc.stdout is not None
            while chunk := proc.stdout.read1(65536):
                buf += chunk
                *complete, buf = buf.replace(b"\r", b"\n").split(b"\n")
                for raw in complete:
                    line = raw.decode(errors="replace").strip()
                    if line:
                        lines.append(line)
                    if "ready in" in line and not ready.is_set():
                        ready_at[0] = time.perf_counter()
                        ready.set()

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        hwm_kb = 0
        progress = Progress("demo running (s)")
        while not ready.wait(0.5):
            hwm_kb = max(hwm_kb, _vm_hwm_kb(proc.pid))
            progress.set(int(time.perf_counter() - started))
            if proc.poll() is not None:
                break
            if time.perf_counter() - started > 600:
                break
        progress.close()
        wall = (ready_at[0] or time.perf_counter()) - started
        hwm_kb = max(hwm_kb, _vm_hwm_kb(proc.pid))
        ok = ready.is_set()
        stop_started = time.perf_counter()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        stop_s = time.perf_counter() - stop_started
        thread.join(timeout=5)
    own = next((line for line in lines if "ready in" in line), "")
    ingested = next((line for line in lines if line.startswith("ingested")), "")
    if not ok:
        say("  demo never printed 'ready in'; its output:\n    " + "\n    ".join(lines[-30:]))
    say(f"  demo start -> 'ready in' line  {wall:8.1f} s   (the demo's own figure: '{own}')")
    say(f"  {ingested}")
    say(f"  peak memory (VmHWM)            {hwm_kb / 1024:8.0f} MiB")
    say(f"  baseline: generate in process  {gen_s:8.1f} s   ({n_events:,} events)")
    say(f"  stop after SIGINT              {stop_s:8.1f} s   exit code {code}")
    RESULTS.append(
        Row(
            f"demo --days {days} start->ready",
            f"{wall:.1f} s, peak {hwm_kb / 1024:.0f} MiB",
            f"generate only {gen_s:.1f} s",
            f"{wall / gen_s:.1f}x",
            "<= 90 s (365 d)",
            ok and wall <= 90 and code == 0,
        )
    )


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_share(start: tuple[int, int], end: tuple[int, int]) -> float:
    """Share of all CPUs busy between two machine_busy() readings."""
    return (end[0] - start[0]) / max(end[1] - start[1], 1)


def load_note() -> str:
    return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _vm_hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# --- main ---------------------------------------------------------------------------------------


def summary(quick: bool, total_s: float) -> None:
    say("\n## summary" + (" (QUICK sizes: a smoke test, targets are for the full sizes)" if quick else ""))
    headers = ("benchmark", "figure", "baseline (same run)", "ratio", "target", "met")
    table = [headers] + [(r.name, r.figure, r.baseline, r.ratio, r.target,
                          "n/a" if r.met is None else ("yes" if r.met else "NO")) for r in RESULTS]  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    for i, row in enumerate(table):
        say("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if i == 0:
            say("  " + "  ".join("-" * w for w in widths))
    say(
        f"\n  total {total_s:.0f} s on {os.cpu_count()} CPUs, python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test, ~1 min)")
    parser.add_argument("--fold-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--only",
        choices=BENCHMARKS + ("projector",),
        action="append",
        help="run only this benchmark (repeatable; 'projector' = fold + freshness)",
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    if args.fold_child:
        fold_child(sizes)
        return 0
    chosen = set(args.only or BENCHMARKS)
    if "projector" in chosen:
        chosen |= {"fold", "freshness"}
    runners = {"ingest": bench_ingest, "otlp": bench_otlp, "latency": bench_latency, "fold": bench_fold,
               "freshness": bench_freshness, "metrics": bench_metrics, "demo": bench_demo}  # fmt: skip
    say(f"# agentdash benchmarks ({'quick' if args.quick else 'full'}), {datetime.now().isoformat(timespec='seconds')}")
    before = machine_busy()
    time.sleep(2)
    idle_busy = busy_share(before, machine_busy())
    say(f"# before starting: CPUs {idle_busy:.0%} busy over 2 s with nothing of ours running; {load_note()}")
    if idle_busy > 0.15:
        say("# WARNING: other processes are using the CPU; the figures below are lower than on a quiet machine")
    started = time.perf_counter()
    failed = []
    for name in BENCHMARKS:
        if name not in chosen:
            continue
        note(f"--- {name} ---")
        before, load = machine_busy(), load_note()
        t0 = time.perf_counter()
        try:
            runners[name](sizes)
        except Exception as exc:  # report and carry on with the others
            failed.append(name)
            say(f"  {name} FAILED: {exc!r}")
            RESULTS.append(Row(name, "failed", "-", "-", "-", False))
        say(
            f"  [{name}: {time.perf_counter() - t0:.0f} s; all {os.cpu_count()} CPUs {busy_share(before, machine_busy()):.0%} busy "
            f"(this benchmark and anything else on the machine); {load} at its start]"
        )
    summary(args.quick, time.perf_counter() - started)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
