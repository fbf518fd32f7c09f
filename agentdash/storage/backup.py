"""What a backup is (its manifest, its errors) and, for PostgreSQL, the pg_dump commands that make one."""

from __future__ import annotations

import msgspec

from agentdash.storage.base import StorageError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1

# Every table agentdash creates in a shared database (storage/sql/postgres*.sql), dumped and restored together.
POSTGRES_TABLES = ("events", "event_ids", "checkpoint", "read_model_version", "runs", "sessions", "activity", "queued", "usage",
                   "code_changes", "prs", "pr_texts", "ingest_keys", "source_records", "source_reasons",
                   "source_people", "github_links", "agent_rules", "alert_rules", "alert_state", "alert_history",
                   "alert_checkpoint", "dead_letters")  # fmt: skip


class BackupError(StorageError):
    """A backup cannot be taken or restored: incomplete, tampered with, or the target is not free."""


class BackupFile(msgspec.Struct, frozen=True):
    """One file of a backup: its path inside it, size, SHA-256 and, for a SQLite file, rows per table."""

    name: str
    bytes: int
    sha256: str
    rows: dict[str, int] = {}


class Manifest(msgspec.Struct, frozen=True):
    """`manifest.json`, written last: a backup without it is incomplete."""

    version: int
    agentdash_version: str
    created_at: str  # UTC, RFC 3339
    last_seq: int  # the log position the backup holds: every entry up to it, none after
    events: int
    read_models: str  # how they come back: "rebuilt from the log on restore"
    files: list[BackupFile]


def postgres_guidance(database_url: str) -> str:
    """The pg_dump / pg_restore commands for agentdash's tables; PostgreSQL's own tools do this better than we could."""
    # A quoted pattern: it also takes the log's partitions (events_*), which a bare -t events would leave out.
    tables = " ".join(f"-t '{name}*'" if name == "events" else f"-t {name}" for name in POSTGRES_TABLES)
    return (
        "agentdash does not copy a PostgreSQL database itself: pg_dump takes a consistent snapshot (one\n"
        "transaction) while workers keep ingesting. With the URL in $AGENTDASH_DATABASE_URL:\n\n"
        f'  pg_dump -Fc --no-owner {tables} -f agentdash.dump "$AGENTDASH_DATABASE_URL"\n\n'
        "Restore into an empty database, with every worker stopped, then start them (they fold nothing again:\n"
        "the read models and their checkpoint are in the dump):\n\n"
        '  pg_restore --no-owner --single-transaction -d "$AGENTDASH_DATABASE_URL" agentdash.dump\n\n'
        f"(database: {_without_password(database_url)})"
    )


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"
