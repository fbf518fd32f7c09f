"""Rejection messages become one of a few fixed labels (monitoring/reasons.py): the series stay bounded."""

from __future__ import annotations

import msgspec
import pytest

from agentdash.events import InvalidEvent, parse_event
from agentdash.monitoring import reason_label

BASE = {"id": "a", "type": "message.sent", "org_id": "o", "user_id": "u", "session_id": "s",
        "occurred_at": "2026-01-01T00:00:00Z"}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "label"),
    [
        ({"type": None}, "missing_field"),
        ({"type": "nope"}, "bad_value"),
        ({"id": 1}, "wrong_type"),
        ({"occurred_at": "yesterday"}, "bad_timestamp"),
        ({"type": "run.finished", "run_id": "r"}, "missing_field"),
        ({"cost_usd": -1}, "bad_value"),
        ({"bogus": 1}, "unknown_field"),
        ({"user_id": "a\u0000b"}, "nul_character"),
        ({"pr_number": 3}, "field_not_allowed"),
    ],
)
def test_each_validation_message_has_its_label(change, label):
    event = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    with pytest.raises(InvalidEvent) as raised:
        parse_event(msgspec.json.encode(event))
    assert reason_label(str(raised.value)) == label, str(raised.value)


@pytest.mark.parametrize(
    ("message", "label"),
    [
        ("org_id 'x' is outside the scope of ingest key k1 (it may write: a)", "org_not_allowed"),
        ("agentdash.org_id 'x' is outside the ingest key's orgs (a, b)", "org_not_allowed"),
        ("no org: the ingest key writes several orgs, so set agentdash.org_id", "org_not_allowed"),
        ("no user: set user.email", "missing_field"),
        ("prompt.id is longer than 256 characters or holds a NUL", "too_long"),
        ("something new and unforeseen", "invalid"),
    ],
)
def test_otlp_and_scope_messages_have_their_labels(message, label):
    assert reason_label(message) == label
