"""The sources endpoint (client port): what each agent of an org has sent, for the org's admins only."""

from __future__ import annotations

from litestar import Request, get
from litestar.datastructures import State
from litestar.params import FromPath

from agentdash.auth import visible_sources
from agentdash.storage import SourcesReport
from agentdash.web.dependencies import identify


# In a worker thread: verifying a token may fetch the identity provider's keys, and the store is a database.
@get("/api/v1/orgs/{org_id:str}/sources", sync_to_thread=True,
     summary="Per agent: versions, people, last seen and each record name's counts (org admins only)")  # fmt: skip
def get_sources(request: Request, state: State, org_id: FromPath[str]) -> SourcesReport:
    return visible_sources(state.source_store, identify(request), org_id)


SOURCES_ROUTES = [get_sources]
