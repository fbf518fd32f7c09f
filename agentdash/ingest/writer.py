"""Who writes: the ingest key of a request, and whether it may write an event's org."""

from __future__ import annotations

from litestar import Request
from litestar.datastructures import State

from agentdash.auth import IngestAuth, client_address
from agentdash.events import Event
from agentdash.storage import ActiveKey


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


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()
