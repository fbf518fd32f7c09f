"""A scriptable fake model API (Anthropic Messages, Gemini, OpenAI Responses) for running the real agent CLIs offline.

One server answers all three protocols, told apart by path. Each model turn of the agent takes the next
answer from the script (text, a shell tool call, or an HTTP error repeated N times); with the script empty it
answers `DEFAULT_TEXT`. Side calls that are not agent turns (Claude Code's title/topic calls without tools,
Gemini's next-speaker/loop checks, token counting) get a harmless answer and leave the script alone.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agentdash.testing.otlp_recorder import read_body

DEFAULT_TEXT = "Done."


@dataclass(frozen=True)
class Usage:
    """Token counts the fake answers with; each protocol reports them in its own field names."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_creation: int = 0  # Anthropic only; Gemini and OpenAI have no such count
    reasoning: int = 0  # Gemini thoughtsTokenCount, OpenAI output_tokens_details.reasoning_tokens


@dataclass(frozen=True)
class Text:
    """A final answer in plain text."""

    text: str
    usage: Usage = Usage(input=120, output=30, cache_read=40, cache_creation=10)


@dataclass(frozen=True)
class ShellCall:
    """A call of the agent's own shell tool with this command (Bash / run_shell_command / shell)."""

    command: str
    usage: Usage = Usage(input=150, output=20, cache_read=0, cache_creation=0)


@dataclass(frozen=True)
class ToolCall:
    """A call of a named tool with these arguments as given (e.g. read a missing file, an unknown tool)."""

    name: str
    arguments: dict[str, Any]
    usage: Usage = Usage(input=150, output=20, cache_read=0, cache_creation=0)


@dataclass(frozen=True)
class HttpError:
    """Answer the next `times` agent requests with this status (500, 429, 529…); each retry takes one."""

    status: int = 500
    times: int = 20
    retry_after: str | None = "0"  # short, so that the CLI exhausts its retries quickly


Answer = Text | ShellCall | ToolCall | HttpError
Reply = Text | ShellCall | ToolCall  # what a successful turn answers


@dataclass(frozen=True)
class Request:
    """One request the fake API got."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, else the raw text
    protocol: str  # anthropic | gemini | openai | other
    turn: bool  # an agent turn that took an answer from the script
    status: int
    at: float


@dataclass
class FakeModelApi:
    """The fake API on 127.0.0.1: start(), point the CLI at `url`, queue answers with `script`, read `requests`."""

    port: int = 0
    script: deque[Answer] = field(default_factory=deque)
    requests: list[Request] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _error: tuple[HttpError, int] | None = None  # the error being repeated and how many are left

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeModelApi:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-model-api", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeModelApi:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def queue(self, *answers: Answer) -> FakeModelApi:
        with self._lock:
            self.script.extend(answers)
        return self

    def turns(self) -> list[Request]:
        """The requests that were agent turns, in order."""
        with self._lock:
            return [r for r in self.requests if r.turn]

    def next_answer(self) -> Answer:
        """The answer for the next agent turn: the error being repeated, else the script's next, else text."""
        with self._lock:
            if self._error is None and self.script:
                head = self.script.popleft()
                if not isinstance(head, HttpError):
                    return head
                self._error = (head, head.times)
            if self._error is not None:
                error, left = self._error
                self._error = (error, left - 1) if left > 1 else None
                return error
            return Text(DEFAULT_TEXT)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


# -- Anthropic Messages API (Claude Code) ------------------------------------------------------------------------


def anthropic_is_turn(body: dict[str, Any]) -> bool:
    """Claude Code's agent turns carry its tools; its side calls (title, topic, quota probe) carry none."""
    return bool(body.get("tools"))


def anthropic_usage(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.input, "output_tokens": usage.output,
            "cache_read_input_tokens": usage.cache_read, "cache_creation_input_tokens": usage.cache_creation}  # fmt: skip


