"""Online backup of an embedded data dir and its restore: SQLite files through the backup API, the rest copied.

The DuckDB read models are left out and rebuilt from the log on restore: DuckDB lets one process open its file, so
while the server runs no other process can copy it consistently, and a rebuild gives the same numbers by design.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import msgspec

from agentdash import __version__
from agentdash.storage.backup import MANIFEST_NAME, MANIFEST_VERSION, BackupError, BackupFile, Manifest
from agentdash.storage.base import StorageInUse

LOG_NAME = "events.sqlite"
READ_MODELS = "read_models.duckdb"
# Never copied: SQLite's and DuckDB's side files belong to an open connection, the read models are rebuilt.
_SKIPPED_SUFFIXES = ("-wal", "-shm", "-journal", ".wal", ".duckdb", ".tmp", ".lock", "-dedupe.npz", ".partial")
_CHUNK = 1 << 20


def take_backup(data_dir: Path, dest: Path) -> Manifest:
    """Snapshot every file of `data_dir` into the new or empty `dest`; the manifest, written last, lists them."""
    if not (data_dir / LOG_NAME).exists():
        raise BackupError(f"{data_dir} has no event log ({LOG_NAME}): nothing to back up")
    if dest.resolve().is_relative_to(data_dir.resolve()):
        raise BackupError(f"{dest} is inside the data dir {data_dir}: back up somewhere else")
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty: back up into a new directory")
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    stores = sorted(p for p in data_dir.glob("*.sqlite") if p.name != LOG_NAME)
    others = sorted(p for p in data_dir.rglob("*") if p.is_file() and p.suffix != ".sqlite" and not _skipped(p))
    files = []
    # The log last: what the other stores name (dead letters' and the alerts' seqs) is then always in the copied log.
    for path in [*stores, data_dir / LOG_NAME]:
        _sqlite_copy(path, dest / path.name)
        files.append(_described(dest, dest / path.name, _row_counts(dest / path.name)))
    for path in others:  # the dev secret, archived months: written once, so a plain copy is consistent
        target = dest / path.relative_to(data_dir)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.copy2(path, target)
        files.append(_described(dest, target, {}))
    last_seq = _last_seq(dest / LOG_NAME)
    manifest = Manifest(MANIFEST_VERSION, __version__, datetime.now(UTC).isoformat(timespec="seconds"), last_seq,
                        files[len(stores)].rows.get("events", 0), "rebuilt from the log on restore", files)  # fmt: skip
    (dest / MANIFEST_NAME).write_bytes(msgspec.json.format(msgspec.json.encode(manifest)))
    return manifest


def read_manifest(src: Path) -> Manifest:
    """The backup's manifest; a missing or unreadable one means the backup never finished."""
    try:
        return msgspec.json.decode((src / MANIFEST_NAME).read_bytes(), type=Manifest)
    except FileNotFoundError:
        raise BackupError(f"{src} has no {MANIFEST_NAME}: not a backup, or one that did not finish") from None
    except msgspec.DecodeError as exc:
        raise BackupError(f"{src / MANIFEST_NAME} is unreadable ({exc}): the backup is incomplete") from None


def restore_backup(src: Path, data_dir: Path, force: bool = False) -> Manifest:
    """Put a verified backup into `data_dir` (empty, or replaced with `force`); nothing changes if a check fails."""
    manifest = read_manifest(src)
    if manifest.version != MANIFEST_VERSION:
        raise BackupError(f"{src} is a version {manifest.version} backup; this agentdash reads version "
                          f"{MANIFEST_VERSION}")  # fmt: skip
    _ensure_not_served(data_dir)
    existing = [p for p in data_dir.iterdir()] if data_dir.exists() else []
    if existing and not force:
        raise BackupError(f"{data_dir} is not empty: restore into a new data dir, or pass --force to replace it")
    if existing and not ((data_dir / LOG_NAME).exists() or (data_dir / READ_MODELS).exists()):
        raise BackupError(f"{data_dir} does not look like an agentdash data dir: --force replaces only those")
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    staged = data_dir / ".restoring"
    shutil.rmtree(staged, ignore_errors=True)
    try:
        for file in manifest.files:
            _verified_copy(src / file.name, staged / file.name, file)
        if _last_seq(staged / LOG_NAME) != manifest.last_seq:
            raise BackupError(f"{LOG_NAME} does not end at seq {manifest.last_seq} as the manifest says")
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    for path in existing:  # only now: a failed check above left the old data dir as it was
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    for path in staged.iterdir():
        path.rename(data_dir / path.name)
    staged.rmdir()
    return manifest


def _ensure_not_served(data_dir: Path) -> None:
    # The server holds the read models' DuckDB file lock for as long as it runs (as `rebuild` finds out).
    path = data_dir / READ_MODELS
    if not path.exists():
        return
    try:
        duckdb.connect(str(path)).close()
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        raise StorageInUse(f"{data_dir} is in use by a running agentdash server: stop it before restoring") from None


def _sqlite_copy(source: Path, target: Path) -> None:
    # One backup step over all pages holds one read transaction: a consistent snapshot, and in WAL mode the
    # server's writer goes on committing meanwhile.
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file, no -wal beside it
    finally:
        dst.close()
        src.close()
    target.chmod(0o600)


def _row_counts(path: Path) -> dict[str, int]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {name: db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}
    finally:
        db.close()


def _last_seq(log: Path) -> int:
    db = sqlite3.connect(f"file:{log}?mode=ro", uri=True)
    try:
        return db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
    finally:
        db.close()


def _described(root: Path, path: Path, rows: dict[str, int]) -> BackupFile:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return BackupFile(str(path.relative_to(root)), path.stat().st_size, digest.hexdigest(), rows)


def _verified_copy(source: Path, target: Path, expected: BackupFile) -> None:
    if not source.is_file():
        raise BackupError(f"the backup is incomplete: {expected.name} is missing")
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with source.open("rb") as f, target.open("wb") as out:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    target.chmod(0o600)
    if digest.hexdigest() != expected.sha256:
        raise BackupError(f"{expected.name} fails its checksum (SHA-256 {digest.hexdigest()[:12]}…, the manifest "
                          f"says {expected.sha256[:12]}…): the backup was changed or damaged")  # fmt: skip


def _skipped(path: Path) -> bool:
    return path.name.endswith(_SKIPPED_SUFFIXES) or ".restoring" in path.parts
