"""Storage backends behind one interface; `open_storage`, `open_ingest_keys`, `open_source_store` and
`open_github_links` and `open_agent_rules` pick one from the settings."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from agentdash.config import Settings
from agentdash.storage.agent_rules import RULE_KINDS, AgentRule, AgentRuleError, AgentRuleStore, RuleKind
from agentdash.storage.alerts import (
    ALERT_KINDS,
    AlertEvent,
    AlertKind,
    AlertPeriod,
    AlertRule,
    AlertRuleError,
    AlertStore,
    Observation,
)
from agentdash.storage.archive import cutoff_us as archive_cutoff
from agentdash.storage.backup import BackupError, BackupFile, Manifest
from agentdash.storage.base import (
    ArchivedPart,
    ArchiveError,
    ArchiveReport,
    FoldState,
    LogChunk,
    LogFootprint,
    LoggedEvent,
    LogPosition,
    Overloaded,
    Poisoned,
    RestoreReport,
    Storage,
    StorageError,
    StorageInUse,
    Unavailable,
    WriteRejected,
)
from agentdash.storage.dead_letters import Burial, DeadLetter, DeadLetterError, DeadLetterStore, LetterState
from agentdash.storage.github_links import GithubLink, GithubLinkError, GithubLinkStore, LinkSecret
from agentdash.storage.key_store import ActiveKey, IngestKey, IngestKeyError, IngestKeyStore
from agentdash.storage.source_store import (
    AgentSummary,
    PersonSeen,
    RecordSummary,
    SourceCount,
    SourcesReport,
    SourceStore,
)

__all__ = ["ALERT_KINDS", "AlertEvent", "Observation", "AlertKind", "AlertPeriod", "AlertRule", "AlertRuleError", "AlertStore", "open_alerts",
           "RULE_KINDS", "ActiveKey", "AgentRule", "AgentRuleError", "AgentRuleStore", "AgentSummary", "FoldState", "GithubLink", "GithubLinkError", "GithubLinkStore", "IngestKey",
           "IngestKeyError", "IngestKeyStore", "LinkSecret", "LogChunk", "LogFootprint", "LogPosition", "LoggedEvent", "Overloaded",
           "PersonSeen", "RecordSummary", "SourceCount", "SourceStore", "SourcesReport", "Storage", "StorageError",
           "StorageInUse", "Unavailable", "RuleKind", "WriteRejected", "open_agent_rules", "open_github_links", "open_ingest_keys", "open_source_store",
           "open_storage", "Burial", "DeadLetter", "DeadLetterError", "DeadLetterStore", "LetterState", "Poisoned",
           "open_dead_letters", "BackupError", "BackupFile", "Manifest", "postgres_backup_guidance", "take_backup",
           "restore_backup", "ArchivedPart", "ArchiveError", "ArchiveReport", "RestoreReport", "archive_cutoff",
           "archive_expired", "restore_for_refold"]  # fmt: skip

log = logging.getLogger(__name__)

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_storage(settings: Settings) -> Storage:
    """The storage of the settings' backend, with archived months put back first when its read models are about to
    be folded from nothing (see restore_for_refold)."""
    storage = _open_backend(settings)
    try:
        restore_for_refold(storage, settings.archive_path)
    except BaseException:
        storage.close()
        raise
    return storage


def _open_backend(settings: Settings) -> Storage:
    """The one place that chooses a backend: PostgreSQL when a database URL is set, else the embedded files."""
    # Imported here: psycopg is an optional driver, and each backend's drivers load only when it is chosen.
    if _uses_postgres(settings):
        from agentdash.storage.postgres.storage import PostgresStorage

        return PostgresStorage(settings.database_url, queue_limit=settings.ingest_queue_limit)
    from agentdash.storage.embedded.storage import EmbeddedStorage

    return EmbeddedStorage(settings)


def restore_for_refold(storage: Storage, archive_dir: Path) -> RestoreReport | None:
    """Empty read models (a new read-model VERSION, a rebuild) folded from the live log alone would lose the archived
    months' facts: put those entries back into the live log first; the retention job archives them again once folded.
    ArchiveError, naming the directory, when they cannot be restored: better no start than months silently gone."""
    if storage.fold_state().seq or not (archived := storage.archived_entries()):
        return None
    log.warning("the read models are folded afresh and %d log entries are archived: restoring them from %s first",
                archived, archive_dir)  # fmt: skip
    report = storage.restore_archive(archive_dir)
    log.warning("restored %d archived entries from %s for the fold", report.restored, archive_dir)
    return report


def open_ingest_keys(settings: Settings) -> IngestKeyStore:
    """The ingest key store of the backend; it takes no lock, so it opens while a server runs."""
    if _uses_postgres(settings):  # imported here, as in open_storage
        from agentdash.storage.postgres.key_store import PostgresIngestKeyStore

        return PostgresIngestKeyStore(settings.database_url)
    from agentdash.storage.embedded.key_store import SqliteIngestKeyStore

    return SqliteIngestKeyStore(settings.ingest_keys_path)


def open_source_store(settings: Settings) -> SourceStore:
    """The source-count store of the backend: `<data-dir>/sources.sqlite`, or the database's tables."""
    if _uses_postgres(settings):  # imported here, as in open_storage
        from agentdash.storage.postgres.source_store import PostgresSourceStore

        return PostgresSourceStore(settings.database_url)
    from agentdash.storage.embedded.source_store import SqliteSourceStore

    return SqliteSourceStore(settings.data_dir / "sources.sqlite")


