"""--durable: the embedded event log fsyncs every commit (synchronous=FULL); without it, NORMAL as before."""

from __future__ import annotations

import sqlite3

import pytest

from agentdash.config import load_settings
from agentdash.storage.embedded import EmbeddedStorage


@pytest.mark.parametrize(("flag", "expected"), [(True, "FULL"), (False, "NORMAL"), (None, "NORMAL")])
def test_durable_sets_the_event_logs_synchronous_level(tmp_path, flag, expected):
    storage = EmbeddedStorage(load_settings(data_dir=tmp_path / "data", durable=flag))
    try:
        assert storage.log_synchronous() == expected
    finally:
        storage.close()


def test_durable_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTDASH_DURABLE", "1")
    storage = EmbeddedStorage(load_settings(data_dir=tmp_path / "data"))
    try:
        assert storage.log_synchronous() == "FULL"
    finally:
        storage.close()


def test_the_other_sqlite_stores_already_default_to_full(tmp_path):
    # They set no synchronous level, so SQLite's default applies: FULL (2). Only the log trades it for speed.
    with sqlite3.connect(tmp_path / "probe.sqlite") as db:
        db.execute("PRAGMA journal_mode=WAL")
        assert db.execute("PRAGMA synchronous").fetchone() == (2,)
