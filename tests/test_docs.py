"""The README documents every setting and command (a setting nobody can find does not exist)."""

from pathlib import Path

import pytest

from agentdash.cli import main
from agentdash.config import ENV_PREFIX, setting_names

README = (Path(__file__).parent.parent / "README.md").read_text()


@pytest.mark.parametrize("name", setting_names())
def test_every_setting_is_documented(name):
    assert f"`--{name.replace('_', '-')}`" in README
    assert f"`{ENV_PREFIX}{name.upper()}`" in README


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_is_documented(command):
    assert f"`agentdash {command}" in README
