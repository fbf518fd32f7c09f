"""The HTTP edge: each domain error becomes its status, headers and a JSON {"error": text}, in both apps."""

from __future__ import annotations

import logging

import pytest
from google.rpc.status_pb2 import Status
from litestar import Litestar, Router, get, post
from litestar.testing import TestClient

from agentdash.auth import (
    BadSignature,
    Forbidden,
    NotAuthorized,
    NotLinked,
    NotVisible,
    ProviderUnavailable,
    Throttled,
    Unauthenticated,
)
from agentdash.events import InvalidEvent, NotJson, TooLarge
from agentdash.ingest.otlp_api import OTLP_EXCEPTION_HANDLERS
from agentdash.metrics import InvalidQuery
from agentdash.sources import InvalidDelivery
from agentdash.storage import Overloaded, StorageError, Unavailable, WriteRejected
from agentdash.web import EXCEPTION_HANDLERS

CASES = [
    (InvalidEvent("bad event"), 400, {}),
    (InvalidQuery("from must not be after to"), 400, {}),
    (TooLarge("body is too big"), 413, {}),
    (NotJson("Content-Type must be application/json"), 415, {}),
    (Unauthenticated("missing Authorization"), 401, {"www-authenticate": "Bearer"}),
    (InvalidDelivery("the delivery's body is not JSON"), 400, {}),
    (BadSignature("X-Hub-Signature-256 does not match"), 401, {}),
    (NotLinked("GitHub 'acme' is not linked to an agentdash org"), 404, {}),
    (NotAuthorized("token expired"), 401, {"www-authenticate": 'Bearer error="invalid_token"'}),
    (ProviderUnavailable("keys unreachable"), 503, {"retry-after": "10"}),
    (Forbidden("members see only their own data"), 403, {}),
    (NotVisible("no such organisation"), 404, {}),
    (Throttled("too many failures", 42), 429, {"retry-after": "42"}),
    (Overloaded("log queue full"), 503, {"retry-after": "1"}),
    (Unavailable("database unreachable"), 503, {"retry-after": "5"}),
]


def _client(error: Exception) -> TestClient:
    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        raise error

    return TestClient(Litestar(route_handlers=[boom], exception_handlers=EXCEPTION_HANDLERS))


@pytest.mark.parametrize(("error", "status", "headers"), CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_a_domain_error_answers_its_status(error, status, headers):
    with _client(error) as client:
        answer = client.get("/boom")
    assert answer.status_code == status
    assert answer.json() == {"error": str(error)}
    for name, value in headers.items():
        assert answer.headers[name] == value


@pytest.mark.parametrize("error", [WriteRejected("constraint"), StorageError("disk I/O error"), KeyError("x")])
def test_anything_else_is_an_internal_error_that_tells_nothing(error, caplog):
    logger = logging.getLogger("agentdash")
    logger.addHandler(caplog.handler)  # the app's logger may not propagate to the root
    try:
        with _client(error) as client:
            answer = client.get("/boom")
    finally:
        logger.removeHandler(caplog.handler)
    assert answer.status_code == 500 and answer.json() == {"error": "internal error"}
    assert "internal error answering GET /boom" in caplog.text  # the operator gets the traceback


def _otlp_client(error: Exception) -> TestClient:
    @post("/v1/logs", sync_to_thread=False)
    def boom() -> None:
        raise error

    router = Router(path="/", route_handlers=[boom], exception_handlers=OTLP_EXCEPTION_HANDLERS)
    return TestClient(Litestar(route_handlers=[router], exception_handlers=EXCEPTION_HANDLERS))


@pytest.mark.parametrize(("error", "status", "headers"), CASES, ids=[type(c[0]).__name__ for c in CASES])
@pytest.mark.parametrize("encoding", ["application/x-protobuf", "application/json"])
def test_on_the_otlp_paths_the_same_status_comes_with_an_rpc_status_in_the_request_encoding(error, status, headers,
                                                                                          encoding):  # fmt: skip
    with _otlp_client(error) as client:
        answer = client.post("/v1/logs", content=b"", headers={"content-type": encoding})
    assert answer.status_code == status and answer.headers["content-type"].startswith(encoding)
    body = Status.FromString(answer.content) if encoding == "application/x-protobuf" else answer.json()
    assert (body.message if isinstance(body, Status) else body["message"]) == str(error)
    for name, value in headers.items():
        assert answer.headers[name] == value
