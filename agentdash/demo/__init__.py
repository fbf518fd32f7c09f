"""Synthetic history: the generator of realistic events and the sender that posts them to the ingest API.

`agentdash.demo.command` is the `agentdash demo` command itself; it starts a whole server, so it is not imported here.
"""

from __future__ import annotations

from agentdash.demo.generator import GeneratorConfig, generate, generate_days
from agentdash.demo.sender import SendError, SendStats, send

__all__ = ["GeneratorConfig", "SendError", "SendStats", "generate", "generate_days", "send"]
