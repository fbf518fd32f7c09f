"""Unit tests of the event contract (SPEC §1) as enforced by `agentdash.events`."""

from __future__ import annotations

import calendar
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from agentdash.events import (
    EVENT_TYPES as ALL_EVENT_TYPES,
)
from agentdash.events import (
    FAILURE_CATEGORIES,
    MAX_BATCH_EVENTS,
    MAX_COST_USD,
    MAX_EVENT_BYTES,
    PR_TYPES,
    Event,
    InvalidEvent,
    decode_batch,
    dedupe_key,
    parse_event,
)

NOW = datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)
NOW_US = calendar.timegm(NOW.utctimetuple()) * 1_000_000
AT = "2026-03-01T10:00:00Z"
AT_US = calendar.timegm((2026, 3, 1, 10, 0, 0)) * 1_000_000

EVENT_TYPES = tuple(t for t in ALL_EVENT_TYPES if t not in PR_TYPES)  # every type with a session; pr.*: below
RUN_TYPES = ("run.queued", "run.started", "run.finished", "handoff")
NON_RUN_TYPES = ("session.started", "message.sent")
CONSUMING = ("run.finished", "usage")
AMOUNTS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
ID_FIELDS = ("id", "org_id", "user_id", "session_id", "run_id", "team_id")


def wire(type_: str = "session.started", **fields) -> dict:
    """A valid wire event of the given type; `field=...` (Ellipsis) removes a field."""
    event = {"id": "e1", "type": type_, "org_id": "o1", "user_id": "u1", "session_id": "s1", "occurred_at": AT}
    if type_ in RUN_TYPES:
        event["run_id"] = "r1"
    if type_ == "run.finished":
        event["status"] = "succeeded"
    if type_ == "code.changed":
        event["lines_added"] = 1
    for name, value in fields.items():
        if value is ...:
            event.pop(name, None)
        else:
            event[name] = value
    return event


def parse(event: dict | bytes) -> Event:
    raw = event if isinstance(event, bytes) else json.dumps(event).encode()
    return parse_event(raw, now_us=NOW_US)


def reject(event: dict | bytes, *words: str) -> str:
    """Assert the event is rejected and that the reason mentions every word; return the reason."""
    with pytest.raises(InvalidEvent) as info:
        parse(event)
    reason = str(info.value)
    assert reason, "a rejection must carry a human-readable reason"
    for word in words:
        assert word in reason, f"reason {reason!r} does not mention {word!r}"
    return reason


# -- required fields and types -----------------------------------------------------------------


@pytest.mark.parametrize("type_", EVENT_TYPES)
def test_minimal_event_of_every_type_is_accepted(type_):
    event = parse(wire(type_))
    assert event.type == type_
    assert (event.id, event.org_id, event.user_id, event.session_id) == ("e1", "o1", "u1", "s1")
    assert event.occurred_us == AT_US
    assert event.run_id == ("r1" if type_ in RUN_TYPES else None)
    assert event.team_id is None
    assert (event.input_tokens, event.output_tokens, event.cost_usd) == (0, 0, 0.0)  # absent = 0
    assert (event.cache_read_tokens, event.cache_write_tokens) == (0, 0)


@pytest.mark.parametrize("field", ["id", "type", "org_id", "user_id", "session_id", "occurred_at"])
@pytest.mark.parametrize("type_", ["session.started", "run.finished"])
def test_missing_required_field_is_named(type_, field):
    reject(wire(type_, **{field: ...}), field)


@pytest.mark.parametrize("bad", ["run.failed", "Run.started", "session", "", "run.finished "])
def test_type_outside_the_enum_is_rejected(bad):
    reject(wire(type=bad), "type")


def test_type_must_be_a_string():
    reject(wire(type=1), "type")


def test_unknown_top_level_field_is_rejected_and_named():
    reject(wire(colour="blue"), "colour")
    # a typo of a real field is unknown too, not silently dropped
    reject(wire("run.finished", costusd=1.0), "costusd")


