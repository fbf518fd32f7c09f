"""The event contract (SPEC §1): parsing and validating what producers send."""

from __future__ import annotations

import hashlib
import re
import time
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec

PR_TYPES = ("pr.opened", "pr.merged", "pr.closed")  # a forge's pull requests (SPEC §7, .ai/PR_OUTCOMES.md)
CODE_TYPE = "code.changed"  # an agent's code counts (SPEC §7: lines_added, lines_removed, commits)
EVENT_TYPES = (
    "session.started", "message.sent", "run.queued", "run.started", "run.finished", "handoff", "usage", *PR_TYPES,
    CODE_TYPE,
)  # fmt: skip
RUN_TYPES = ("run.queued", "run.started", "run.finished", "handoff")  # run_id required; optional on usage
CONSUMPTION_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd")
CONSUMING_TYPES = ("run.finished", "usage")  # the types that may carry CONSUMPTION_FIELDS
RUN_STATUSES = ("succeeded", "failed", "cancelled")
FAILURE_CATEGORIES = ("tool_error", "model_error", "timeout", "infra_error", "other")
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_EVENTS = 1000
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_FUTURE_US = 24 * 3600 * 1_000_000
MAX_INT64 = 2**63 - 1  # what the log's INTEGER columns hold
# The most one event's cost_usd may be (JSON events and OTLP records alike): the read models sum money as integer
# picodollars (cost * 1e12 in a HUGEINT), so a sum of even billions of maximal costs fits.
MAX_COST_USD = 1e14
_NONE5 = (None, None, None, None, None)
_NONE2 = (None, None)
_NONE4 = (None, None, None, None)
_NONE3 = (None, None, None)
PR_FIELDS = ("repo", "pr_number", "head_branch", "author")  # top-level on pr.* events only
CODE_FIELDS = ("lines_added", "lines_removed", "commits")  # on code.changed only; `series` too

Text = msgspec.Meta(min_length=1, max_length=128)
AttrValue = str | int | float | bool


class WireEvent(msgspec.Struct, forbid_unknown_fields=True):
    """One event exactly as a producer sends it."""

    id: Annotated[str, Text]
    type: Literal[EVENT_TYPES]  # type: ignore[valid-type]
    org_id: Annotated[str, Text]
    occurred_at: datetime
    user_id: Annotated[str, Text] | None = None  # required on all but pr.* events: see _normalise
    session_id: Annotated[str, Text] | None = None  # required on all but pr.* events, absent on those
    run_id: Annotated[str, Text] | None = None
    team_id: Annotated[str, Text] | None = None
    status: Literal[RUN_STATUSES] | None = None  # type: ignore[valid-type]
    failure_category: Literal[FAILURE_CATEGORIES] | None = None  # type: ignore[valid-type]
    input_tokens: Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)] | None = None
    output_tokens: Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)] | None = None
    cache_read_tokens: Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)] | None = None
    cache_write_tokens: Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)] | None = None
    cost_usd: Annotated[float, msgspec.Meta(ge=0, le=MAX_COST_USD)] | None = None
    attributes: dict[str, AttrValue] | None = None
    repo: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    pr_number: Annotated[int, msgspec.Meta(ge=1, le=MAX_INT64)] | None = None
    head_branch: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None
    author: Annotated[str, Text] | None = None
    lines_added: Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)] | None = None
    lines_removed: Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)] | None = None
    commits: Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)] | None = None
    series: Annotated[str, Text] | None = None  # the counts are this series' running totals (see _normalise_code)


class Batch(msgspec.Struct):
    """The request body: a list of still-unparsed events, so each is judged on its own."""

    events: list[msgspec.Raw]


class Event(msgspec.Struct, array_like=True, frozen=True):
    """A validated event, normalised for storage (times in UTC microseconds)."""

    id: str
    type: str
    org_id: str
    user_id: str | None  # None only on pr.* events
    session_id: str | None  # None exactly on pr.* events
    run_id: str | None
    team_id: str | None
    occurred_us: int
    status: str | None
    failure_category: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float
    model: str | None
    repo: str | None  # attributes.repo; a PR's `repo`
    attributes: str | None  # the full attributes object as JSON, kept for later use
    # Last and defaulted, so code that builds an Event without them (the OTLP mapping) keeps working.
    branch: str | None = None  # attributes.branch; a PR's `head_branch`
    pr_number: int | None = None
    author: str | None = None  # a PR's forge login
    agent_mark: str | None = None  # attributes.agent_mark (pr.* events)
    lines_added: int = 0  # code.changed: what the agent changed, or with `series` its running totals
    lines_removed: int = 0
    commits: int = 0
    series: str | None = None
    agent: str | None = None  # attributes.agent: the agent that did the work (OTLP: service.name)

    def __post_init__(self) -> None:
        # branch and agent are attributes.branch and .agent however the Event was built (parse_event and the OTLP
        # mapping set them; an Event built by hand may not).
        if not self.attributes:
            return
        for name in ("branch", "agent"):
            if getattr(self, name) is None and f'"{name}"' in self.attributes:
                value = _decode_attributes(self.attributes).get(name)
                if value is not None:
                    msgspec.structs.force_setattr(self, name, value if isinstance(value, str) else str(value))


