"""Who may read and who may write: dashboard tokens (HS256, OIDC/JWKS), sign-in with the provider, ingest keys,
and the role scope that narrows every metrics query."""

from __future__ import annotations

from agentdash.auth.failure_limiter import FailureLimiter, Throttled, client_address
from agentdash.auth.ingest_auth import IngestAuth, Unauthenticated, open_ingest_auth
from agentdash.auth.ingest_keys import IssuedKey, MalformedKey, issue_key, key_table
from agentdash.auth.oidc_login import CodeFlow, LoginFailed, code_flow_for
from agentdash.auth.scope import Forbidden, NotVisible, scoped_query, visible_sources
from agentdash.auth.tokens import (
    ROLES,
    HmacKey,
    Identity,
    IdentityConfigError,
    NotAuthorized,
    ProviderUnavailable,
    TokenExpired,
    TokenVerifier,
    dev_secret,
    issue_local_token,
    issue_token,
    verifier_for,
)  # fmt: skip
from agentdash.auth.webhook_auth import (
    BadSignature,
    LinkedSecrets,
    NotLinked,
    WebhookAuth,
    link_github,
    link_table,
    make_secret,
    open_webhook_auth,
    parse_target,
    signature,
)

__all__ = [
    "BadSignature", "LinkedSecrets", "NotLinked", "WebhookAuth", "link_github", "link_table", "make_secret",
    "open_webhook_auth", "parse_target", "signature",
    "ROLES", "CodeFlow", "FailureLimiter", "Forbidden", "HmacKey", "Identity", "IdentityConfigError", "IngestAuth", "IssuedKey",
    "LoginFailed", "MalformedKey", "NotAuthorized", "NotVisible", "ProviderUnavailable", "Throttled", "TokenExpired",
    "TokenVerifier", "Unauthenticated", "code_flow_for", "dev_secret", "issue_key", "issue_local_token",
    "client_address", "issue_token", "key_table", "open_ingest_auth", "scoped_query", "verifier_for", "visible_sources",
]  # fmt: skip
