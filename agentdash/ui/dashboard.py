"""The one place that wires the dashboard: the sign-in pages and every page module, mounted on a FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI
from nicegui import ui

from agentdash.auth import CodeFlow, FailureLimiter, TokenVerifier
from agentdash.projector import Projector
from agentdash.sources import OrgAttribution
from agentdash.storage import AlertStore, SourceStore, Storage
from agentdash.ui import alerts_page, overview, people, signin
from agentdash.ui import sources as sources_page
from agentdash.ui.signin import SignIn
from agentdash.ui.view import Sources


def install_pages(sources: Sources, sign_in: SignIn) -> None:
    """Register /signin, /login, /logout (and the code flow), then the overview, question, people, team and
    sources pages."""
    signin.install(sign_in)
    overview.create(sources)
    people.create(sources)
    sources_page.create(sources)
    alerts_page.create(sources)


def create_dashboard(storage: Storage, projector: Projector, verifier: TokenVerifier, dev_secret: str | None,
                     code_flow: CodeFlow | None = None, source_store: SourceStore | None = None,
                     attribution: OrgAttribution | None = None,
                     alert_store: AlertStore | None = None) -> FastAPI:  # fmt: skip
    """The dashboard as a FastAPI app for the client port: every page installed, NiceGUI run with it."""
    dashboard = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    install_pages(Sources(storage, projector, verifier, source_store, attribution or OrgAttribution(None), alert_store),
                  SignIn(verifier, dev_secret, FailureLimiter(), code_flow))  # fmt: skip
    ui.run_with(dashboard, title="agentdash", show_welcome_message=False, reconnect_timeout=10)
    return dashboard
