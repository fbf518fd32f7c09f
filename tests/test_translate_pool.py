"""OTLP exports translated in worker processes (`--otlp-workers`): the same events as in the server, the same errors,
a worker that dies is replaced, and a real server hands its large exports to one."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from agentdash.sources import LOGS, PROTOBUF, InvalidExport, TranslatePool, translate_export
from agentdash.sources.translate_pool import SMALL_EXPORT_BYTES

ORGS = frozenset({"acme"})


def _kv(key: str, value: str | int | float) -> KeyValue:
    if isinstance(value, str):
        return KeyValue(key=key, value=AnyValue(string_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(double_value=value))


def claude_export(prompts: int, first: int = 0) -> bytes:
    """Claude Code's records of `prompts` prompts (a prompt and an API request each), as one protobuf export."""
    request = ExportLogsServiceRequest()
    resource = request.resource_logs.add()
    resource.resource.attributes.extend([_kv("service.name", "claude-code"), _kv("service.version", "2.1.0"),
                                         _kv("user.email", "dev@example.com"), _kv("team.id", "platform")])  # fmt: skip
    records = resource.scope_logs.add().log_records
    now_ns = time.time_ns()
    for i in range(first, first + prompts):
        for kind, extra in (("user_prompt", []), ("api_request", [_kv("model", "claude-sonnet-4-5"),
                            _kv("input_tokens", 1000 + i), _kv("output_tokens", 50), _kv("cost_usd", 0.001 * i)])):  # fmt: skip
            record = records.add(time_unix_nano=now_ns - (first + prompts - i) * 1_000_000)
            record.body.string_value = f"claude_code.{kind}"
            record.attributes.extend([_kv("event.name", kind), _kv("session.id", f"ses-{i // 10}"),
                                      _kv("prompt.id", f"prompt-{i}"), *extra])  # fmt: skip
    return request.SerializeToString()


def translated_by(pool: TranslatePool, body: bytes, now_us: int):
    return asyncio.run(pool.translate(LOGS, body, PROTOBUF, "", ORGS, now_us))


@pytest.fixture
def pool():
    pool = TranslatePool(1)
    yield pool
    pool.close()


def test_a_worker_translates_a_large_export_exactly_as_the_server_would(pool):
    body, now_us = claude_export(200), time.time_ns() // 1000
    assert len(body) >= SMALL_EXPORT_BYTES  # else it would not go to the worker at all
    here = translate_export(LOGS.name, body, PROTOBUF, "", ORGS, now_us)
    there = translated_by(pool, body, now_us)
    assert pool._pool is not None  # it did go to a worker
    assert there.events == here.events and len(there.events) == 600  # a prompt is a run and a message, a request usage
    assert there.tallies == here.tallies and there.users == here.users
    # Each event still points at its own record's tally (the answer's duplicates are counted through them).
    assert _owner_keys(there) == _owner_keys(here)


def _owner_keys(translation) -> list:
    key_of = {id(tally): key for key, tally in translation.tallies.items()}
    return [key_of[id(owner)] for owner in translation.owners]


def test_a_small_export_stays_in_the_server(pool):
    body = claude_export(2)
    assert len(translated_by(pool, body, time.time_ns() // 1000).events) == 6
    assert pool._pool is None


def test_an_undecodable_large_body_is_the_same_error_from_a_worker(pool):
    garbage = b"\xff" * (SMALL_EXPORT_BYTES + 1)
    with pytest.raises(InvalidExport) as from_worker:
        translated_by(pool, garbage, 0)
    with pytest.raises(InvalidExport) as in_server:
        translate_export(LOGS.name, garbage, PROTOBUF, "", ORGS, 0)
    assert str(from_worker.value) == str(in_server.value) and "not a protobuf" in str(from_worker.value)


def test_a_killed_worker_is_replaced_and_no_export_is_lost(pool):
    body, now_us = claude_export(200), time.time_ns() // 1000
    expected = translate_export(LOGS.name, body, PROTOBUF, "", ORGS, now_us).events
    assert translated_by(pool, body, now_us).events == expected
    for process in list(pool._pool._processes.values()):  # type: ignore[union-attr]
        os.kill(process.pid, signal.SIGKILL)
    time.sleep(0.2)
    assert translated_by(pool, body, now_us).events == expected  # done in the server while the pool is replaced
    assert translated_by(pool, body, now_us).events == expected  # and by a new worker
    assert pool._pool is not None


def _children(pid: int) -> list[int]:
    """The process's children, whichever of its threads started them."""
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]


def test_a_server_sends_large_exports_to_its_worker_and_stores_every_event(server):
    key = server.create_ingest_key("acme", name="otlp")
    headers = {"content-type": "application/x-protobuf", "authorization": f"Bearer {key}"}
    before = set(_children(server.process.pid))
    bodies = [claude_export(300, first) for first in (0, 300)]
    for body in bodies:
        answer = httpx.post(f"{server.ingest_url}/v1/logs", content=body, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
    assert set(_children(server.process.pid)) - before, "no worker process was started for the large exports"
    assert server.status()["events_logged"] == 1800
    again = httpx.post(f"{server.ingest_url}/v1/logs", content=bodies[0], headers=headers, timeout=30)
    assert again.status_code == 200 and server.status()["events_logged"] == 1800  # a re-sent export: duplicates


def test_a_killed_server_leaves_no_worker_behind(server):
    key = server.create_ingest_key("acme", name="otlp")
    headers = {"content-type": "application/x-protobuf", "authorization": f"Bearer {key}"}
    answer = httpx.post(f"{server.ingest_url}/v1/logs", content=claude_export(300), headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    workers = _children(server.process.pid)
    assert workers
    server.kill()  # SIGKILL: no shutdown hook runs
    deadline = time.monotonic() + 10
    while alive := [pid for pid in workers if Path(f"/proc/{pid}").exists() and b"zombie" not in _state(pid)]:
        assert time.monotonic() < deadline, f"workers {alive} outlived their killed server by 10 s"
        time.sleep(0.1)


def _state(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/status").read_bytes()
    except FileNotFoundError:
        return b"zombie"