def anthropic_content(answer: Reply, api: FakeModelApi, body: dict[str, Any]) -> list[dict[str, Any]]:
    if isinstance(answer, Text):
        return [{"type": "text", "text": answer.text}]
    if isinstance(answer, ToolCall):
        return [{"type": "tool_use", "id": api.new_id("toolu_"), "name": answer.name, "input": answer.arguments}]
    tool = _pick_tool([t.get("name", "") for t in body.get("tools", [])], ("Bash", "bash"))
    return [{"type": "tool_use", "id": api.new_id("toolu_"), "name": tool, "input": {"command": answer.command,
             "description": "run the command"}}]  # fmt: skip


def anthropic_message(answer: Reply, api: FakeModelApi, body: dict[str, Any]) -> dict[str, Any]:
    """A complete (non-streaming) Messages API answer."""
    return {"id": api.new_id("msg_"), "type": "message", "role": "assistant", "model": body.get("model", "claude"),
            "content": anthropic_content(answer, api, body), "stop_sequence": None,
            "stop_reason": "end_turn" if isinstance(answer, Text) else "tool_use",
            "usage": anthropic_usage(answer.usage)}  # fmt: skip


def anthropic_events(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The same message as the SSE events of a streamed answer (usage in message_start and message_delta)."""
    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 1}}
    events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": {"type": "text", "text": ""}}))  # fmt: skip
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": {**block, "input": {}}}))  # fmt: skip
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        events.append(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(("message_delta", {"type": "message_delta", "usage": message["usage"],
                                     "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None}}))  # fmt: skip
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def anthropic_error(status: int) -> dict[str, Any]:
    kind = {429: "rate_limit_error", 529: "overloaded_error", 400: "invalid_request_error"}.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": f"fake {kind} ({status})"}}


# -- Gemini API (Gemini CLI) ---------------------------------------------------------------------------------------


def gemini_is_turn(body: dict[str, Any]) -> bool:
    """Gemini CLI's agent turns declare its tools; its helper calls (next speaker, loop check, routing) do not."""
    return bool(body.get("tools"))


def gemini_usage(usage: Usage) -> dict[str, int]:
    return {"promptTokenCount": usage.input, "candidatesTokenCount": usage.output,
            "cachedContentTokenCount": usage.cache_read, "thoughtsTokenCount": usage.reasoning,
            "totalTokenCount": usage.input + usage.output + usage.reasoning}  # fmt: skip


def gemini_response(answer: Reply, body: dict[str, Any], model: str) -> dict[str, Any]:
    if isinstance(answer, Text):
        parts: list[dict[str, Any]] = [{"text": answer.text}]
    elif isinstance(answer, ToolCall):
        parts = [{"functionCall": {"name": answer.name, "args": answer.arguments}}]
    else:
        names = [d.get("name", "") for t in body.get("tools", []) for d in t.get("functionDeclarations", [])]
        tool = _pick_tool(names, ("run_shell_command", "shell"))
        parts = [{"functionCall": {"name": tool, "args": {"command": answer.command,
                                                          "description": "run the command"}}}]  # fmt: skip
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": gemini_usage(answer.usage), "modelVersion": model,
            "responseId": f"resp-{time.time_ns()}"}  # fmt: skip


def gemini_side_answer(body: dict[str, Any], model: str) -> dict[str, Any]:
    """Helper calls (router, next speaker, loop check) want JSON of their schema: fill it with calm values."""
    config = body.get("generationConfig") or {}
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    text = json.dumps(schema_value(schema)) if schema else DEFAULT_TEXT
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
            "usageMetadata": gemini_usage(Usage(input=5, output=5)), "modelVersion": model}  # fmt: skip


