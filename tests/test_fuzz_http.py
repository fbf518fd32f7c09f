"""Schemathesis against both ports' OpenAPI schemas of a real server: no 5xx, it stays up, every 4xx says why."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from google.rpc import status_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from agentdash.testing import ServerProcess

pytestmark = pytest.mark.slow

# Bounded so the whole suite stays quick on two cores; AGENTDASH_FUZZ_EXAMPLES=500 for a long hunt.
EXAMPLES = int(os.environ.get("AGENTDASH_FUZZ_EXAMPLES", "12"))
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
    suppress_health_check=list(HealthCheck),
)  # fmt: skip


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory) -> Iterator[ServerProcess]:
    """One server for the module: starting one per operation would cost more than the fuzzing."""
    server = ServerProcess(tmp_path_factory.mktemp("fuzz") / "data").start()
    yield server
    server.stop()


def reason_of(response) -> str:
    """The text of a rejection: the JSON `error` field, or the google.rpc.Status message of an OTLP protobuf answer."""
    content_type = (response.headers.get("content-type") or [""])[0]  # schemathesis keeps each header's values
    if content_type.startswith("application/x-protobuf"):
        return status_pb2.Status.FromString(response.content).message
    try:
        body = json.loads(response.content)
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    # OTLP/HTTP answers JSON requests with google.rpc.Status in JSON: its `message` is the reason.
    error = body.get("error", body.get("message"))
    return error if isinstance(error, str) else ""


def check_answer(case, response) -> None:
    """No 5xx; a 4xx names its reason."""
    where = f"{case.method} {case.formatted_path} {case.query} {str(case.body)[:200]!r}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:500]}"
    if response.status_code >= 400:
        assert reason_of(response).strip(), f"{where}: {response.status_code} without a reason: {response.text[:300]}"


def fuzz(schema, headers: dict[str, str], path_parameters: dict[str, str] | None = None) -> int:
    """Run every operation of `schema` in both generation modes; the number of operations fuzzed."""
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fixed = {k: v for k, v in (path_parameters or {}).items() if f"{{{k}}}" in operation.path}
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed or None)

            @FUZZ_SETTINGS
            @given(case=strategy)
            def run(case) -> None:
                # The credential replaces whatever the generator put in its place (an empty bearer, say).
                case.headers = {**(case.headers or {}), **headers}
                check_answer(case, case.call(timeout=30))

            try:
                run()
            except Unsatisfiable:
                # An operation that takes nothing (GET /healthz) has no invalid input to generate.
                assert mode is GenerationMode.NEGATIVE, operation.path
    return len(operations)


def assert_alive(server: ServerProcess) -> None:
    assert server.process is not None and server.process.poll() is None, server.log()[-3000:]
    assert httpx.get(f"{server.ingest_url}/healthz", timeout=10, trust_env=False).status_code == 200
    assert httpx.get(f"{server.url}/api/schema/openapi.json", timeout=10, trust_env=False).status_code == 200


@pytest.mark.parametrize("authenticated", [True, False], ids=["key", "no-key"])
def test_ingest_port_schema(fuzzed, authenticated):
    schema = schemathesis.openapi.from_url(f"{fuzzed.ingest_url}/schema/openapi.json")
    assert fuzz(schema, fuzzed.ingest_headers if authenticated else {}) >= 5
    assert_alive(fuzzed)
    assert "Traceback" not in fuzzed.log(), fuzzed.log()[-3000:]


@pytest.mark.parametrize("authenticated", [True, False], ids=["token", "no-token"])
def test_read_api_schema(fuzzed, authenticated):
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/api/schema/openapi.json")
    headers = {"Authorization": f"Bearer {fuzzed.token('acme')}"} if authenticated else {}
    # Half the runs aim at the token's own org, so generated queries get past the scope check into the queries.
    assert fuzz(schema, headers, {"org_id": "acme"} if authenticated else None) >= 5
    if authenticated:
        fuzz(schema, headers)
    assert_alive(fuzzed)
    assert "Traceback" not in fuzzed.log(), fuzzed.log()[-3000:]
