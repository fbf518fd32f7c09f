"""All settings in one place: CLI flags over AGENTDASH_* environment variables over defaults."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "AGENTDASH_"


@dataclass(frozen=True)
class Settings:
    """How one agentdash process runs. Field docs double as CLI help (see cli.py)."""

    data_dir: Path = field(default=Path(".agentdash"), metadata={"help": "where the event log and read models live"})
    host: str = field(default="127.0.0.1", metadata={"help": "dashboard and read API bind address"})
    port: int = field(default=3000, metadata={"help": "dashboard and read API port"})
    ingest_host: str = field(default="127.0.0.1", metadata={"help": "ingest API bind address (internal)"})
    ingest_port: int = field(default=3001, metadata={"help": "ingest API port (internal)"})
    projector_interval: float = field(default=1.0, metadata={"help": "seconds between projector folds"})
    fold_chunk: int = field(default=250_000, metadata={"help": "most log entries folded in one transaction"})
    ingest_queue_limit: int = field(default=64, metadata={"help": "batches waiting for the log writer before ingest answers 503"})
    log_level: str = field(default="info", metadata={"help": "logging level"})

    @property
    def log_path(self) -> Path:
        return self.data_dir / "events.sqlite"

    @property
    def read_models_path(self) -> Path:
        return self.data_dir / "read_models.duckdb"

    @property
    def secret_path(self) -> Path:
        return self.data_dir / "dev-secret"


def setting_names() -> list[str]:
    return [f.name for f in dataclasses.fields(Settings)]


def load_settings(**flags: object) -> Settings:
    """Build Settings: explicit (non-None) flags win, then AGENTDASH_<NAME> variables, then defaults."""
    values: dict[str, object] = {}
    for f in dataclasses.fields(Settings):
        flag = flags.get(f.name)
        env = os.environ.get(ENV_PREFIX + f.name.upper())
        if flag is not None:
            values[f.name] = _coerce(f, flag)
        elif env is not None and env != "":
            values[f.name] = _coerce(f, env)
    return Settings(**values)


def _coerce(f: dataclasses.Field, value: object) -> object:
    kind = type(f.default)
    try:
        return kind(value)  # type: ignore[call-arg]
    except (TypeError, ValueError):
        raise ValueError(f"setting {f.name} (env {ENV_PREFIX}{f.name.upper()}) must be a {kind.__name__}, got {value!r}") from None
