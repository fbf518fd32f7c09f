"""What a dashboard page looks at: who signed in, the filters, where the data comes from and the scoped queries."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields, replace
from urllib.parse import quote

from nicegui import ui

from agentdash.auth import Identity, TokenVerifier, scoped_query
from agentdash.metrics import MetricsQuery
from agentdash.projector import Projector
from agentdash.sources import OrgAttribution
from agentdash.storage import AlertStore, SourceStore, Storage
from agentdash.ui.filters import Filters

ROUTE_PARAMETER = re.compile(r"{(\w+)(?::\w+)?}")  # `{user_id}` or, with a Starlette convertor, `{user_id:path}`


@dataclass(frozen=True)
class Sources:
    """What pages read from: the storage (through metrics.py), the projector's status, who signs in, the source
    counts (the Sources page), each org's agent rules (which PRs are agents')."""

    storage: Storage
    projector: Projector
    verifier: TokenVerifier
    source_store: SourceStore | None = None
    attribution: OrgAttribution = field(default_factory=lambda: OrgAttribution(None))
    alert_store: AlertStore | None = None  # the Alerts page and the banner of firing alerts


@dataclass
class View:
    """One page's state: who looks, with which filters, from where, and what the frame drew for it."""

    identity: Identity
    filters: Filters
    sources: Sources
    route: str  # as registered, e.g. `/people/{user_id}`: its parameters pin filters
    on_new_data: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    pickers: dict[str, ui.select] = field(default_factory=dict)  # the filter bar's lists
    dark: bool = False  # the person's light/dark choice, from the dark-mode cookie

    @property
    def path(self) -> str:
        """This page's own address: the route with the pinned filters filled in."""
        return self._path_for(self.filters) or self.route

    def url(self, **changes) -> str:
        """This page with the filters changed; changing a pinned filter moves to that person's or team's page,
        clearing it goes back to the list."""
        f = replace(self.filters, **changes) if changes else self.filters
        pinned = ROUTE_PARAMETER.findall(self.route)
        path = self._path_for(f) or self.route.split("/{")[0]
        return f"{path}?{f.to_query(**{key: None for key in pinned})}"

    def _path_for(self, f: Filters) -> str | None:
        values = {key: getattr(f, key) for key in ROUTE_PARAMETER.findall(self.route)}
        if not all(values.values()):
            return None
        return ROUTE_PARAMETER.sub(lambda m: quote(values[m[1]], safe=""), self.route)


@dataclass(kw_only=True)
class ScopedView(View):
    """A view the identity may see: its filters' queries, this period's and the previous one, narrowed by role."""

    query: MetricsQuery
    previous: MetricsQuery

    @classmethod
    def of(cls, view: View) -> ScopedView:
        """`view` with its queries, sharing its pickers and callbacks; raises auth.Forbidden or auth.NotVisible when
        the identity may not see them."""
        queries = (scope(view.identity, view.filters, view.sources.attribution),
                   scope(view.identity, view.filters.previous_period(), view.sources.attribution))  # fmt: skip
        return cls(**{f.name: getattr(view, f.name) for f in fields(View)}, query=queries[0], previous=queries[1])


def scope(identity: Identity, filters: Filters, attribution: OrgAttribution | None = None) -> MetricsQuery:
    """The filters' query narrowed by the read API's own rule, so the screen never shows more than the API, with the
    org's agent branch prefixes."""
    query = scoped_query(identity, filters.metrics_query(identity.org_id))
    if attribution is None:  # the built-in prefixes, which the query has by default
        return query
    return replace(query, branch_prefixes=attribution.of(query.org_id).branch_prefixes)