def schema_value(schema: dict[str, Any]) -> Any:
    """A value of a JSON schema: the user speaks next, nothing loops, every task is simple (score 10)."""
    kind = str(schema.get("type", "object")).lower()
    if "enum" in schema:
        return "user" if "user" in schema["enum"] else schema["enum"][0]
    if kind == "object":
        return {name: schema_value(sub) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return []
    if kind == "boolean":
        return False
    if kind == "integer":
        return 10
    if kind == "number":
        return 0.0
    return "ok"


def gemini_error(status: int) -> dict[str, Any]:
    state = {429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE", 400: "INVALID_ARGUMENT"}.get(status, "INTERNAL")
    return {"error": {"code": status, "message": f"fake {state} ({status})", "status": state}}


# -- OpenAI Responses API (Codex) ---------------------------------------------------------------------------------


def openai_usage(usage: Usage) -> dict[str, Any]:
    return {"input_tokens": usage.input, "input_tokens_details": {"cached_tokens": usage.cache_read},
            "output_tokens": usage.output, "output_tokens_details": {"reasoning_tokens": usage.reasoning},
            "total_tokens": usage.input + usage.output}  # fmt: skip


def openai_item(answer: Reply, api: FakeModelApi, body: dict[str, Any]) -> dict[str, Any]:
    if isinstance(answer, Text):
        return {"type": "message", "id": api.new_id("msg_"), "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": answer.text, "annotations": []}]}  # fmt: skip
    if isinstance(answer, ToolCall):
        return {"type": "function_call", "id": api.new_id("fc_"), "call_id": api.new_id("call_"), "name": answer.name,
                "arguments": json.dumps(answer.arguments), "status": "completed"}  # fmt: skip
    names = [t.get("name", "") for t in body.get("tools", []) if isinstance(t, dict)]
    tool = _pick_tool(names, ("exec_command", "shell_command", "shell"))
    # Codex's tools differ in their argument: exec_command takes a string `cmd`, shell an argv `command`.
    if tool == "shell":
        arguments: dict[str, Any] = {"command": ["bash", "-lc", answer.command]}
    elif tool == "exec_command":
        arguments = {"cmd": answer.command}
    else:
        arguments = {"command": answer.command}
    return {"type": "function_call", "id": api.new_id("fc_"), "call_id": api.new_id("call_"), "name": tool,
            "arguments": json.dumps(arguments), "status": "completed"}  # fmt: skip


