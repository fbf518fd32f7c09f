"""The role scope (SPEC §5): what one identity may see of the metrics, enforced in this one place."""

from __future__ import annotations

from dataclasses import replace

from agentdash.auth.tokens import Identity
from agentdash.metrics import MetricsQuery
from agentdash.storage import SourcesReport, SourceStore, Unavailable


class NotVisible(Exception):
    """The identity may not know this exists (another org): answered as if it did not (HTTP 404)."""


class Forbidden(Exception):
    """The identity may not see what it asked for; the message says why (HTTP 403)."""


def scoped_query(identity: Identity, query: MetricsQuery) -> MetricsQuery:
    """Narrow a query to what the identity may see; refuse what it may never see.

    The read API, the CSV export and every dashboard page go through it. Another org is NotVisible, so that not
    even the org's existence leaks.
    """
    if identity.org_id != query.org_id:
        raise NotVisible("no such organisation")
    if identity.role == "member":
        if query.user_id not in (None, identity.sub):
            raise Forbidden("members see only their own data")
        return replace(query, user_id=identity.sub, teams=None)
    if identity.role == "manager":
        if query.team_id is not None and query.team_id not in identity.teams:
            raise Forbidden(f"that team is not one of yours ({', '.join(identity.teams) or 'none'})")
        return replace(query, teams=identity.teams)
    if identity.role == "org_admin":
        return replace(query, teams=None)
    raise Forbidden(f"unknown role {identity.role!r}")


ADMINS_ONLY = ("the Sources page is for org admins: it shows how every agent is set up and everyone who sent data; "
               "ask an org admin of {org}")  # fmt: skip


def visible_sources(store: SourceStore | None, identity: Identity, org_id: str) -> SourcesReport:
    """The org's sources for an org admin; NotVisible for another org, Forbidden for managers and members.

    The read API and the dashboard's /sources page both call this, so the page never shows more than the API.
    """
    if identity.org_id != org_id:
        raise NotVisible("no such organisation")
    if identity.role != "org_admin":
        raise Forbidden(ADMINS_ONLY.format(org=org_id))
    if store is None:
        raise Unavailable("this server keeps no source counts")
    return store.sources(org_id)
