"""Storage backends behind one interface; `open_storage` picks one from the settings."""

from __future__ import annotations

from agentdash.config import Settings
from agentdash.storage.base import Overloaded, Storage, StorageInUse

__all__ = ["Overloaded", "Storage", "StorageInUse", "open_storage"]


def open_storage(settings: Settings) -> Storage:
    """The one place that chooses a backend (a Postgres backend joins here)."""
    from agentdash.storage.embedded import EmbeddedStorage

    return EmbeddedStorage(settings)
