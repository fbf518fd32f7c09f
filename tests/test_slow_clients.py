"""Slow clients over raw sockets against a real server: header and body deadlines, keep-alive, the connection cap."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from agentdash.testing import ServerProcess
from tests.support import wire

# Short deadlines so that the tests wait seconds, not minutes; a socket that outlives WAIT was never closed.
HEADER_S, BODY_S, KEEP_ALIVE_S = 1, 2, 1
WAIT = 15.0


@pytest.fixture
def impatient(server_factory) -> ServerProcess:
    return server_factory(None, "--header-timeout", str(HEADER_S), "--body-timeout", str(BODY_S),
                          "--keep-alive-timeout", str(KEEP_ALIVE_S))  # fmt: skip


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.settimeout(WAIT)
    return sock


def trickle(sock: socket.socket, data: bytes, every: float = 0.3) -> None:
    """Send `data` a byte at a time until the server closes the connection."""
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except OSError:  # the server closed on us: what the test waits for
            return
        time.sleep(every)


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; raises TimeoutError when it keeps the connection open."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def read_response(sock: socket.socket) -> bytes:
    """One whole response (headers and a Content-Length body), leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(status_and_body(head + b"\r\n\r\n")[1]["content-length"])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def status_and_body(answer: bytes) -> tuple[int, dict[str, str], dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    is_json = "json" in headers.get("content-type", "")
    return int(lines[0].split()[1]), headers, json.loads(body) if body and is_json else {}


def ports(server: ServerProcess) -> list[int]:
    return [server.ingest_port, server.port]


def cheap_path(server: ServerProcess, port: int) -> str:
    """A small GET that answers 200 on that port."""
    return "/healthz" if port == server.ingest_port else "/api/schema/openapi.json"


def test_trickled_headers_get_408_on_both_ports(impatient):
    for port in ports(impatient):
        sock = connect(port)
        started = time.monotonic()
        trickle(sock, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100)
        status, headers, body = status_and_body(read_all(sock))
        assert (status, headers["connection"]) == (408, "close"), port
        assert "headers not received within 1 s" in body["error"]
        assert time.monotonic() - started < WAIT


def test_connection_that_never_speaks_is_closed_without_answer(impatient):
    for port in ports(impatient):
        sock = connect(port)
        assert read_all(sock) == b"", port


def test_trickled_body_gets_408_and_nothing_is_stored(impatient):
    body = json.dumps({"events": [wire("slow-1", org="acme")]}).encode()
    sock = connect(impatient.ingest_port)
    head = (f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {impatient.ingest_key}\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
    sock.sendall(head.encode())
    trickle(sock, body)
    status, _, answer = status_and_body(read_all(sock))
    assert status == 408
    assert "body not received within 2 s" in answer["error"]
    whole = httpx.post(f"{impatient.ingest_url}/v1/events", content=body, timeout=10,
                       headers={"content-type": "application/json", **impatient.ingest_headers})  # fmt: skip
    assert (whole.json()["accepted"], whole.json()["duplicates"]) == (1, 0), (
        whole.text
    )  # the trickled copy was never stored


def test_trickled_form_body_on_the_client_port_gets_408(impatient):
    sock = connect(impatient.port)
    sock.sendall(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                 b"Content-Length: 500\r\n\r\ntoken=")  # fmt: skip
    trickle(sock, b"x" * 494)
    status, _, answer = status_and_body(read_all(sock))
    assert status == 408 and "body" in answer["error"]


def test_idle_kept_alive_connection_is_closed_and_a_prompt_client_is_served(impatient):
    for port in ports(impatient):
        sock = connect(port)
        sock.sendall(f"GET {cheap_path(impatient, port)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        assert status_and_body(read_response(sock))[0] == 200, port
        assert read_all(sock) == b"", port  # closed after the keep-alive timeout, nothing more said


def test_second_request_on_a_kept_alive_connection_has_its_own_header_deadline(impatient):
    sock = connect(impatient.ingest_port)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status_and_body(read_response(sock))[0] == 200
    trickle(sock, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100)
    status, _, _ = status_and_body(read_all(sock))
    assert status == 408


def test_server_answers_others_while_slow_clients_hang_on(impatient):
    slow = [connect(port) for port in ports(impatient) for _ in range(20)]
    for sock in slow:
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    assert httpx.get(f"{impatient.ingest_url}/healthz", timeout=5).status_code == 200
    assert httpx.get(f"{impatient.url}{cheap_path(impatient, impatient.port)}", timeout=5).status_code == 200
    for sock in slow:
        assert status_and_body(read_all(sock))[0] == 408


def test_connection_over_the_cap_gets_503_with_retry_after(server_factory):
    server = server_factory(None, "--max-connections", "3", "--header-timeout", "60")
    for port in ports(server):
        held = [connect(port) for _ in range(3)]
        time.sleep(0.2)  # let the server accept them before the one over the cap
        extra = connect(port)
        status, headers, body = status_and_body(read_all(extra))
        assert (status, headers["retry-after"]) == (503, "1"), port
        assert "too many open connections" in body["error"]
        held.pop().close()
        time.sleep(0.2)
        answer = httpx.get(f"http://127.0.0.1:{port}{cheap_path(server, port)}", timeout=5)
        assert answer.status_code == 200, port
        for sock in held:
            sock.close()
