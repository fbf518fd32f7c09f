"""Ingest keys `adk_<id>_<secret>`: making them, reading them back, and checking a secret against its hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from agentdash.storage import IngestKey, IngestKeyStore

PREFIX = "adk"
ID_BYTES = 6  # 12 hex characters: public, shown by `ingest-key list`, only names the key
SECRET_BYTES = 32
MAX_ORG_LENGTH = 128  # SPEC §1: org_id is 1-128 characters


class MalformedKey(ValueError):
    """The text is not shaped like an ingest key at all."""


@dataclass(frozen=True)
class IssuedKey:
    key: str  # the whole key: shown once, never stored
    record: IngestKey


def issue_key(store: IngestKeyStore, orgs: Iterable[str], name: str = "") -> IssuedKey:
    """Make a key for `orgs`, store its hash, and return the key itself (the only time anyone sees it)."""
    scope = valid_orgs(orgs)
    key_id, secret = secrets.token_hex(ID_BYTES), secrets.token_urlsafe(SECRET_BYTES)
    record = store.add(key_id, name, scope, secret_digest(secret))
    return IssuedKey(f"{PREFIX}_{key_id}_{secret}", record)


def valid_orgs(orgs: Iterable[str]) -> tuple[str, ...]:
    """The orgs in the order given, each once; a key without orgs, or with a wildcard, is refused."""
    scope = tuple(dict.fromkeys(orgs))
    if not scope:
        raise ValueError("an ingest key needs at least one --org")
    for org in scope:
        if not 1 <= len(org) <= MAX_ORG_LENGTH:
            raise ValueError(f"org id {org!r} must be 1-{MAX_ORG_LENGTH} characters")
        if org == "*":
            raise ValueError("'*' is not an org: a key names every org it may write (repeat --org)")
    return scope


def parse_key(text: str) -> tuple[str, str]:
    """(id, secret) of a key; raises MalformedKey, whose message never repeats the text."""
    prefix, key_id, secret = (text.split("_", 2) + ["", ""])[:3]
    if prefix != PREFIX or len(key_id) != 2 * ID_BYTES or not secret:
        raise MalformedKey(
            f"malformed ingest key: expected {PREFIX}_<id>_<secret> as printed by `agentdash ingest-key create`"
        )
    return key_id, secret


def secret_digest(secret: str) -> bytes:
    # A plain SHA-256 is enough here: the secret is 256 random bits, so there is no dictionary to try and
    # nothing to brute-force. bcrypt/argon2 exist to slow guesses at low-entropy passwords; on this hot
    # path they would cost ~100 ms per request and buy nothing.
    return hashlib.sha256(secret.encode()).digest()


def secret_matches(secret: str, digest: bytes) -> bool:
    return hmac.compare_digest(secret_digest(secret), digest)  # constant time: no timing hints about the hash


def key_table(keys: list[IngestKey]) -> str:
    """`ingest-key list` output: one aligned row per key, never a secret."""
    header = ("ID", "NAME", "ORGS", "CREATED (UTC)", "STATUS")
    rows = [header] + [
        (k.id, k.name or "-", ",".join(k.orgs), f"{k.created_at:%Y-%m-%d %H:%M:%S}",
         "active" if k.active else f"revoked {k.revoked_at:%Y-%m-%d %H:%M:%S}")
        for k in keys
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)
