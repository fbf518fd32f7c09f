"""Decoding and translating OTLP exports in worker processes, so that ingest uses more than the one core the
server's GIL allows: the server keeps HTTP and the log writer, the workers turn bytes into events."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from agentdash.sources.otlp_decode import LOGS, METRICS, TRACES, Signal, decode_request
from agentdash.sources.records import Record, log_records, metric_records, span_records
from agentdash.sources.translate import Translation, translate

log = logging.getLogger("agentdash")

RECORDS: dict[str, Callable[[Any], Iterator[Record]]] = {
    LOGS.name: log_records, TRACES.name: span_records, METRICS.name: metric_records,
}  # fmt: skip
SIGNALS = {signal.name: signal for signal in (LOGS, TRACES, METRICS)}
# Below this many body bytes an export is translated in the server: a round trip to a worker (~0.2 ms) would
# cost a small export more than its translation, and the agents' own exports are mostly small.
SMALL_EXPORT_BYTES = 16 * 1024


def translate_export(signal: str, body: bytes, encoding: str, content_encoding: str, orgs: frozenset[str] | None,
                     now_us: int) -> Translation:  # fmt: skip
    """An export's events and counts; InvalidExport, TooLarge or WrongMediaType naming what is wrong with it."""
    export = decode_request(SIGNALS[signal], body, encoding, content_encoding)
    return translate(RECORDS[signal](export), orgs, now_us)


class TranslatePool:
    """`workers` processes (0: none, all in the server) that decode and translate the larger exports."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    async def translate(self, signal: Signal, body: bytes, encoding: str, content_encoding: str,
                        orgs: frozenset[str] | None, now_us: int) -> Translation:  # fmt: skip
        args = (signal.name, body, encoding, content_encoding, orgs, now_us)
        pool = self._running_pool() if len(body) >= SMALL_EXPORT_BYTES else None
        if pool is None:
            return translate_export(*args)
        try:
            return await asyncio.wrap_future(pool.submit(translate_export, *args))
        except BrokenProcessPool:  # a worker died (killed, out of memory): start afresh, and do this one here
            log.warning("an OTLP translate worker died; starting a new one")
            self._discard(pool)
            return translate_export(*args)

    def _running_pool(self) -> ProcessPoolExecutor | None:
        if not self.workers:
            return None
        with self._lock:
            if self._pool is None:  # started on first use: most servers (and tests) never receive a large export
                # spawn, not fork: the server has threads (writer, projector, SQLite), which fork would copy mid-step
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_exit_with_parent,
                                                 initargs=(os.getpid(),))  # fmt: skip
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _exit_with_parent(parent: int) -> None:
    """In a worker: exit once the server is gone. A killed server (kill -9) leaves its workers blocked on their
    queue, which a dead parent never closes."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
