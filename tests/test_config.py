from pathlib import Path

import pytest

from agentdash.config import Settings, load_settings


def test_flags_win_over_environment_over_defaults(monkeypatch):
    monkeypatch.setenv("AGENTDASH_PORT", "4000")
    monkeypatch.setenv("AGENTDASH_DATA_DIR", "/tmp/from-env")
    settings = load_settings(port=5000, data_dir=None)
    assert settings.port == 5000
    assert settings.data_dir == Path("/tmp/from-env")
    assert settings.ingest_port == Settings().ingest_port == 3001


def test_a_bad_value_names_the_setting(monkeypatch):
    monkeypatch.setenv("AGENTDASH_PROJECTOR_INTERVAL", "soon")
    with pytest.raises(ValueError, match="projector_interval.*AGENTDASH_PROJECTOR_INTERVAL"):
        load_settings()
