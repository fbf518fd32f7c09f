"""POST /v1/events: our JSON contract (SPEC §1) into the event log, with partial success per event."""

from __future__ import annotations

import asyncio
import time

import msgspec
from litestar import Request, post
from litestar.datastructures import State
from litestar.di import Provide

from agentdash.events import MAX_BODY_BYTES, InvalidEvent, NotJson, TooLarge, decode_batch, parse_event
from agentdash.ingest.writer import media_type, outside_scope, provide_writer
from agentdash.monitoring import Monitor, reason_label
from agentdash.storage import ActiveKey, Storage


class Rejection(msgspec.Struct):
    index: int
    id: str | None
    error: str


class IngestResult(msgspec.Struct):
    accepted: int
    duplicates: int
    rejected: list[Rejection]


def _event_id(raw: bytes) -> str | None:
    try:
        value = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    event_id = value.get("id") if isinstance(value, dict) else None
    return event_id if isinstance(event_id, str) else None


@post("/v1/events", status_code=200, summary="Append a batch of events to the log",
      dependencies={"writer": Provide(provide_writer)}, security=[{"ingestKey": []}])  # fmt: skip
async def post_events(request: Request, state: State, writer: ActiveKey | None) -> IngestResult:
    """Validate each event on its own, store the valid ones of the key's orgs, answer once they are committed."""
    # A cross-site form or `fetch` without preflight can only send text/plain, form or multipart bodies.
    kind = media_type(request)
    if kind != "application/json":
        raise NotJson(f"Content-Type must be application/json, got {kind or 'none'!r}")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise TooLarge(f"body is {len(body)} bytes; at most {MAX_BODY_BYTES} bytes per request")
    raws = decode_batch(body)  # InvalidEvent: the whole body is unusable
    now_us = time.time_ns() // 1000
    valid, rejected = [], []
    for index, raw in enumerate(raws):
        try:
            event = parse_event(raw, now_us)
        except TooLarge as exc:
            raise TooLarge(f"event {index}: {exc}") from None
        except InvalidEvent as exc:
            rejected.append(Rejection(index=index, id=_event_id(raw), error=str(exc)))
            continue
        if refusal := outside_scope(event, writer):
            rejected.append(Rejection(index=index, id=event.id, error=refusal))
        else:
            valid.append(event)
    stored: list[bool] = []
    if valid:
        storage: Storage = state.storage
        stored = await asyncio.wrap_future(storage.submit(valid))  # Overloaded: 503, the producer retries
    accepted = sum(stored)
    monitor: Monitor = state.monitor
    monitor.events.add(accepted, len(stored) - accepted, [reason_label(r.error) for r in rejected])
    return IngestResult(accepted=accepted, duplicates=len(stored) - accepted, rejected=rejected)
