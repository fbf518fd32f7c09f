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
    database_url: str = field(
        default="",
        repr=False,
        metadata={
            "help": "postgresql://... to keep the event log, read models and "
            "ingest keys in PostgreSQL (team deployments, several workers); "
            "empty: embedded files in the data dir"
        },
    )
    host: str = field(default="127.0.0.1", metadata={"help": "dashboard and read API bind address"})
    port: int = field(default=3000, metadata={"help": "dashboard and read API port"})
    ingest_host: str = field(default="127.0.0.1", metadata={"help": "ingest API bind address (internal)"})
    ingest_port: int = field(default=3001, metadata={"help": "ingest API port (internal)"})
    trusted_proxies: str = field(
        default="",
        metadata={
            "help": "comma-separated addresses of reverse proxies whose X-Forwarded-For and -Proto are believed "
            "(on both ports); empty: none, the connecting peer is the client"
        },
    )
    header_timeout: float = field(
        default=10.0,
        metadata={
            "help": "seconds a client may take to send a request's headers, from connecting or from a kept-alive "
            "request's first byte (both ports); later: 408 and the connection closes"
        },
    )
    body_timeout: float = field(
        default=60.0,
        metadata={"help": "seconds a client may take to send a request's body after its headers (both ports)"},
    )
    keep_alive_timeout: int = field(
        default=5, metadata={"help": "seconds an idle kept-alive connection stays open (both ports)"}
    )
    max_connections: int = field(
        default=1000,
        metadata={"help": "open connections per port; a connection beyond it is answered 503 with Retry-After"},
    )
    projector_interval: float = field(default=1.0, metadata={"help": "seconds between projector folds"})
    fold_chunk: int = field(default=250_000, metadata={"help": "most log entries folded in one transaction"})
    ready_max_lag: float = field(
        default=60.0,
        metadata={
            "help": "seconds of fold lag above which /readyz answers 503; also the longest the projector may go "
            "without finishing a pass (plus --projector-interval)"
        },
    )
    ingest_queue_limit: int = field(
        default=64, metadata={"help": "batches waiting for the log writer before ingest answers 503"}
    )
    otlp_workers: int = field(
        default=1,
        metadata={"help": "processes beside the server that decode and translate large OTLP exports (0: none, all "
                          "in the server)"},
    )  # fmt: skip
    log_level: str = field(default="info", metadata={"help": "logging level"})
    dev: bool = field(
        default=False,
        metadata={
            "help": "development mode: a sign-in page that issues tokens for any org and role, "
            "signed with the data dir's dev secret (refused unless bound to localhost)"
        },
    )
    jwt_secret: str = field(
        default="",
        repr=False,
        metadata={"help": "HS256 shared secret of your identity provider (prefer the env variable)"},
    )
    jwks_url: str = field(default="", metadata={"help": "OIDC JWKS URL of your identity provider (RS256/ES256 keys)"})
    jwt_issuer: str = field(default="", metadata={"help": "required `iss` claim of dashboard tokens"})
    jwt_audience: str = field(
        default="", metadata={"help": "required `aud` claim of dashboard tokens (default: --oidc-client-id)"}
    )
    oidc_client_id: str = field(
        default="",
        metadata={
            "help": "client id registered at your OIDC provider; turns on the "
            "'Sign in with …' button (needs --jwks-url and --jwt-issuer)"
        },
    )
    oidc_client_secret: str = field(
        default="",
        repr=False,
        metadata={"help": "client secret of a confidential client (prefer the env variable; PKCE needs none)"},
    )
    oidc_redirect_url: str = field(
        default="",
        metadata={
            "help": "callback registered at the provider, e.g. https://dash.example.com"
            "/auth/callback (default: the request's address + /auth/callback)"
        },
    )
    oidc_scope: str = field(
        default="openid profile email",
        metadata={"help": "scopes asked for; add the one that puts org_id, role and teams in the ID token"},
    )
    oidc_provider_name: str = field(default="your identity provider", metadata={"help": "name on the sign-in button"})
    insecure_ingest: bool = field(
        default=False, metadata={"help": "accept events without an ingest key (local experiments only)"}
    )
    durable: bool = field(
        default=False,
        metadata={
            "help": "fsync the embedded event log at every commit (SQLite synchronous=FULL): a 200 survives a "
            "power cut, at the cost of ingest throughput; off: it survives the process being killed"
        },
    )
    retention_days: float = field(
        default=0.0,
        metadata={
            "help": "days a log entry is kept live after it arrived; older folded entries are written to monthly "
            "Parquet files in --archive-dir, verified, then deleted from the live log (at start-up and daily; "
            "metrics and dedupe unchanged; `agentdash restore` puts them back); 0: keep for ever"
        },
    )
    archive_dir: str = field(
        default="",
        metadata={
            "help": "where archived log entries are written and looked for (--retention-days, `agentdash archive`, "
            "a fold from nothing); PostgreSQL workers must share one; empty: <data-dir>/archive"
        },
    )
    alert_retry_initial: float = field(
        default=10.0,
        metadata={"help": "seconds before an alert notification's first retry; each next wait doubles (at most 1 h)"},
    )
    alert_retry_for: float = field(
        default=86_400.0,
        metadata={"help": "seconds after an alert's change of state that its notification is retried, then failed"},
    )

    def __post_init__(self) -> None:
        for name in _POSITIVE:
            if getattr(self, name) <= 0:
                raise ValueError(
                    f"setting {name} (env {ENV_PREFIX}{name.upper()}) must be above 0, got {getattr(self, name)}"
                )
        if self.retention_days < 0:
            raise ValueError(
                f"setting retention_days (env {ENV_PREFIX}RETENTION_DAYS) must be 0 (keep for ever) or more, "
                f"got {self.retention_days}"
            )
        if self.otlp_workers < 0:
            raise ValueError(
                f"setting otlp_workers (env {ENV_PREFIX}OTLP_WORKERS) must be 0 or more, got {self.otlp_workers}"
            )

    @property
    def log_path(self) -> Path:
        return self.data_dir / "events.sqlite"

    @property
    def read_models_path(self) -> Path:
        return self.data_dir / "read_models.duckdb"

    @property
    def archive_path(self) -> Path:
        """Where --retention-days and `agentdash archive` write the archived log entries."""
        return Path(self.archive_dir) if self.archive_dir else self.data_dir / "archive"

    @property
    def secret_path(self) -> Path:
        return self.data_dir / "dev-secret"

    @property
    def ingest_keys_path(self) -> Path:
        # Its own file, not the event log's: the CLI must manage keys while a server holds the log.
        return self.data_dir / "ingest-keys.sqlite"


_POSITIVE = ("header_timeout", "body_timeout", "keep_alive_timeout", "max_connections", "projector_interval",
             "ready_max_lag", "alert_retry_initial", "alert_retry_for")  # fmt: skip


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
    return Settings(**values)  # type: ignore[arg-type]  # each value was coerced to its field's type by _coerce


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _coerce(f: dataclasses.Field, value: object) -> object:
    kind: type = type(f.default)
    if kind is bool and isinstance(value, str):
        if value.strip().lower() not in _TRUE | _FALSE:
            raise ValueError(
                f"setting {f.name} (env {ENV_PREFIX}{f.name.upper()}) must be true or false, got {value!r}"
            )
        return value.strip().lower() in _TRUE
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"setting {f.name} (env {ENV_PREFIX}{f.name.upper()}) must be a {kind.__name__}, got {value!r}"
        ) from None