class InvalidEvent(ValueError):
    """An event that breaks the contract; the message says how, for a person to read."""


class NotJson(ValueError):
    """The request says its body is something other than JSON (HTTP 415)."""


class TooLarge(InvalidEvent):
    """A request or an event over its size limit: the whole request is refused (HTTP 413), not just that event."""


_decode_wire = msgspec.json.Decoder(WireEvent).decode
_decode_attributes = msgspec.json.Decoder(dict[str, AttrValue]).decode
_decode_batch = msgspec.json.Decoder(Batch).decode
_encode = msgspec.json.encode


def dedupe_key(org_id: str, event_id: str) -> int:
    """A signed 64-bit hash of (org_id, id): the compact dedupe key kept in memory and in the log."""
    digest = hashlib.blake2b(f"{org_id}\x00{event_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def decode_batch(body: bytes) -> list[msgspec.Raw]:
    """Parse the envelope; raises InvalidEvent naming what is wrong with the body."""
    try:
        events = _decode_batch(body).events
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: catch it first
        raise InvalidEvent(f'body must be {{"events": [...]}}: {exc}') from None
    except msgspec.DecodeError as exc:
        raise InvalidEvent(f"body is not JSON: {exc}") from None
    except RecursionError:  # msgspec walks nested values even to skip them
        raise InvalidEvent("body nests JSON arrays or objects too deeply") from None
    if not events:
        raise InvalidEvent("events must hold at least 1 event")
    if len(events) > MAX_BATCH_EVENTS:
        raise TooLarge(f"events holds {len(events)} events; at most {MAX_BATCH_EVENTS} per request")
    return events


def _field_error(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    if "Object missing required field" in text:
        return text.replace("Object missing required field", "missing required field")
    return text.replace("`$.", "`")


def parse_event(raw: bytes, now_us: int | None = None) -> Event:
    """Validate one raw event against SPEC §1 and normalise it."""
    if len(raw) > MAX_EVENT_BYTES:
        raise TooLarge(f"event is {len(raw)} bytes; at most {MAX_EVENT_BYTES} bytes per event")
    try:
        wire = _decode_wire(raw)
    except msgspec.ValidationError as exc:
        raise InvalidEvent(_field_error(exc)) from None
    except msgspec.DecodeError as exc:
        raise InvalidEvent(f"event is not valid JSON: {exc}") from None
    if _NUL_ESCAPE.search(raw):  # JSON must escape NUL, so this byte search (no copy of a Raw) guards the exact check
        _refuse_nul(wire)
    return _normalise(wire, time.time_ns() // 1000 if now_us is None else now_us)


_NUL_ESCAPE = re.compile(rb"\\u0000")


def _refuse_nul(wire: WireEvent) -> None:
    """NUL is no character a person or system means to send, and PostgreSQL text cannot hold it: refuse it."""
    for name in wire.__struct_fields__:
        value = getattr(wire, name)
        if isinstance(value, str) and "\x00" in value:
            raise InvalidEvent(f"{name} contains a NUL character (\\u0000)")
    for key, value in (wire.attributes or {}).items():
        if "\x00" in key or (isinstance(value, str) and "\x00" in value):
            raise InvalidEvent(f"attributes.{key.replace(chr(0), '?')} contains a NUL character (\\u0000)")


def _normalise(wire: WireEvent, now_us: int) -> Event:
    at = wire.occurred_at
    if at.tzinfo is None:
        raise InvalidEvent("occurred_at must be an RFC 3339 timestamp with an offset (e.g. Z or +02:00)")
    occurred_us = _epoch_us(at)
    if occurred_us - now_us > MAX_FUTURE_US:
        raise InvalidEvent("occurred_at is more than 24 h in the future")
    if wire.type in PR_TYPES:
        return _normalise_pr(wire, occurred_us)
    if wire.user_id is None or wire.session_id is None:  # msgspec's own words, as when both were required fields
        raise InvalidEvent(f"missing required field `{'user_id' if wire.user_id is None else 'session_id'}`")
    if (wire.repo, wire.pr_number, wire.head_branch, wire.author) != _NONE4:
        name = next(name for name in PR_FIELDS if getattr(wire, name) is not None)
        hint = " (a run's repo goes in attributes.repo)" if name == "repo" else ""
        raise InvalidEvent(f"{name} is only allowed on pr.opened, pr.merged and pr.closed events{hint}")
    if wire.type in RUN_TYPES:
        if wire.run_id is None:
            raise InvalidEvent(f"run_id is required on {wire.type} events")
    elif wire.run_id is not None and wire.type not in ("usage", CODE_TYPE):
        raise InvalidEvent(
            f"run_id must be absent on {wire.type} events (it is allowed on run.*, handoff, usage and code.changed)"
        )
    if wire.type == "run.finished":
        if wire.status is None:
            raise InvalidEvent("status is required on run.finished events")
        if wire.status == "failed" and wire.failure_category is None:
            raise InvalidEvent("failure_category is required when status is failed")
        if wire.status != "failed" and wire.failure_category is not None:
            raise InvalidEvent(f"failure_category must be absent when status is {wire.status}")
    elif (wire.status, wire.failure_category) != _NONE2:
        name = "status" if wire.status is not None else "failure_category"
        raise InvalidEvent(f"{name} is only allowed on run.finished events")
    if wire.type not in CONSUMING_TYPES and (
        (wire.input_tokens, wire.output_tokens, wire.cache_read_tokens, wire.cache_write_tokens, wire.cost_usd)
        != _NONE5
    ):
        for name in CONSUMPTION_FIELDS:
            if getattr(wire, name) is not None:
                raise InvalidEvent(f"{name} is only allowed on run.finished and usage events")
    if wire.cost_usd is not None and wire.cost_usd != wire.cost_usd:  # NaN slips past ge=0
        raise InvalidEvent("cost_usd must be a number >= 0")
    if wire.type == CODE_TYPE:
        return _normalise_code(wire, occurred_us)
    if (wire.lines_added, wire.lines_removed, wire.commits, wire.series) != _NONE4:
        name = next(name for name in (*CODE_FIELDS, "series") if getattr(wire, name) is not None)
        raise InvalidEvent(f"{name} is only allowed on code.changed events")
    attrs = wire.attributes
    return Event(  # positional: this runs once per event on the ingest hot path
        wire.id, wire.type, wire.org_id, wire.user_id, wire.session_id, wire.run_id, wire.team_id, occurred_us,
        wire.status, wire.failure_category, wire.input_tokens or 0, wire.output_tokens or 0,
        wire.cache_read_tokens or 0, wire.cache_write_tokens or 0, float(wire.cost_usd or 0.0),
        _text_attr(attrs, "model"), _text_attr(attrs, "repo"), _encode(attrs).decode() if attrs else None,
        _text_attr(attrs, "branch"), agent=_text_attr(attrs, "agent"),
    )  # fmt: skip


def _normalise_pr(wire: WireEvent, occurred_us: int) -> Event:
    """A pr.* event: repo, pr_number and head_branch required; no session, run or run outcome."""
    for name in ("repo", "pr_number", "head_branch"):
        if getattr(wire, name) is None:
            raise InvalidEvent(f"{name} is required on {wire.type} events")
    for name in ("session_id", "run_id", "status", "failure_category", *CONSUMPTION_FIELDS, *CODE_FIELDS, "series"):
        if getattr(wire, name) is not None:
            raise InvalidEvent(f"{name} must be absent on {wire.type} events (a PR is linked to runs by its branch)")
    attrs = wire.attributes
    return Event(
        wire.id, wire.type, wire.org_id, wire.user_id, None, None, wire.team_id, occurred_us, None, None, 0, 0, 0, 0,
        0.0, _text_attr(attrs, "model"), wire.repo, _encode(attrs).decode() if attrs else None, wire.head_branch,
        wire.pr_number, wire.author, _text_attr(attrs, "agent_mark"), agent=_text_attr(attrs, "agent"),
    )  # fmt: skip


def _normalise_code(wire: WireEvent, occurred_us: int) -> Event:
    """A code.changed event: at least one count. With `series`, the counts are running totals of that series, and
    each event counts its increase over the series' previous one (the fold takes the differences, .ai/PR_OUTCOMES.md)."""
    if (wire.lines_added, wire.lines_removed, wire.commits) == _NONE3:
        raise InvalidEvent("code.changed events need at least one of lines_added, lines_removed, commits")
    attrs = wire.attributes
    return Event(
        wire.id, wire.type, wire.org_id, wire.user_id, wire.session_id, wire.run_id, wire.team_id, occurred_us, None,
        None, 0, 0, 0, 0, 0.0, _text_attr(attrs, "model"), _text_attr(attrs, "repo"),
        _encode(attrs).decode() if attrs else None, _text_attr(attrs, "branch"), lines_added=wire.lines_added or 0,
        lines_removed=wire.lines_removed or 0, commits=wire.commits or 0, series=wire.series,
        agent=_text_attr(attrs, "agent"),
    )  # fmt: skip


def _text_attr(attrs: dict[str, AttrValue] | None, key: str) -> str | None:
    if not attrs or key not in attrs:
        return None
    value = attrs[key]
    return value if isinstance(value, str) else str(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_us(at: datetime) -> int:
    # Integer arithmetic: float timestamps would lose microseconds.
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
