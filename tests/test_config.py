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


@pytest.mark.parametrize("name", ["header_timeout", "body_timeout", "keep_alive_timeout", "max_connections"])
def test_limits_must_be_above_zero(monkeypatch, name):
    monkeypatch.setenv(f"AGENTDASH_{name.upper()}", "0")
    with pytest.raises(ValueError, match=f"{name}.*must be above 0"):
        load_settings()


@pytest.mark.parametrize(
    ("text", "expected"), [("1", True), ("true", True), ("YES", True), ("0", False), ("off", False)]
)
def test_boolean_settings_read_words_from_the_environment(monkeypatch, text, expected):
    monkeypatch.setenv("AGENTDASH_INSECURE_INGEST", text)
    assert load_settings().insecure_ingest is expected


def test_a_boolean_setting_refuses_other_words(monkeypatch):
    monkeypatch.setenv("AGENTDASH_DEV", "maybe")
    with pytest.raises(ValueError, match="dev.*true or false"):
        load_settings()