def test_event_must_be_an_object():
    reject(b"[1, 2]")
    reject(b'"event"')
    reject(b"{not json")


# -- run_id --------------------------------------------------------------------------------------


@pytest.mark.parametrize("type_", RUN_TYPES)
def test_run_id_is_required_on_run_events_and_handoff(type_):
    reject(wire(type_, run_id=...), "run_id")


@pytest.mark.parametrize("type_", NON_RUN_TYPES)
def test_run_id_must_be_absent_on_other_events(type_):
    reject(wire(type_, run_id="r1"), "run_id")


# -- status and failure_category -----------------------------------------------------------------


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_each_status_is_accepted_on_run_finished(status):
    extra = {"failure_category": "timeout"} if status == "failed" else {}
    event = parse(wire("run.finished", status=status, **extra))
    assert event.status == status


def test_status_is_required_on_run_finished():
    reject(wire("run.finished", status=...), "status")


def test_status_outside_the_enum_is_rejected():
    reject(wire("run.finished", status="done"), "status")
    reject(wire("run.finished", status="SUCCEEDED"), "status")


@pytest.mark.parametrize("type_", [t for t in EVENT_TYPES if t != "run.finished"])
def test_status_is_only_allowed_on_run_finished(type_):
    reject(wire(type_, status="succeeded"), "status")


@pytest.mark.parametrize("category", FAILURE_CATEGORIES)
def test_each_failure_category_is_accepted_when_failed(category):
    event = parse(wire("run.finished", status="failed", failure_category=category))
    assert (event.status, event.failure_category) == ("failed", category)


def test_failure_category_set_matches_spec():
    assert set(FAILURE_CATEGORIES) == {"tool_error", "model_error", "timeout", "infra_error", "other"}
    assert set(EVENT_TYPES) == {"session.started", "message.sent", "usage", "code.changed", *RUN_TYPES}
    assert set(ALL_EVENT_TYPES) == {*EVENT_TYPES, "pr.opened", "pr.merged", "pr.closed"}


def test_failure_category_is_required_when_failed():
    reject(wire("run.finished", status="failed"), "failure_category")


@pytest.mark.parametrize("status", ["succeeded", "cancelled"])
def test_failure_category_must_be_absent_unless_failed(status):
    reject(wire("run.finished", status=status, failure_category="timeout"), "failure_category")


def test_failure_category_outside_the_enum_is_rejected():
    reject(wire("run.finished", status="failed", failure_category="oops"), "failure_category")


@pytest.mark.parametrize("type_", [t for t in EVENT_TYPES if t != "run.finished"])
def test_failure_category_is_not_allowed_on_other_types(type_):
    reject(wire(type_, failure_category="timeout"), "failure_category")


# -- tokens and cost ---------------------------------------------------------------------------


def test_tokens_and_cost_are_kept_on_run_finished():
    event = parse(wire("run.finished", input_tokens=1200, output_tokens=34, cost_usd=0.125))
    assert (event.input_tokens, event.output_tokens, event.cost_usd) == (1200, 34, 0.125)
    zero = parse(wire("run.finished", input_tokens=0, output_tokens=0, cost_usd=0))
    assert (zero.input_tokens, zero.output_tokens, zero.cost_usd) == (0, 0, 0.0)
    integral_cost = parse(wire("run.finished", cost_usd=2))
    assert integral_cost.cost_usd == 2.0 and isinstance(integral_cost.cost_usd, float)


@pytest.mark.parametrize("field,value", [
    ("input_tokens", -1), ("output_tokens", -1), ("cost_usd", -0.01),
    ("input_tokens", 1.5), ("output_tokens", "10"), ("input_tokens", True), ("cost_usd", "1.0"), ("cost_usd", False),
])  # fmt: skip
def test_tokens_and_cost_must_be_non_negative_numbers(field, value):
    reject(wire("run.finished", **{field: value}), field)


