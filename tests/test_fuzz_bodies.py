"""Hypothesis-made bodies for POST /v1/events and OTLP/HTTP against a real server: no 5xx, every rejection says why,
and /status counts exactly what the answers said was accepted."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import httpx
import pytest
from google.rpc import status_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from agentdash.testing import ServerProcess

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("AGENTDASH_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))  # fmt: skip

# Text with the awkward parts: NUL, surrogate-free astral unicode, control characters.
texts = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(["", "\0", "a\0b", "😀" * 20, "\u202e"])
huge = st.sampled_from([2**63, -(2**63) - 1, 10**30, 1e308, -1e308, 2**53 + 1])
scalars = st.none() | st.booleans() | st.integers() | huge | st.floats(allow_nan=False) | texts
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
                           max_leaves=20)  # fmt: skip
TYPES = ["message.sent", "run.queued", "run.started", "run.finished", "usage", "handoff", "pr.opened", "bogus"]
FIELDS = ["id", "type", "org_id", "user_id", "session_id", "run_id", "team_id", "occurred_at", "status",
          "input_tokens", "output_tokens", "cost_usd", "model", "repo", "attributes"]  # fmt: skip


@st.composite
def events(draw) -> object:
    """A valid event, one with some fields swapped for junk, or junk outright."""
    event: dict[str, object] = {"id": str(uuid.uuid4()), "type": draw(st.sampled_from(TYPES)), "org_id": "acme",
                                "user_id": "u1", "session_id": "s1", "occurred_at": "2026-03-02T10:00:00Z"}  # fmt: skip
    kind = draw(st.sampled_from(["valid", "mutated", "junk"]))
    if kind == "junk":
        return draw(json_values)
    if kind == "mutated":
        for name in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3)):
            event[name] = draw(json_values)
    return event


def nested(depth: int) -> bytes:
    return b'{"events": [' + b"[" * depth + b"]" * depth + b"]}"


def reason(response: httpx.Response) -> str:
    if response.headers.get("content-type", "").startswith("application/x-protobuf"):
        return status_pb2.Status.FromString(response.content).message
    body = response.json()
    return body.get("error") or body.get("message") or ""


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory) -> Iterator[ServerProcess]:
    """One server for the module; each test reads /status before and after, so they count on their own."""
    server = ServerProcess(tmp_path_factory.mktemp("bodies") / "data").start()
    yield server
    server.stop()


def logged(server: ServerProcess) -> int:
    return server.status()["events_logged"]


def post(server: ServerProcess, path: str, content: bytes, content_type: str) -> httpx.Response:
    headers = {**server.ingest_headers, "content-type": content_type}
    response = httpx.post(f"{server.ingest_url}{path}", content=content, headers=headers, timeout=30, trust_env=False)
    assert response.status_code < 500, (path, content[:300], response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert reason(response).strip(), (path, content[:300], response.status_code, response.text[:300])
    return response


def test_event_batches(fuzzed):
    before = logged(fuzzed)
    accepted = 0

    @FUZZ
    @given(batch=st.lists(events(), max_size=12), wrap=st.sampled_from(["events", "list", "other"]))
    def run(batch, wrap) -> None:
        nonlocal accepted
        body = {"events": batch} if wrap == "events" else batch if wrap == "list" else {"stuff": batch}
        response = post(fuzzed, "/v1/events", json.dumps(body).encode(), "application/json")
        if response.status_code == 200:
            answer = response.json()
            assert answer["accepted"] + answer["duplicates"] + len(answer["rejected"]) == len(batch), answer
            assert all(r["error"].strip() for r in answer["rejected"]), answer
            accepted += answer["accepted"]

    run()
    for raw in (nested(10_000), b'{"events": [{"id": "\\u0000"}]}', b"\0" * 100, b'{"events": [' + b"1," * 50_000 + b"1]}",
                "{\"events\": [\"\ud800\"]}".encode("utf-8", "surrogatepass"), b"not json"):  # fmt: skip
        post(fuzzed, "/v1/events", raw, "application/json")
    assert accepted > 0, "no generated batch was accepted: the generator makes only junk"
    assert logged(fuzzed) - before == accepted
    assert httpx.get(f"{fuzzed.ingest_url}/healthz", timeout=10, trust_env=False).status_code == 200


any_values = st.recursive(
    st.builds(AnyValue, string_value=texts) | st.builds(AnyValue, int_value=st.integers(-(2**63), 2**63 - 1))
    | st.builds(AnyValue, double_value=st.floats()) | st.builds(AnyValue, bool_value=st.booleans())
    | st.builds(AnyValue, bytes_value=st.binary(max_size=20)),
    lambda inner: st.lists(inner, max_size=3).map(lambda vs: AnyValue(array_value={"values": vs})),
    max_leaves=8,
)  # fmt: skip
ATTRIBUTE_KEYS = ["event.name", "session.id", "user.id", "model", "cost_usd", "input_tokens", "gen_ai.request.model",
                  "service.name", "organization.id", "prompt.id", "duration_ms"]  # fmt: skip
attributes = st.lists(st.builds(KeyValue, key=st.sampled_from(ATTRIBUTE_KEYS) | texts, value=any_values), max_size=8)
log_records = st.builds(LogRecord, time_unix_nano=st.integers(0, 2**64 - 1), attributes=attributes,
                        body=any_values, event_name=texts)  # fmt: skip
exports = st.builds(
    lambda resource, records: ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=Resource(attributes=resource), scope_logs=[ScopeLogs(log_records=records)])]),
    attributes, st.lists(log_records, max_size=6),
)  # fmt: skip


def test_otlp_payloads(fuzzed):
    @FUZZ
    @given(export=exports, garble=st.binary(max_size=64), kind=st.sampled_from(["proto", "garbled", "json"]),
           junk=json_values)  # fmt: skip
    def run(export, garble, kind, junk) -> None:
        content = export.SerializeToString()
        if kind == "garbled":
            content = content[: len(garble)] + garble
        if kind == "json":
            post(fuzzed, "/v1/logs", json.dumps(junk).encode(), "application/json")
            post(fuzzed, "/v1/metrics", json.dumps({"resourceMetrics": [junk]}).encode(), "application/json")
        for path in ("/v1/logs", "/v1/metrics", "/v1/traces"):
            post(fuzzed, path, content, "application/x-protobuf")

    run()
    assert httpx.get(f"{fuzzed.ingest_url}/healthz", timeout=10, trust_env=False).status_code == 200
    assert "Traceback" not in fuzzed.log(), fuzzed.log()[-3000:]
