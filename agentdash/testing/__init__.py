"""Test support shipped with the package: a real server in a subprocess, a throwaway PostgreSQL cluster."""

from __future__ import annotations

from agentdash.testing.postgres import PostgresCluster, postgres_bin_dir
from agentdash.testing.server_process import DEFAULT_INGEST_ORGS, ServerProcess, free_port

__all__ = ["DEFAULT_INGEST_ORGS", "PostgresCluster", "ServerProcess", "free_port", "postgres_bin_dir"]