@pytest.mark.parametrize("field,value", [(name, 1) for name in AMOUNTS] + [("cost_usd", 0.5)])
@pytest.mark.parametrize("type_", [t for t in EVENT_TYPES if t not in CONSUMING])
def test_tokens_and_cost_only_on_run_finished_and_usage(type_, field, value):
    reason = reject(wire(type_, **{field: value}), field)
    assert "run.finished and usage" in reason


# -- usage ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("type_", CONSUMING)
def test_every_amount_is_kept_on_run_finished_and_usage(type_):
    event = parse(wire(type_, input_tokens=1200, output_tokens=34, cache_read_tokens=50_000, cache_write_tokens=7,
                       cost_usd=0.125, attributes={"model": "claude-sonnet"}))  # fmt: skip
    assert (event.input_tokens, event.output_tokens, event.cache_read_tokens, event.cache_write_tokens) == (
        1200, 34, 50_000, 7,
    )  # fmt: skip
    assert (event.cost_usd, event.model) == (0.125, "claude-sonnet")


def test_usage_takes_a_run_id_or_none():
    assert parse(wire("usage", run_id="r7")).run_id == "r7"
    assert parse(wire("usage")).run_id is None  # the session's own call (a title, a summary)


@pytest.mark.parametrize("field", AMOUNTS)
@pytest.mark.parametrize("value", [-1, 1.5, "10", True, 2**63])
def test_usage_amounts_must_be_non_negative_integers(field, value):
    reject(wire("usage", **{field: value}), field)


@pytest.mark.parametrize("value", [-0.01, "1.0", False])
def test_usage_cost_must_be_a_non_negative_number(value):
    reject(wire("usage", cost_usd=value), "cost_usd")


@pytest.mark.parametrize("type_", CONSUMING)
@pytest.mark.parametrize("value", [MAX_COST_USD + 1, 2e14, 1e300, 10**15])
def test_a_cost_above_the_limit_is_refused_naming_the_field_and_the_limit(type_, value):
    # Refused at ingest rather than capped later by the read models' integer picodollars.
    reject(wire(type_, cost_usd=value), "cost_usd", "<= 100000000000000")


def test_a_cost_of_exactly_the_limit_is_accepted():
    assert MAX_COST_USD == 1e14
    assert parse(wire("usage", cost_usd=1e14)).cost_usd == 1e14
    assert parse(wire("run.finished", cost_usd=10**14)).cost_usd == 1e14  # an integral JSON number too


@pytest.mark.parametrize(("field", "value"), [("status", "succeeded"), ("failure_category", "timeout")])
def test_usage_has_no_outcome(field, value):
    assert "only allowed on run.finished events" in reject(wire("usage", **{field: value}), field)


# -- occurred_at -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["2026-03-01T10:00:00", "2026-03-01 10:00:00", "2026-03-01"])
def test_occurred_at_needs_an_offset(value):
    reject(wire(occurred_at=value), "occurred_at")


@pytest.mark.parametrize("value", ["yesterday", "", "2026-13-01T10:00:00Z", 1772359200, None])
def test_occurred_at_must_be_a_timestamp(value):
    reject(wire(occurred_at=value), "occurred_at")


@pytest.mark.parametrize("value", [
    "2026-03-01T10:00:00Z",
    "2026-03-01T10:00:00+00:00",
    "2026-03-01T12:00:00+02:00",
    "2026-03-01T05:30:00-04:30",
    "2026-03-02T00:00:00+14:00",
    "2026-02-28T22:00:00-12:00",
    "2026-03-01T10:00:00.000000Z",
])  # fmt: skip
def test_offsets_are_normalised_to_the_same_utc_instant(value):
    assert parse(wire(occurred_at=value)).occurred_us == AT_US


def test_microseconds_survive_normalisation():
    utc = parse(wire(occurred_at="2026-03-01T10:00:00.123456Z")).occurred_us
    shifted = parse(wire(occurred_at="2026-03-01T15:45:00.123456+05:45")).occurred_us
    assert utc == shifted == AT_US + 123_456


