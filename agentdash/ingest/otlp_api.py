"""OTLP/HTTP on the ingest port (SPEC §6): /v1/logs, /v1/metrics, /v1/traces from the agents people run.

Same keys, limits and durability as /v1/events (200 = committed); answers as the OTLP/HTTP specification says,
in the request's encoding: the export response, with `partial_success` when records were dropped, or a
`google.rpc.Status` for an error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from litestar import Request, Response, Router, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.types import ExceptionHandlersMap

from agentdash.ingest.writer import provide_writer
from agentdash.sources import (
    JSON,
    LOGS,
    METRICS,
    TRACES,
    Signal,
    SourceStats,
    TranslatePool,
    WrongMediaType,
    encode_answer,
    encoding_of,
    error_answer,
    success_answer,
)
from agentdash.storage import ActiveKey, Storage
from agentdash.web import EXCEPTION_HANDLERS


async def _export(signal: Signal, request: Request, state: State, writer: ActiveKey | None) -> Response:
    encoding = encoding_of(request.headers.get("content-type", ""))
    body = await request.body()
    pool: TranslatePool = state.translate_pool
    translation = await pool.translate(signal, body, encoding, request.headers.get("content-encoding", ""),
                                       writer.orgs if writer else None, time.time_ns() // 1000)  # fmt: skip
    if translation.events:
        storage: Storage = state.storage
        # Overloaded: 503 with Retry-After, and nothing of the export is stored; the exporter retries it whole.
        translation.stored(await asyncio.wrap_future(storage.submit(translation.events)))
    stats: SourceStats = state.source_stats
    stats.add(translation)
    answer = success_answer(signal, translation.rejected, translation.first_reason)
    return Response(encode_answer(answer, encoding), media_type=encoding, status_code=200)


@post("/v1/logs", summary="OTLP/HTTP logs (protobuf or JSON, gzip): agents' events", status_code=200)
async def post_logs(request: Request, state: State, writer: ActiveKey | None) -> Response:
    return await _export(LOGS, request, state, writer)


@post("/v1/traces", summary="OTLP/HTTP traces: agent interactions and GenAI invoke_agent spans", status_code=200)
async def post_traces(request: Request, state: State, writer: ActiveKey | None) -> Response:
    return await _export(TRACES, request, state, writer)


@post("/v1/metrics", summary="OTLP/HTTP metrics: accepted and counted on /status", status_code=200)
async def post_metrics(request: Request, state: State, writer: ActiveKey | None) -> Response:
    return await _export(METRICS, request, state, writer)


def _as_status(handler: Callable[[Request, Exception], Response]) -> Callable[[Request, Exception], Response]:
    """The same status and headers as everywhere on the port, with the body an OTLP client expects."""

    def answer(request: Request, exc: Exception) -> Response:
        plain = handler(request, exc)
        content = plain.content if isinstance(plain.content, dict) else {}
        message = str(content.get("error", "error"))
        try:
            encoding = encoding_of(request.headers.get("content-type", ""))
        except WrongMediaType:
            encoding = JSON
        status_code = plain.status_code or 500
        body = encode_answer(error_answer(status_code, message), encoding)
        return Response(body, status_code=status_code, headers=dict(plain.headers), media_type=encoding)

    return answer


OTLP_EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    cls: _as_status(handler) for cls, handler in EXCEPTION_HANDLERS.items()
}

otlp_router = Router(path="/", route_handlers=[post_logs, post_traces, post_metrics],
                     dependencies={"writer": Provide(provide_writer)}, security=[{"ingestKey": []}],
                     exception_handlers=OTLP_EXCEPTION_HANDLERS)  # fmt: skip
