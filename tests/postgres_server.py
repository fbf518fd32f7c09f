"""Fixtures for the Postgres backend: one throwaway cluster per test process, one new database per user.

Where PostgreSQL or psycopg is missing, the tests that ask for these fixtures skip and say why
(.ci/run installs PostgreSQL, so CI runs them).
"""

from __future__ import annotations

import itertools
import os

import pytest
from support import postgres_missing

from agentdash.testing import PostgresCluster, postgres_bin_dir

_names = itertools.count()


@pytest.fixture(scope="session")
def postgres_cluster():
    missing = postgres_missing()
    bin_dir = postgres_bin_dir()
    if missing is not None or bin_dir is None:
        pytest.skip(missing or "PostgreSQL is not installed")
    cluster = PostgresCluster(bin_dir).start()
    yield cluster
    cluster.stop()


def new_database(cluster: PostgresCluster) -> str:
    """A fresh database (named per test process, so xdist workers never collide); its URL."""
    return cluster.create_database(f"agentdash_{os.getpid()}_{next(_names)}")


@pytest.fixture
def postgres_url(postgres_cluster) -> str:
    return new_database(postgres_cluster)


@pytest.fixture(scope="module")
def module_postgres_url(postgres_cluster) -> str:
    return new_database(postgres_cluster)