def test_occurred_at_far_in_the_past_is_accepted():
    assert parse(wire(occurred_at="2001-09-09T01:46:40Z")).occurred_us == 1_000_000_000 * 1_000_000


def _at(delta: timedelta, offset_hours: int = 0) -> str:
    tz = timezone(timedelta(hours=offset_hours))
    return (NOW + delta).astimezone(tz).isoformat()


@pytest.mark.parametrize("offset_hours", [0, 5, -7])
def test_occurred_at_23h_in_the_future_is_accepted(offset_hours):
    event = parse(wire(occurred_at=_at(timedelta(hours=23), offset_hours)))
    assert event.occurred_us == NOW_US + 23 * 3600 * 1_000_000


@pytest.mark.parametrize("offset_hours", [0, 5, -7])
def test_occurred_at_more_than_24h_in_the_future_is_rejected(offset_hours):
    reject(wire(occurred_at=_at(timedelta(hours=24, seconds=1), offset_hours)), "occurred_at")
    reject(wire(occurred_at=_at(timedelta(days=30), offset_hours)), "occurred_at")


def test_future_limit_is_measured_against_now():
    """The same timestamp is fine later on: the check uses the clock, not a fixed date."""
    raw = json.dumps(wire(occurred_at=_at(timedelta(hours=30)))).encode()
    with pytest.raises(InvalidEvent):
        parse_event(raw, now_us=NOW_US)
    assert parse_event(raw, now_us=NOW_US + 7 * 3600 * 1_000_000).occurred_us == NOW_US + 30 * 3600 * 1_000_000


def test_default_clock_is_the_real_one():
    soon = datetime.now(UTC) + timedelta(hours=23)
    later = datetime.now(UTC) + timedelta(hours=25)
    assert parse_event(json.dumps(wire(occurred_at=soon.isoformat())).encode())
    with pytest.raises(InvalidEvent, match="occurred_at"):
        parse_event(json.dumps(wire(occurred_at=later.isoformat())).encode())


# -- length limits ------------------------------------------------------------------------------


def _with_id_field(field: str, value) -> dict:
    return wire("run.started", **{field: value})


@pytest.mark.parametrize("field", ID_FIELDS)
def test_ids_of_1_and_128_chars_are_accepted(field):
    assert getattr(parse(_with_id_field(field, "x")), field) == "x"
    assert getattr(parse(_with_id_field(field, "x" * 128)), field) == "x" * 128


@pytest.mark.parametrize("field", ID_FIELDS)
def test_limit_counts_characters_not_bytes(field):
    value = "é" * 100 + "😀" * 28  # 128 characters, 312 bytes of UTF-8
    assert getattr(parse(_with_id_field(field, value)), field) == value


@pytest.mark.parametrize("field", ID_FIELDS)
def test_ids_of_0_or_129_chars_are_rejected(field):
    reject(_with_id_field(field, ""), field)
    reject(_with_id_field(field, "x" * 129), field)


@pytest.mark.parametrize("field", ID_FIELDS)
def test_ids_must_be_strings(field):
    reject(_with_id_field(field, 42), field)


def _event_of_size(size: int) -> bytes:
    event = wire(attributes={"pad": ""})
    overhead = len(json.dumps(event).encode())
    event["attributes"]["pad"] = "x" * (size - overhead)
    raw = json.dumps(event).encode()
    assert len(raw) == size
    return raw


def test_event_of_exactly_32_kib_is_accepted():
    assert MAX_EVENT_BYTES == 32 * 1024
    assert parse(_event_of_size(32 * 1024)).id == "e1"


def test_event_over_32_kib_is_rejected():
    reason = reject(_event_of_size(32 * 1024 + 1), "bytes")
    assert "32768" in reason


# -- attributes --------------------------------------------------------------------------------


def test_attribute_values_may_be_string_number_or_bool():
    attrs = {"model": "claude", "repo": "acme/api", "agent": "coder", "n": 3, "ratio": 0.5, "retry": False}
    event = parse(wire(attributes=attrs))
    assert (event.model, event.repo) == ("claude", "acme/api")
    assert json.loads(event.attributes) == attrs


