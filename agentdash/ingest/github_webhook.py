"""POST /v1/github/webhook: GitHub's `pull_request` deliveries as PR events in the log (.ai/PR_OUTCOMES.md).

The delivery's repository names its owner, the owner's (or that repo's) link names the org and the secret that must
have signed the body (auth/webhook_auth.py). `ping` is answered, other events and actions are counted and ignored.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import msgspec
from litestar import Request, Response, post
from litestar.datastructures import State

from agentdash.auth import WebhookAuth, client_address
from agentdash.events import MAX_BODY_BYTES, NotJson, TooLarge, parse_event
from agentdash.ingest.writer import media_type
from agentdash.sources import OrgAttribution, delivery_id, delivery_target, ping_zen, pull_request_event
from agentdash.storage import Storage


class DeliveryCount(msgspec.Struct, frozen=True):
    event: str  # X-GitHub-Event, with the action for pull_request ("pull_request.opened")
    outcome: str  # stored, duplicate, ignored, pong, refused (any error answer)
    deliveries: int


class DeliveryCounts:
    """Deliveries since this process started, per event and outcome, for /status (a Counter under a lock)."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def add(self, event: str, outcome: str) -> None:
        with self._lock:
            self._counts[(event[:64], outcome)] += 1  # the header is the client's text: bounded

    def report(self) -> list[DeliveryCount]:
        with self._lock:
            return [DeliveryCount(event, outcome, n) for (event, outcome), n in sorted(self._counts.items())]


class WebhookAnswer(msgspec.Struct, omit_defaults=True):
    """What GitHub's "Recent Deliveries" shows for a delivery."""

    outcome: str  # stored, duplicate, ignored, pong
    event: str
    org_id: str | None = None
    event_id: str | None = None
    type: str | None = None
    agent_mark: str | None = None
    reason: str | None = None
    zen: str | None = None


@post("/v1/github/webhook", status_code=200, summary="Receive a GitHub webhook delivery (pull_request, ping)")
async def github_webhook(request: Request, state: State) -> Response[WebhookAnswer]:
    """Verify the signature against the link of the delivery's owner or repo, then store its PR event."""
    counts: DeliveryCounts = state.github_deliveries
    event = (request.headers.get("x-github-event") or "").strip() or "unknown"
    try:
        answer = await _receive(request, state, event)
    except Exception:  # any error answer; unauthenticated text must not grow the table, so unknown names are "other"
        counts.add(event if event in ("ping", "pull_request") else "other", "refused")
        raise
    counts.add(answer.event, answer.outcome)
    return Response(answer, status_code=202 if answer.outcome == "ignored" else 200)


async def _receive(request: Request, state: State, event: str) -> WebhookAnswer:
    # GitHub's other choice, form-encoded (`payload=`), is refused: one format, and a clear message to switch.
    kind = media_type(request)
    if kind != "application/json":
        raise NotJson(f"Content-Type must be application/json (the webhook's 'Content type' on GitHub), "
                      f"got {kind or 'none'!r}")  # fmt: skip
    auth: WebhookAuth = state.webhook_auth
    client = client_address(request.client.host if request.client else None)
    header = auth.require_signature(request.headers.get("x-hub-signature-256"), client)  # before the body is read
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise TooLarge(f"body is {len(body)} bytes; at most {MAX_BODY_BYTES} bytes per delivery")
    owner, repo = delivery_target(body)  # InvalidDelivery: 400
    link = auth.verify(owner, repo, body, header, client)  # NotLinked 404, BadSignature 401, Throttled 429
    if event == "ping":
        return WebhookAnswer("pong", event, org_id=link.org_id, zen=ping_zen(body))
    if event != "pull_request":
        return WebhookAnswer("ignored", event, reason=f"agentdash takes pull_request deliveries, not {event}")
    attribution: OrgAttribution = state.attribution
    translated = pull_request_event(delivery_id(request.headers.get("x-github-delivery")), link.org_id, body,
                                    attribution.of(link.org_id))  # fmt: skip
    if translated.event is None:
        return WebhookAnswer("ignored", f"{event}.{translated.action}",
                             reason=f"pull_request action {translated.action!r} changes no PR state")  # fmt: skip
    stored_event = parse_event(msgspec.json.encode(translated.event), time.time_ns() // 1000)  # InvalidEvent: 400
    storage: Storage = state.storage
    (stored,) = await asyncio.wrap_future(storage.submit([stored_event]))  # Overloaded: 503, GitHub may redeliver
    return WebhookAnswer("stored" if stored else "duplicate", f"{event}.{translated.action}", org_id=link.org_id,
                         event_id=stored_event.id, type=stored_event.type,
                         agent_mark=translated.event["attributes"].get("agent_mark"))  # fmt: skip
