"""The ingest API (internal port): POST /v1/events into the event log, plus /healthz and /status.

Writing needs an ingest key (`Authorization: Bearer adk_...`, see auth/ingest_auth.py); each event must be for
one of the key's orgs. /healthz and /status stay open: they are operational and show no org's data.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import msgspec
from litestar import Litestar, Request, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from agentdash.auth import IngestAuth, client_address
from agentdash.events import MAX_BODY_BYTES, Event, InvalidEvent, NotJson, TooLarge, decode_batch, parse_event
from agentdash.projector import Projector
from agentdash.storage import ActiveKey, Storage
from agentdash.web import EXCEPTION_HANDLERS


class Rejection(msgspec.Struct):
    index: int
    id: str | None
    error: str


class IngestResult(msgspec.Struct):
    accepted: int
    duplicates: int
    rejected: list[Rejection]


class StatusReport(msgspec.Struct):
    events_logged: int
    events_projected: int
    lag_events: int
    lag_seconds: float
    last_fold_at: datetime | None


def _event_id(raw: bytes) -> str | None:
    try:
        value = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    event_id = value.get("id") if isinstance(value, dict) else None
    return event_id if isinstance(event_id, str) else None


async def provide_writer(request: Request, state: State) -> ActiveKey | None:
    """The ingest key the request writes with (None in insecure mode); Unauthenticated or Throttled before the
    body is read."""
    auth: IngestAuth = state.ingest_auth
    client = client_address(request.client.host if request.client else None)
    return auth.writer(request.headers.get("authorization"), client)


def outside_scope(event: Event, writer: ActiveKey | None) -> str | None:
    """Why the writer may not store this event, or None when it may."""
    if writer is None or event.org_id in writer.orgs:
        return None
    return (f"org_id {event.org_id!r} is outside the scope of ingest key {writer.id} "
            f"(it may write: {', '.join(sorted(writer.orgs))})")  # fmt: skip


@post("/v1/events", status_code=200, summary="Append a batch of events to the log",
      dependencies={"writer": Provide(provide_writer)}, security=[{"ingestKey": []}])  # fmt: skip
async def post_events(request: Request, state: State, writer: ActiveKey | None) -> IngestResult:
    """Validate each event on its own, store the valid ones of the key's orgs, answer once they are committed."""
    # A cross-site form or `fetch` without preflight can only send text/plain, form or multipart bodies.
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise NotJson(f"Content-Type must be application/json, got {media_type or 'none'!r}")
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
    return IngestResult(accepted=accepted, duplicates=len(stored) - accepted, rejected=rejected)


@get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/status", summary="Event log and projection progress", sync_to_thread=True)
def status(state: State) -> StatusReport:
    projector: Projector = state.projector
    s = projector.status()
    last = datetime.fromtimestamp(s.last_fold_at_us / 1e6, tz=UTC) if s.last_fold_at_us else None
    return StatusReport(s.events_logged, s.events_projected, s.lag_events, s.lag_seconds, last)


def create_ingest_app(storage: Storage, projector: Projector, auth: IngestAuth) -> Litestar:
    key_scheme = SecurityScheme(
        type="http", scheme="bearer", description="an ingest key: agentdash ingest-key create --org ORG"
    )
    return Litestar(
        route_handlers=[post_events, healthz, status],
        state=State({"storage": storage, "projector": projector, "ingest_auth": auth}),
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="agentdash ingest",
            version="1",
            path="/schema",
            components=Components(security_schemes={"ingestKey": key_scheme}),
        ),
        request_max_body_size=MAX_BODY_BYTES + 1,
        on_shutdown=[auth.close],
    )