def test_no_attributes_and_empty_attributes():
    assert parse(wire()).attributes is None
    empty = parse(wire(attributes={}))
    assert (empty.model, empty.repo) == (None, None)


@pytest.mark.parametrize("value", [None, [1, 2], {"nested": "x"}, []])
def test_attribute_values_of_other_types_are_rejected(value):
    reject(wire(attributes={"model": "m", "bad": value}), "attributes")


@pytest.mark.parametrize("value", ["model=x", ["model"], 5])
def test_attributes_must_be_an_object(value):
    reject(wire(attributes=value), "attributes")


# -- batches -------------------------------------------------------------------------------------


def _batch(n: int) -> bytes:
    return json.dumps({"events": [wire(id=f"e{i}") for i in range(n)]}).encode()


def test_decode_batch_keeps_each_event_raw_for_per_event_validation():
    body = json.dumps({"events": [wire(), {"id": 5}, "x"]}).encode()
    raws = decode_batch(body)
    assert len(raws) == 3
    assert parse(bytes(raws[0])).id == "e1"
    reject(bytes(raws[1]))
    reject(bytes(raws[2]))


def test_batch_of_1_to_1000_events_is_accepted_and_more_is_not():
    assert MAX_BATCH_EVENTS == 1000
    assert len(decode_batch(_batch(1))) == 1
    assert len(decode_batch(_batch(1000))) == 1000
    with pytest.raises(InvalidEvent, match="1001"):
        decode_batch(_batch(1001))
    with pytest.raises(InvalidEvent, match="at least 1"):
        decode_batch(_batch(0))


@pytest.mark.parametrize("body", [b"", b"nope", b"{", b'{"events": 5}', b"{}", b"[]", b'{"events": {}}'])
def test_decode_batch_rejects_bodies_of_the_wrong_kind(body):
    with pytest.raises(InvalidEvent):
        decode_batch(body)


# -- dedupe key --------------------------------------------------------------------------------


def test_dedupe_key_is_a_pinned_signed_64_bit_value():
    """The key is stored in the log and rebuilt at start-up: changing the hash would let old ids in again."""
    key = dedupe_key("o1", "e1")
    assert key == dedupe_key("o1", "e1")
    assert -(2**63) <= key < 2**63
    assert key == -3904890156459200820  # blake2b-64 of "o1\\x00e1", little-endian, signed


def test_dedupe_key_depends_on_org_and_id():
    keys = {dedupe_key(org, event_id) for org in ("o1", "o2", "o10") for event_id in ("e1", "e2", "1e")}
    assert len(keys) == 9
    assert dedupe_key("o1", "e1") != dedupe_key("e1", "o1")
    assert dedupe_key("ab", "c") != dedupe_key("a", "bc")


def test_dedupe_key_is_stable_across_processes():
    code = "from agentdash.events import dedupe_key; print(dedupe_key('o1', 'e1'), dedupe_key('org-ü', 'id-😀'))"
    outputs = set()
    for seed in ("0", "1", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )  # fmt: skip
        outputs.add(out.stdout.strip())
    assert outputs == {f"{dedupe_key('o1', 'e1')} {dedupe_key('org-ü', 'id-😀')}"}


def test_parsed_event_round_trips_through_msgspec():
    """Events are frozen, array-like structs: what the log writer is given is what was validated."""
    event = parse(wire("run.finished", status="failed", failure_category="tool_error", team_id="t1",
                       input_tokens=5, attributes={"model": "m"}))  # fmt: skip
    again = msgspec.json.decode(msgspec.json.encode(event), type=Event)
    assert again == event
    with pytest.raises(AttributeError):
        event.id = "other"  # type: ignore[misc]


# -- NUL characters ----------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["id", "user_id", "session_id", "team_id"])
def test_a_nul_character_in_a_text_field_is_rejected_and_named(field):
    reject(wire(**{field: "a\u0000b"}), field, "NUL")


