"""Who may see and change which alert rules (SPEC §8 with §5): org admins every rule of their org, managers the rules
of their own teams, members none. The read API and the dashboard both call these."""

from __future__ import annotations

from agentdash.auth import Forbidden, Identity, NotVisible
from agentdash.storage import AlertEvent, AlertRule

MEMBERS = "alert rules are set by org admins and, for their teams, managers"


def _check_org(identity: Identity, org_id: str) -> None:
    if identity.org_id != org_id:
        raise NotVisible("no such organisation")


def _team_visible(identity: Identity, team_id: str | None) -> bool:
    return identity.role == "org_admin" or (identity.role == "manager" and team_id in identity.teams)


def visible_rules(identity: Identity, org_id: str, rules: list[AlertRule]) -> list[AlertRule]:
    """The org's rules the identity may see: all (admin), their teams' (manager); Forbidden for members."""
    _check_org(identity, org_id)
    if identity.role not in ("org_admin", "manager"):
        raise Forbidden(MEMBERS)
    return [r for r in rules if r.org_id == org_id and _team_visible(identity, r.team_id)]


def visible_history(identity: Identity, org_id: str, events: list[AlertEvent]) -> list[AlertEvent]:
    """The org's history entries, as visible_rules."""
    _check_org(identity, org_id)
    if identity.role not in ("org_admin", "manager"):
        raise Forbidden(MEMBERS)
    return [e for e in events if e.org_id == org_id and _team_visible(identity, e.team_id)]


def check_may_manage(identity: Identity, org_id: str, rule: AlertRule) -> None:
    """Raise unless the identity may create, change or delete this rule (as it is, and as it would become)."""
    _check_org(identity, org_id)
    if rule.org_id != org_id:
        raise NotVisible("no such alert rule")
    if identity.role == "org_admin":
        return
    if identity.role != "manager":
        raise Forbidden(MEMBERS)
    if rule.team_id not in identity.teams:
        raise Forbidden(f"managers set rules for their own teams only ({', '.join(identity.teams) or 'none'}): "
                        "give one of them as team_id")  # fmt: skip


def _shown(identity: Identity, org_id: str, team_id: str | None, user_id: str | None) -> bool:
    return org_id == identity.org_id and (_team_visible(identity, team_id)
                                          or (user_id is not None and user_id == identity.sub))  # fmt: skip


def firing_for(identity: Identity, events: list[AlertEvent]) -> list[AlertEvent]:
    """Of the firing alerts' latest entries, those the identity's banner shows: admins all of their org's, managers
    their teams', members the rules about themselves."""
    return [e for e in events if _shown(identity, e.org_id, e.team_id, e.user_id)]


def shown_rules(identity: Identity, rules: list[AlertRule]) -> list[AlertRule]:
    """The rules whose progress the identity's Cost page shows: the same ones as its banner (firing_for)."""
    return [r for r in rules if _shown(identity, r.org_id, r.team_id, r.user_id)]
