"""Dashboard identity for now: HS256 JWTs signed with a development secret kept in the data dir."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import jwt

ROLES = ("org_admin", "manager", "member")
ALGORITHM = "HS256"


class NotAuthorized(Exception):
    """The request carries no valid identity (401)."""


@dataclass(frozen=True)
class Identity:
    sub: str
    org_id: str
    role: str
    teams: tuple[str, ...] = field(default_factory=tuple)


def dev_secret(path: Path) -> str:
    """The local signing secret, created on first use and readable by its owner only."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret)
    return secret


def issue_token(secret: str, org_id: str, role: str, user: str, teams: tuple[str, ...] = (), ttl_s: int = 8 * 3600) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    now = int(time.time())
    claims = {"sub": user, "org_id": org_id, "role": role, "teams": list(teams), "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str) -> Identity:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise NotAuthorized("token expired; sign in again") from None
    except jwt.InvalidTokenError as exc:
        raise NotAuthorized(f"invalid token: {exc}") from None
    role, teams = claims.get("role"), claims.get("teams") or []
    if role not in ROLES or not isinstance(claims.get("org_id"), str) or not isinstance(teams, list):
        raise NotAuthorized("token lacks org_id, a known role or a teams list")
    return Identity(sub=str(claims["sub"]), org_id=claims["org_id"], role=role, teams=tuple(map(str, teams)))