def test_a_nul_character_in_an_attribute_is_rejected_and_named():
    reject(wire(attributes={"model": "opus\u0000"}), "attributes.model", "NUL")
    reject(wire(attributes={"mo\u0000del": "opus"}), "attributes.mo?del", "NUL")


def test_an_escaped_backslash_before_u0000_is_plain_text_not_nul():
    assert parse(wire(user_id="C:\\u0000")).user_id == "C:\\u0000"


# -- pull requests (pr.opened, pr.merged, pr.closed; .ai/PR_OUTCOMES.md) ----------------------------


def pr(type_: str = "pr.opened", **fields) -> dict:
    """A valid PR event; `field=...` removes a field."""
    event = {"id": "g1", "type": type_, "org_id": "o1", "occurred_at": AT, "repo": "Acme/Web", "pr_number": 42,
             "head_branch": "claude/fix-login"}  # fmt: skip
    for name, value in fields.items():
        if value is ...:
            event.pop(name, None)
        else:
            event[name] = value
    return event


@pytest.mark.parametrize("type_", PR_TYPES)
def test_a_minimal_pr_event_needs_no_user_and_no_session(type_):
    event = parse(pr(type_))
    assert (event.type, event.repo, event.pr_number, event.branch) == (type_, "Acme/Web", 42, "claude/fix-login")
    assert (event.user_id, event.session_id, event.run_id, event.team_id, event.author) == (None,) * 5
    assert (event.input_tokens, event.cost_usd, event.status) == (0, 0.0, None)


def test_a_pr_event_keeps_its_author_user_team_and_agent_mark():
    event = parse(pr(author="copilot-swe-agent[bot]", user_id="ana", team_id="web",
                     attributes={"agent_mark": "copilot", "title": "Fix login", "url": "https://x/1"}))  # fmt: skip
    assert (event.author, event.user_id, event.team_id, event.agent_mark) == ("copilot-swe-agent[bot]", "ana", "web",
                                                                             "copilot")  # fmt: skip
    assert json.loads(event.attributes)["title"] == "Fix login"


@pytest.mark.parametrize("field", ["repo", "pr_number", "head_branch"])
@pytest.mark.parametrize("type_", PR_TYPES)
def test_a_pr_event_without_a_required_field_names_it(type_, field):
    assert reject(pr(type_, **{field: ...}), field) == f"{field} is required on {type_} events"


@pytest.mark.parametrize("field,value", [
    ("session_id", "s1"), ("run_id", "r1"), ("status", "succeeded"), ("failure_category", "timeout"),
    ("input_tokens", 1), ("cache_read_tokens", 1), ("cost_usd", 0.5),
])  # fmt: skip
def test_a_pr_event_refuses_session_run_and_run_outcome_fields(field, value):
    reject(pr("pr.merged", **{field: value}), field, "absent", "pr.merged")


@pytest.mark.parametrize("field,value", [
    ("repo", ""), ("repo", "r" * 201), ("pr_number", 0), ("pr_number", -3), ("pr_number", "7"), ("pr_number", 1.5),
    ("head_branch", ""), ("head_branch", "b" * 256), ("author", ""), ("author", 7), ("user_id", ""),
])  # fmt: skip
def test_a_pr_event_field_out_of_range_is_named(field, value):
    reject(pr(**{field: value}), field)


def test_pr_fields_at_their_limits_are_accepted():
    event = parse(pr(repo="r" * 200, head_branch="b" * 255, pr_number=2**63 - 1))
    assert (len(event.repo), len(event.branch), event.pr_number) == (200, 255, 2**63 - 1)


@pytest.mark.parametrize("field,value", [("repo", "a/b"), ("pr_number", 1), ("head_branch", "main"), ("author", "x")])
@pytest.mark.parametrize("type_", ["session.started", "run.finished", "usage"])
def test_pr_fields_are_refused_on_other_events(type_, field, value):
    reason = reject(wire(type_, **{field: value}), field)
    assert "only allowed on pr.opened, pr.merged and pr.closed" in reason


