"""The ingest API (internal port): our JSON events, OpenTelemetry from the agents people run, health and status.

Writing needs an ingest key (`Authorization: Bearer adk_...`, see auth/ingest_auth.py); each event must be for
one of the key's orgs. /healthz and /status stay open: they are operational and show no org's data.
"""

from __future__ import annotations

from agentdash.ingest.app import create_ingest_app

__all__ = ["create_ingest_app"]
