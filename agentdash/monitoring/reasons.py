"""Rejection reasons as a few fixed labels: the messages name fields and values, which would make a label per
distinct message and an unbounded number of series."""

from __future__ import annotations

import re

# First match wins; the order puts the specific patterns before the general ones.
_LABELS = (
    ("org_not_allowed", re.compile(r"outside the scope of ingest key|outside the ingest key|^no org", re.I)),
    ("too_long", re.compile(r"longer than")),
    ("nul_character", re.compile(r"NUL")),
    ("bad_timestamp", re.compile(r"occurred_at|timestamp|future", re.I)),
    ("missing_field", re.compile(r"missing required|is required|need at least|no user|no session", re.I)),
    ("field_not_allowed", re.compile(r"only allowed|must be absent", re.I)),
    ("not_json", re.compile(r"not valid JSON|not JSON", re.I)),
    ("unknown_field", re.compile(r"unknown field", re.I)),
    ("bad_value", re.compile(r"Invalid enum value|must be a number|Expected `\w+` [<>]=")),
    ("wrong_type", re.compile(r"Expected `|must be a|must be an", re.I)),
)


def reason_label(message: str) -> str:
    """The fixed label of a rejection message; "invalid" when no pattern fits."""
    for label, pattern in _LABELS:
        if pattern.search(message):
            return label
    return "invalid"