@pytest.mark.parametrize("field", ["user_id", "session_id"])
def test_other_events_still_require_user_and_session_with_msgspec_s_words(field):
    assert reject(wire("usage", **{field: ...}), field) == f"missing required field `{field}`"


def test_a_run_carries_its_branch_from_attributes_however_its_event_was_built():
    parsed_ = parse(wire("run.started", attributes={"repo": "acme/web", "branch": "feat/x"}))
    assert parsed_.branch == "feat/x"
    built = Event(
        "e2",
        "run.started",
        "o1",
        "u1",
        "s1",
        "r1",
        None,
        AT_US,
        None,
        None,
        0,
        0,
        0,
        0,
        0.0,
        None,
        "acme/web",
        '{"repo":"acme/web","branch":"feat/x"}',
    )  # fmt: skip  (as the OTLP mapping builds it)
    assert built.branch == "feat/x"
    assert parse(wire("run.started", attributes={"repo": "acme/web"})).branch is None


# -- code.changed (SPEC §7: lines_added, lines_removed, commits) ----------------------------------

CODE_FIELDS = ("lines_added", "lines_removed", "commits")


def test_a_code_change_keeps_its_counts_run_and_attributes():
    event = parse(wire("code.changed", lines_added=120, lines_removed=7, commits=2, run_id="r1",
                       attributes={"model": "m1", "repo": "acme/web", "branch": "feat/x"}))  # fmt: skip
    assert (event.lines_added, event.lines_removed, event.commits, event.series) == (120, 7, 2, None)
    assert (event.run_id, event.model, event.repo, event.branch) == ("r1", "m1", "acme/web", "feat/x")
    assert (event.input_tokens, event.cost_usd, event.status) == (0, 0.0, None)


@pytest.mark.parametrize("field", CODE_FIELDS)
def test_one_count_is_enough_and_the_others_are_0(field):
    event = parse(wire("code.changed", **{"lines_added": ..., field: 0}))
    assert [getattr(event, name) for name in CODE_FIELDS] == [0, 0, 0]


def test_a_code_change_without_any_count_is_rejected():
    reject(wire("code.changed", lines_added=...), "at least one of lines_added, lines_removed, commits")


def test_a_code_change_may_name_its_series_of_running_totals():
    assert parse(wire("code.changed", series="proc-1/lines")).series == "proc-1/lines"
    reject(wire("code.changed", series=""), "series")
    reject(wire("code.changed", series="x" * 129), "series")


@pytest.mark.parametrize("field", CODE_FIELDS)
@pytest.mark.parametrize("value", [-1, 1.5, "10", True, 2**63])
def test_code_counts_must_be_non_negative_integers(field, value):
    reject(wire("code.changed", **{field: value}), field)


@pytest.mark.parametrize("field,value", [*((name, 1) for name in CODE_FIELDS), ("series", "s")])
@pytest.mark.parametrize("type_", [t for t in EVENT_TYPES if t != "code.changed"])
def test_code_fields_only_on_code_changed(type_, field, value):
    assert reject(wire(type_, **{field: value}), field) == f"{field} is only allowed on code.changed events"


@pytest.mark.parametrize("field,value", [*((name, 1) for name in CODE_FIELDS), ("series", "s")])
def test_a_pr_event_refuses_code_fields(field, value):
    reject(wire("pr.opened", session_id=..., repo="a/b", pr_number=1, head_branch="main", **{field: value}), field)


@pytest.mark.parametrize(("field", "value"), [("status", "succeeded"), ("input_tokens", 1), ("cost_usd", 0.5)])
def test_a_code_change_has_no_outcome_or_amounts(field, value):
    reject(wire("code.changed", **{field: value}), field)


def test_a_code_change_needs_a_user_and_a_session():
    reject(wire("code.changed", user_id=...), "user_id")
    reject(wire("code.changed", session_id=...), "session_id")
