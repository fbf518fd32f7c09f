"""The settings that point each agent's OpenTelemetry export at agentdash, printed by `ingest-key create --for`.

Each is what that agent reads (checked against the real CLIs in tests/test_agent_clis_live.py): environment
variables for Claude Code and Gemini CLI, `config.toml` for Codex, which takes exporters from nowhere else.
"""

from __future__ import annotations

AGENT_CHOICES = ("claude-code", "gemini-cli", "codex")

_WHO = """\
# Who: agentdash needs a user on every record. Claude Code sends user.email when signed in to a Claude account
# (else user.account_uuid / user.id); Gemini CLI and Codex with an API key send none, so set user.email here.
# team.id puts the person's work under their team (the dashboard's team filter and the managers' scope)."""


def settings_for(agent: str, endpoint: str, key: str) -> str:
    """The settings block for `agent` (one of AGENT_CHOICES), with the ingest key in it."""
    endpoint = endpoint.rstrip("/")
    if agent == "claude-code":
        return _claude_code(endpoint, key)
    if agent == "gemini-cli":
        return _gemini_cli(endpoint, key)
    if agent == "codex":
        return _codex(endpoint, key)
    raise ValueError(f"unknown agent {agent!r}; one of: {', '.join(AGENT_CHOICES)}")


def _claude_code(endpoint: str, key: str) -> str:
    return f"""\
# Claude Code: put these in the environment (or the "env" object of ~/.claude/settings.json, or the
# managed-settings.json your MDM deploys, to cover every developer at once).
export CLAUDE_CODE_ENABLE_TELEMETRY=1
export OTEL_LOGS_EXPORTER=otlp
export OTEL_METRICS_EXPORTER=otlp
export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
export OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}
export OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer {key}"
{_WHO}
export OTEL_RESOURCE_ATTRIBUTES="team.id=YOUR_TEAM,user.email=$(git config user.email)"
# Optional, exact run start and end from the interaction spans (a beta of Claude Code):
# export CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1 OTEL_TRACES_EXPORTER=otlp
"""


def _gemini_cli(endpoint: str, key: str) -> str:
    return f"""\
# Gemini CLI: put these in the environment (or "telemetry" in ~/.gemini/settings.json:
# {{"enabled": true, "target": "local", "otlpEndpoint": "{endpoint}", "otlpProtocol": "http"}}).
# Gemini CLI sends OTLP/HTTP with JSON bodies ("http"); agentdash takes both JSON and protobuf.
export GEMINI_TELEMETRY_ENABLED=true
export GEMINI_TELEMETRY_TARGET=local
export GEMINI_TELEMETRY_OTLP_PROTOCOL=http
export GEMINI_TELEMETRY_OTLP_ENDPOINT={endpoint}
export OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer {key}"
{_WHO}
export OTEL_RESOURCE_ATTRIBUTES="team.id=YOUR_TEAM,user.email=$(git config user.email)"
"""


def _codex(endpoint: str, key: str) -> str:
    exporter = ('{{ otlp-http = {{ endpoint = "{endpoint}/v1/{signal}", protocol = "binary", '
                'headers = {{ "Authorization" = "Bearer {key}" }} }} }}')  # fmt: skip
    return f"""\
# Codex: add to ~/.codex/config.toml (or $CODEX_HOME/config.toml). Codex names the turn only in its spans,
# so keep trace_exporter on: without it agentdash sees Codex's messages and tokens but no runs.
[otel]
log_user_prompt = false
exporter = {exporter.format(endpoint=endpoint, signal="logs", key=key)}
metrics_exporter = {exporter.format(endpoint=endpoint, signal="metrics", key=key)}
trace_exporter = {exporter.format(endpoint=endpoint, signal="traces", key=key)}

# And in the environment Codex runs in (it reads its resource attributes from there; a comment here, so that
# this block can be appended to config.toml as it is):
{_WHO}
# export OTEL_RESOURCE_ATTRIBUTES="team.id=YOUR_TEAM,user.email=$(git config user.email)"
"""
