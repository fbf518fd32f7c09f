"""GitHub webhook deliveries as PR events (.ai/PR_OUTCOMES.md): where a delivery is from, which `pull_request`
actions count and the event's fields; the agent marks are attribution.py's. No HTTP here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec

from agentdash.sources.attribution import BUILT_IN, Attribution

DELIVERY_ID = re.compile(r"[A-Za-z0-9-]{1,100}")  # GitHub's X-GitHub-Delivery is a GUID
EVENT_ID_PREFIX = "gh-"  # + X-GitHub-Delivery: a redelivery (same GUID) is a duplicate
# opened and reopened open the PR; edited and synchronize change no state but may add a mark, so they are sent as
# pr.opened at the PR's created_at (the earliest opened wins: a late one moves nothing but the mark).
OPENING_ACTIONS = ("opened", "reopened", "edited", "synchronize")
PR_ACTIONS = (*OPENING_ACTIONS, "closed")


class InvalidDelivery(ValueError):
    """A delivery agentdash cannot use: not JSON, not the shape of its event, no delivery id (HTTP 400)."""


class _Named(msgspec.Struct):
    login: str | None = None
    full_name: str | None = None


class _Routing(msgspec.Struct):
    """What says where a delivery is from, read before its signature is checked (nothing else is trusted yet)."""

    repository: _Named | None = None
    organization: _Named | None = None


class _Ref(msgspec.Struct):
    ref: str


class _PullRequest(msgspec.Struct):
    number: int
    head: _Ref
    base: _Ref
    created_at: str
    user: _Named | None = None
    title: str | None = None
    body: str | None = None
    html_url: str | None = None
    updated_at: str | None = None
    closed_at: str | None = None
    merged_at: str | None = None
    merged: bool | None = None


class _Repository(msgspec.Struct):
    full_name: str


class _PullRequestDelivery(msgspec.Struct):
    action: str
    pull_request: _PullRequest
    repository: _Repository


class _Ping(msgspec.Struct):
    zen: str | None = None


@dataclass(frozen=True)
class PullRequestDelivery:
    """A `pull_request` delivery: its action and the PR event it makes (None for actions that change nothing)."""

    action: str
    event: dict[str, Any] | None  # the wire event of .ai/PR_OUTCOMES.md, for events.parse_event


def delivery_target(body: bytes) -> tuple[str, str]:
    """(owner, repo) the delivery is about: its repository, else (an organization's hook) its organization."""
    try:
        routing = msgspec.json.decode(body, type=_Routing)
    except msgspec.ValidationError as exc:
        raise InvalidDelivery(f"the delivery's repository or organization is malformed: {exc}") from None
    except (msgspec.DecodeError, RecursionError):
        raise InvalidDelivery("the delivery's body is not JSON (set Content type to application/json)") from None
    full_name = routing.repository.full_name if routing.repository else None
    if full_name and "/" in full_name:
        owner, _, repo = full_name.partition("/")
        return owner, repo
    if routing.organization and routing.organization.login:
        return routing.organization.login, ""
    raise InvalidDelivery("the delivery names no repository.full_name nor organization.login")


def delivery_id(header: str | None) -> str:
    if not header or not DELIVERY_ID.fullmatch(header.strip()):
        raise InvalidDelivery("X-GitHub-Delivery must be the delivery's GUID (it makes a redelivery a duplicate)")
    return header.strip()


def ping_zen(body: bytes) -> str | None:
    try:
        return msgspec.json.decode(body, type=_Ping).zen
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return None


def pull_request_event(
    delivery: str, org_id: str, body: bytes, attribution: Attribution = BUILT_IN
) -> PullRequestDelivery:
    """The PR event of a verified `pull_request` delivery for `org_id` (the link's org), per .ai/PR_OUTCOMES.md;
    `attribution` (the org's) finds its agent mark."""
    try:
        payload = msgspec.json.decode(body, type=_PullRequestDelivery)
    except msgspec.ValidationError as exc:
        raise InvalidDelivery(f"not a pull_request delivery: {exc}") from None
    except (msgspec.DecodeError, RecursionError):
        raise InvalidDelivery("the delivery's body is not JSON") from None
    if payload.action not in PR_ACTIONS:
        return PullRequestDelivery(payload.action, None)
    pr = payload.pull_request
    author = pr.user.login if pr.user else None
    kind, at = _kind_and_time(payload.action, pr)
    attributes: dict[str, str] = {"base_branch": pr.base.ref}
    if pr.title:
        attributes["title"] = pr.title
    if pr.html_url:
        attributes["url"] = pr.html_url
    if mark := attribution.agent_mark(pr.body or "", author, pr.head.ref):
        attributes["agent_mark"] = mark
    event: dict[str, Any] = {"id": EVENT_ID_PREFIX + delivery, "type": kind, "org_id": org_id, "occurred_at": at,
                             "repo": payload.repository.full_name, "pr_number": pr.number,
                             "head_branch": pr.head.ref, "attributes": attributes}  # fmt: skip
    if author:
        event["author"] = author
    return PullRequestDelivery(payload.action, event)


def _kind_and_time(action: str, pr: _PullRequest) -> tuple[str, str]:
    if action == "closed":
        if pr.merged or pr.merged_at:
            return "pr.merged", pr.merged_at or pr.closed_at or pr.updated_at or pr.created_at
        return "pr.closed", pr.closed_at or pr.updated_at or pr.created_at
    if action == "reopened":  # the reopen's own time: it is no earlier than the first opened, so it moves nothing
        return "pr.opened", pr.updated_at or pr.created_at
    return "pr.opened", pr.created_at