def open_github_links(settings: Settings) -> GithubLinkStore:
    """The GitHub link store of the backend: `<data-dir>/github-links.sqlite`, or the database's table; it takes no
    lock, so it opens while a server runs."""
    if _uses_postgres(settings):  # imported here, as in open_storage
        from agentdash.storage.postgres.github_links import PostgresGithubLinkStore

        return PostgresGithubLinkStore(settings.database_url)
    from agentdash.storage.embedded.github_links import SqliteGithubLinkStore

    return SqliteGithubLinkStore(settings.data_dir / "github-links.sqlite")


def open_agent_rules(settings: Settings) -> AgentRuleStore:
    """The agent-rule store of the backend: `<data-dir>/agent-rules.sqlite`, or the database's table; it takes no
    lock, so it opens while a server runs."""
    if _uses_postgres(settings):  # imported here, as in open_storage
        from agentdash.storage.postgres.agent_rules import PostgresAgentRuleStore

        return PostgresAgentRuleStore(settings.database_url)
    from agentdash.storage.embedded.agent_rules import SqliteAgentRuleStore

    return SqliteAgentRuleStore(settings.data_dir / "agent-rules.sqlite")


def open_alerts(settings: Settings) -> AlertStore:
    """The alert store of the backend: `<data-dir>/alerts.sqlite`, or the database's tables; it takes no lock, so it
    opens while a server runs."""
    if _uses_postgres(settings):  # imported here, as in open_storage
        from agentdash.storage.postgres.alerts import PostgresAlertStore

        return PostgresAlertStore(settings.database_url)
    from agentdash.storage.embedded.alerts import SqliteAlertStore

    return SqliteAlertStore(settings.data_dir / "alerts.sqlite")


def open_dead_letters(settings: Settings) -> DeadLetterStore:
    """The dead-letter store of the backend: `<data-dir>/dead-letters.sqlite`, or the database's table; it takes no
    lock, so `agentdash dlq` opens it while a server runs."""
    if _uses_postgres(settings):  # imported here, as in open_storage
        from agentdash.storage.postgres.dead_letters import PostgresDeadLetterStore

        return PostgresDeadLetterStore(settings.database_url)
    from agentdash.storage.embedded.dead_letters import FILE_NAME, SqliteDeadLetterStore

    return SqliteDeadLetterStore(settings.data_dir / FILE_NAME)


def postgres_backup_guidance(settings: Settings) -> str | None:
    """The pg_dump/pg_restore commands when the data is in PostgreSQL; None for the embedded files."""
    if not _uses_postgres(settings):
        return None
    from agentdash.storage.backup import postgres_guidance

    return postgres_guidance(settings.database_url)


def take_backup(settings: Settings, dest: Path) -> Manifest:
    """A consistent online snapshot of the embedded data dir into `dest` (see embedded/backup.py)."""
    from agentdash.storage.embedded.backup import take_backup as take  # imports the drivers

    return take(settings.data_dir, dest)


def restore_backup(src: Path, settings: Settings, force: bool = False) -> Manifest:
    """Verify the backup in `src` and put it into the (empty, or with `force` replaced) data dir."""
    from agentdash.storage.embedded.backup import restore_backup as restore

    return restore(src, settings.data_dir, force)


def archive_expired(storage: Storage, settings: Settings, stop: threading.Event | None = None) -> ArchiveReport | None:
    """The server's archive job (at start-up and daily): what is past --retention-days; None when it is 0."""
    if settings.retention_days <= 0:
        return None
    return storage.archive(archive_cutoff(settings.retention_days), settings.archive_path, stop)


def _uses_postgres(settings: Settings) -> bool:
    url = settings.database_url
    if not url:
        return False
    if not url.startswith(POSTGRES_SCHEMES):
        raise ValueError(f"database_url must start with postgresql:// (or be empty for embedded storage), "
                         f"got one starting with {url.split(':', 1)[0]!r}")  # fmt: skip
    return True