def openai_events(answer: Reply, api: FakeModelApi, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The SSE events of one streamed Responses API answer, ending in response.completed with usage."""
    response_id = api.new_id("resp_")
    model = body.get("model", "gpt")
    base = {"id": response_id, "object": "response", "created_at": int(time.time()), "model": model}
    item = openai_item(answer, api, body)
    events: list[dict[str, Any]] = [{"type": "response.created", "response": {**base, "status": "in_progress"}},
                                    {"type": "response.output_item.added", "output_index": 0,
                                     "item": {**item, "status": "in_progress"}}]  # fmt: skip
    if item["type"] == "message":
        events.append({"type": "response.output_text.delta", "item_id": item["id"], "output_index": 0,
                       "content_index": 0, "delta": item["content"][0]["text"]})  # fmt: skip
    events.append({"type": "response.output_item.done", "output_index": 0, "item": item})
    events.append({"type": "response.completed", "response": {**base, "status": "completed", "output": [item],
                                                              "usage": openai_usage(answer.usage)}})  # fmt: skip
    return events


def openai_error(status: int) -> dict[str, Any]:
    kind = {429: "rate_limit_exceeded"}.get(status, "server_error")
    return {"error": {"message": f"fake {kind} ({status})", "type": kind, "code": kind}}


def _pick_tool(names: list[str], preferred: tuple[str, ...]) -> str:
    for name in preferred:
        if name in names:
            return name
    return preferred[0]


def _protocol(path: str) -> str:
    if "/messages" in path:
        return "anthropic"
    if ":generateContent" in path or ":streamGenerateContent" in path or ":countTokens" in path or "/models" in path:
        return "gemini"
    if "/responses" in path or "/chat/completions" in path:
        return "openai"
    return "other"


def _handler(api: FakeModelApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve("GET")

        def do_HEAD(self) -> None:
            self._serve("HEAD")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            raw = read_body(self)
            try:
                body: Any = json.loads(raw) if raw else {}
            except ValueError:
                body = raw.decode(errors="replace")
            path = self.path.split("?", 1)[0]
            protocol = _protocol(path)
            status, turn = self._dispatch(method, path, protocol, body if isinstance(body, dict) else {})
            api.record(
                Request(method, self.path, dict(self.headers.items()), body, protocol, turn, status, time.time())
            )

        def _dispatch(self, method: str, path: str, protocol: str, body: dict[str, Any]) -> tuple[int, bool]:
            if method == "POST" and protocol == "anthropic" and path.endswith("/messages"):
                return self._anthropic(body)
            if method == "POST" and path.endswith("/count_tokens"):
                return self._json(200, {"input_tokens": 100}), False
            if method == "POST" and protocol == "gemini" and ":countTokens" in path:
                return self._json(200, {"totalTokens": 100}), False
            if method == "POST" and protocol == "gemini":
                return self._gemini(path, body)
            if method == "POST" and protocol == "openai" and path.endswith("/responses"):
                return self._openai(body)
            if path.rstrip("/").endswith("/models"):
                return self._json(200, {"data": [], "models": []}), False
            # Anything else (update checks, feature flags, metrics of the vendors): an empty, successful answer.
            return self._json(200, {}), False

        def _error(self, error: HttpError, payload: dict[str, Any]) -> int:
            extra = {"Retry-After": error.retry_after} if error.retry_after is not None else {}
            if error.status == 529 or "anthropic" in json.dumps(payload):
                extra["x-should-retry"] = "true"
            return self._json(error.status, payload, extra)

        def _anthropic(self, body: dict[str, Any]) -> tuple[int, bool]:
            if not anthropic_is_turn(body):
                message = anthropic_message(Text(DEFAULT_TEXT, Usage(input=5, output=5)), api, body)
                return self._answer_anthropic(message, body), False
            answer = api.next_answer()
            if isinstance(answer, HttpError):
                return self._error(answer, anthropic_error(answer.status)), True
            return self._answer_anthropic(anthropic_message(answer, api, body), body), True

        def _answer_anthropic(self, message: dict[str, Any], body: dict[str, Any]) -> int:
            if not body.get("stream"):
                return self._json(200, message, {"request-id": api.new_id("req_")})
            return self._sse([(name, data) for name, data in anthropic_events(message)])

        def _gemini(self, path: str, body: dict[str, Any]) -> tuple[int, bool]:
            model = path.rsplit("/", 1)[-1].split(":", 1)[0]
            stream = ":streamGenerateContent" in path
            if not gemini_is_turn(body):
                return self._gemini_answer(gemini_side_answer(body, model), stream), False
            answer = api.next_answer()
            if isinstance(answer, HttpError):
                return self._error(answer, gemini_error(answer.status)), True
            return self._gemini_answer(gemini_response(answer, body, model), stream), True

        def _gemini_answer(self, response: dict[str, Any], stream: bool) -> int:
            return self._sse([(None, response)]) if stream else self._json(200, response)

        def _openai(self, body: dict[str, Any]) -> tuple[int, bool]:
            answer = api.next_answer()
            if isinstance(answer, HttpError):
                return self._error(answer, openai_error(answer.status)), True
            return self._sse([(e["type"], e) for e in openai_events(answer, api, body)]), True

        def _json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> int:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            return status

        def _sse(self, events: list[tuple[str | None, Any]]) -> int:
            lines = []
            for name, data in events:
                lines.append((f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n")
            payload = "".join(lines).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("request-id", api.new_id("req_"))
            self.end_headers()
            self.wfile.write(payload)
            return 200

        def log_message(self, format: str, *args: Any) -> None:
            pass  # `requests` is the log

    return Handler
