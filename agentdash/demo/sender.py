"""Sending events to an ingest API: batched, concurrent, retried on 429/503 and lost connections."""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import httpx
import msgspec


@dataclass
class SendStats:
    """What the ingest server said about everything sent."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0
    seconds: float = 0.0
    retries: int = 0
    rejections: list[dict] = field(default_factory=list)  # the first few, to show what went wrong

    @property
    def events(self) -> int:
        return self.accepted + self.duplicates + self.rejected

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


class SendError(RuntimeError):
    """The server refused a batch for a reason retrying will not fix, or never answered."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


RETRYABLE_STATUS = (429, 503)
_MAX_KEPT_REJECTIONS = 20


def send(
    url: str,
    events: Iterable[dict],
    *,
    batch_size: int = 500,
    concurrency: int = 2,
    token: str | None = None,
    progress: Callable[[int], None] | None = None,
    timeout: float = 30.0,
    max_attempts: int = 10,
) -> SendStats:
    """POST events to `url` (the full `/v1/events` URL) in batches from `concurrency` threads.

    Retries a batch on 429/503 and connection errors with backoff (safe: ids make re-sends
    no-ops), raises SendError on any other non-200 answer, and calls `progress(n)` after each
    acknowledged batch of n events (serialised, from a worker thread).
    """
    if not 1 <= batch_size <= 1000:
        raise ValueError("batch_size must be 1-1000 (the ingest limit per request)")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    stats = SendStats()
    lock = threading.Lock()
    failures: list[BaseException] = []
    stop = threading.Event()
    pending: queue.Queue = queue.Queue(maxsize=concurrency * 2)

    def record(answer: dict, count: int, retries: int) -> None:
        with lock:
            rejected = answer.get("rejected") or []
            stats.accepted += answer.get("accepted", 0)
            stats.duplicates += answer.get("duplicates", 0)
            stats.rejected += len(rejected)
            stats.batches += 1
            stats.retries += retries
            room = _MAX_KEPT_REJECTIONS - len(stats.rejections)
            stats.rejections.extend(rejected[: max(room, 0)])
            if progress is not None:
                progress(count)

    def worker() -> None:
        with httpx.Client(timeout=timeout, headers=headers) as client:
            while (item := pending.get()) is not None:
                if stop.is_set():
                    continue  # drain so the producer never blocks
                body, count = item
                try:
                    response, retries = _post(client, url, body, max_attempts)
                    record(msgspec.json.decode(response.content), count, retries)
                except BaseException as exc:
                    failures.append(exc)
                    stop.set()

    threads = [threading.Thread(target=worker, name=f"send-{i}", daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    try:
        for batch in _batches(events, batch_size):
            if stop.is_set():
                break
            pending.put((msgspec.json.encode({"events": batch}), len(batch)))
    except BaseException:
        stop.set()
        raise
    finally:
        for _ in threads:
            pending.put(None)
        for thread in threads:
            thread.join()
        stats.seconds = time.perf_counter() - started
    if failures:
        raise failures[0]
    return stats


def _batches(events: Iterable[dict], size: int) -> Iterator[list[dict]]:
    iterator = iter(events)
    while batch := list(islice(iterator, size)):
        yield batch


def send_otlp(ingest_url: str, exports: Iterable[tuple[str, bytes]], token: str, max_attempts: int = 10) -> int:
    """POST OTLP/HTTP protobuf exports, each (path, body), retrying like `send`; returns how many were taken."""
    headers = {"content-type": "application/x-protobuf", "authorization": f"Bearer {token}"}
    taken = 0
    with httpx.Client(timeout=30.0, headers=headers) as client:
        for path, body in exports:
            _post(client, f"{ingest_url}{path}", body, max_attempts)
            taken += 1
    return taken


def _post(client: httpx.Client, url: str, body: bytes, max_attempts: int) -> tuple[httpx.Response, int]:
    """Send one batch until it is acknowledged; returns (the 200 answer, retries needed)."""
    delay = 0.05
    for attempt in range(1, max_attempts + 1):
        try:
            response = client.post(url, content=body)
        except httpx.TransportError as exc:
            problem = f"could not reach {url}: {exc!r}"
        else:
            if response.status_code == 200:
                return response, attempt - 1
            if response.status_code not in RETRYABLE_STATUS:
                raise SendError(f"{url} answered {response.status_code}: {response.text[:500]}", response.status_code)
            problem = f"{url} answered {response.status_code} (busy)"
            delay = max(delay, _retry_after(response))
        if attempt == max_attempts:
            break
        time.sleep(delay * (0.5 + random.random()))  # jitter so workers do not retry in lockstep
        delay = min(delay * 2, 5.0)
    raise SendError(f"gave up after {max_attempts} attempts: {problem}")


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(float(response.headers.get("retry-after", 0)), 30.0)
    except ValueError:
        return 0.0
