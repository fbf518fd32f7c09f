"""PostgreSQL row-level security: the read queries run as a reader role that sees one org's rows, whatever they ask.

Checked here, on a real server: the figures of both orgs are the oracle's with it on; every read query the metrics
make, its `org_id = $org` predicates removed, still answers exactly what it answers with them (and, to show the
removal matters, something else on the owner's connection); the reader sees nothing without `app.org_id`, and can
write nothing; a pooled connection carries no org, role or search_path from one read to the next, even after a
failed one; prepare is idempotent, changes nothing once all is in place, and several workers may start at once; a
rebuild keeps the policies; a login role that may not create roles runs without it, says how to turn it on, and has
it once that is done (in a schema of its own name, so reads must set their search_path).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from support import ORG, OTHER_ORG, QUERIES, all_metrics, all_oracle, assert_all_same, random_events, submit, wire
from test_storage_contract import READ_QUERIES

from agentdash.config import Settings
from agentdash.metrics import (
    DIMENSIONS,
    MetricsQuery,
    agent_prs,
    breakdown,
    duration_histogram,
    filter_values,
    org_metrics,
    time_to_merge_histogram,
)
from agentdash.projector import Projector
from agentdash.storage import open_storage
from agentdash.storage.queries import render, split

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[postgres]'")
from agentdash.storage.postgres.connections import ConnectionPool  # noqa: E402  (needs psycopg)
from agentdash.storage.postgres.read_models import ORG_TABLES, RLS, SQL, PostgresReadModels  # noqa: E402

ORG_FILTER = re.compile(r"\b(?:\w+\.)?org_id = %\(org\)s")  # how every read query keeps to its org


def titled_pr(org: str) -> dict:
    """A PR with a title and url (pr_texts), one per org: random_events sends none."""
    return {"id": f"pr-{org}", "type": "pr.opened", "org_id": org, "occurred_at": "2026-02-28T10:00:00Z",
            "repo": "acme/docs", "pr_number": 7, "head_branch": "docs-1",
            "attributes": {"title": f"{org}'s plans", "url": f"https://example.com/{org}/7"}}  # fmt: skip


EVENTS = [*random_events(seed=31, n_sessions=40), titled_pr(ORG), titled_pr(OTHER_ORG)]
ORGS = (ORG, OTHER_ORG)


def open_pg(url: str):
    return open_storage(Settings(database_url=url))


@pytest.fixture(scope="module")
def storage(module_postgres_url):
    opened = open_pg(module_postgres_url)
    assert submit(opened, EVENTS) == [True] * len(EVENTS)
    Projector(opened).catch_up()
    yield opened
    opened.close()


def models_of(storage) -> PostgresReadModels:
    return storage._models


def owner_models(storage) -> PostgresReadModels:
    """The same read models read as the owner: the queries' own org filter alone, as without row security."""
    return PostgresReadModels("", storage._readers, reader=None)


def run_text(models: PostgresReadModels, name: str, text: str, params: dict[str, Any]) -> list[tuple]:
    """A query's text through the read path (`_fetch`: the pooled connection, the reader's scope), parts in order."""
    return sorted((tuple(row) for part in split(text) for row in models._fetch(name, part, params)), key=repr)


class Recorder:
    """A storage that notes every named query the metrics ask for (name, params before render pops the group)."""

    def __init__(self, storage) -> None:
        self.storage, self.calls = storage, []

    def query(self, name: str, params: dict[str, Any]) -> list[tuple]:
        self.calls.append((name, dict(params)))
        return self.storage.query(name, params)


def metric_queries(storage, org: str) -> list[tuple[str, dict[str, Any]]]:
    recorder = Recorder(storage)
    wide = MetricsQuery(org, *QUERIES[0][:2])
    org_metrics(recorder, wide)
    org_metrics(recorder, replace(wide, agent="codex", team_id="t1"))
    for dimension in ("agent", "team"):
        breakdown(recorder, wide, dimension)
    for dimension in DIMENSIONS:
        filter_values(recorder, wide, dimension)
    duration_histogram(recorder, wide)
    agent_prs(recorder, wide)
    time_to_merge_histogram(recorder, wide)
    return recorder.calls


def db_settings(db) -> tuple:
    return db.execute("SELECT current_user, current_setting('app.org_id', true), current_setting('search_path'), "
                      "pg_backend_pid()").fetchone()  # fmt: skip


def as_reader(db, reader: str, org: str | None) -> None:
    """In the transaction that is open on `db`: the reader's role, and `app.org_id` unless None."""
    db.execute("SELECT set_config('role', %s, true)", [reader])
    if org is not None:
        db.execute("SELECT set_config('app.org_id', %s, true)", [org])


# -- reads -----------------------------------------------------------------------------------------------------------


def test_with_row_security_on_the_figures_of_both_orgs_are_the_oracle_s(storage):
    assert models_of(storage).reader is not None  # the test cluster's login role is a superuser: it is set up
    assert_all_same(all_metrics(storage), all_oracle(EVENTS))


@pytest.mark.parametrize("org", ORGS)
def test_read_queries_without_their_org_filter_still_see_only_their_org(storage, org):
    calls = metric_queries(storage, org)
    assert {name for name, _ in calls} == READ_QUERIES  # every read query
    leaked = 0
    for name, params in calls:
        scoped = render(SQL, name, dict(params))
        bare = ORG_FILTER.sub("TRUE", scoped)
        assert "%(org)s" not in bare and bare != scoped, f"{name}: its org filter is not removed"
        answer = sorted((tuple(row) for row in storage.query(name, dict(params))), key=repr)
        assert answer == run_text(models_of(storage), name, bare, params), f"{name}: the reader saw another org"
        leaked += answer != run_text(owner_models(storage), name, bare, params)
    # Without the reader, removing the filters changes the answers: the comparison above could fail.
    assert leaked >= len(calls) // 2, f"only {leaked} of {len(calls)} queries depend on their org filter"


@pytest.mark.parametrize("table", ORG_TABLES)
def test_the_reader_sees_each_table_only_for_its_org(storage, table):
    everything = f"SELECT org_id, count(*) FROM {table} GROUP BY org_id ORDER BY org_id"
    owner = run_text(owner_models(storage), "owner", everything, {})
    assert [org for org, _ in owner] == sorted(ORGS)  # both orgs have rows here
    for org in ORGS:
        assert run_text(models_of(storage), "scoped", everything, {"org": org}) == [
            row for row in owner if row[0] == org
        ]
    assert run_text(models_of(storage), "scoped", everything, {"org": "nobody"}) == []


def test_without_app_org_id_the_reader_sees_nothing_and_it_can_write_nothing(storage, module_postgres_url):
    reader = models_of(storage).reader.role
    with psycopg.connect(module_postgres_url, autocommit=True) as db:
        for org in (None, ""):
            with db.transaction():
                as_reader(db, reader, org)
                assert db.execute("SELECT current_user").fetchone() == (reader,)
                for table in ORG_TABLES:
                    assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
        writes = ("INSERT INTO {t} SELECT * FROM {t} LIMIT 1", "UPDATE {t} SET org_id = org_id", "DELETE FROM {t}",
                  "TRUNCATE {t}")  # fmt: skip
        for table in ORG_TABLES:
            for write in writes:
                with pytest.raises(psycopg.errors.InsufficientPrivilege), db.transaction():
                    as_reader(db, reader, ORG)
                    db.execute(write.format(t=table))
        with pytest.raises(psycopg.errors.InsufficientPrivilege), db.transaction():
            as_reader(db, reader, ORG)
            db.execute("SELECT count(*) FROM checkpoint")  # no org_id, not granted: no read query needs it
        assert db.execute("SELECT count(*) FROM events").fetchone() == (len(EVENTS),)  # the owner's view is whole


def test_a_pooled_connection_carries_no_org_role_or_search_path_to_the_next_read(storage, module_postgres_url):
    pool = ConnectionPool(module_postgres_url, 1)  # one connection: every read below reuses it
    models = PostgresReadModels(module_postgres_url, pool, models_of(storage).reader)
    with pool.connection() as db:
        fresh = db_settings(db)
    assert fresh[1] in (None, "")
    orgs = "SELECT DISTINCT org_id FROM runs"
    try:
        assert run_text(models, "orgs", orgs, {"org": ORG}) == [(ORG,)]
        with pool.connection() as db:
            assert db_settings(db) == (fresh[0], "", fresh[2], fresh[3])  # the same connection, nothing left set
        with pytest.raises(psycopg.errors.DivisionByZero):
            run_text(models, "fails", "SELECT count(*) / 0 FROM runs", {"org": ORG})
        with pool.connection() as db:
            assert db_settings(db) == (fresh[0], "", fresh[2], fresh[3])
        assert run_text(models, "orgs", orgs, {"org": OTHER_ORG}) == [(OTHER_ORG,)]
        with pytest.raises(ValueError, match="names none"):
            run_text(models, "orgs", orgs, {})  # a read query without an org is a bug, not an empty answer
    finally:
        pool.close()


# -- setting it up ---------------------------------------------------------------------------------------------------


def unprotected(url: str, reader: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as db:
        return db.execute(
            RLS.statement("unprotected_tables"), {"reader": reader, "tables": list(ORG_TABLES)}
        ).fetchone()[0]


def test_workers_start_together_and_a_restart_changes_nothing(postgres_url):
    with ThreadPoolExecutor(3) as pool:
        storages = list(pool.map(lambda _: open_pg(postgres_url), range(3)))
    readers = {models_of(s).reader for s in storages}
    for opened in storages:
        opened.close()
    assert len(readers) == 1 and None not in readers
    (reader,) = readers
    assert reader.role == f"agentdash_reader_{urlsplit(postgres_url).path[1:]}"  # one role per database
    assert unprotected(postgres_url, reader.role) == []
    with psycopg.connect(postgres_url) as ingest:  # an ingest transaction holds the log: a restart must not wait
        ingest.execute("LOCK TABLE events IN ROW EXCLUSIVE MODE")
        opened: list = []
        starting = threading.Thread(target=lambda: opened.append(open_pg(postgres_url)))
        starting.start()
        starting.join(timeout=20)
        assert opened, "reopening waited for the log's lock: it altered the table again"
    assert models_of(opened[0]).reader == reader
    opened[0].close()


def test_a_rebuild_keeps_row_security(postgres_url):
    storage = open_pg(postgres_url)
    try:
        submit(storage, EVENTS)
        Projector(storage).catch_up()
        before = all_metrics(storage)
        storage.reset_read_models()  # drops and recreates the read models, policies with them
        reader = models_of(storage).reader.role
        assert unprotected(postgres_url, reader) == []
        assert all(
            run_text(models_of(storage), "t", f"SELECT 1 AS one FROM {t}", {"org": ORG}) == [] for t in ORG_TABLES[1:]
        )
        Projector(storage).catch_up()
        assert_all_same(all_metrics(storage), before)
        assert run_text(models_of(storage), "orgs", "SELECT DISTINCT org_id FROM prs", {"org": ORG}) == [(ORG,)]
    finally:
        storage.close()


def own_database(postgres_url: str, user: str, privileges: str = "") -> tuple[str, str, str]:
    """A new login role (a superuser makes it, with `privileges`) and a database it owns: (database, its URL as
    the superuser, as the role)."""
    database = f"{urlsplit(postgres_url).path[1:]}_{user}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {user} LOGIN {privileges}")
        admin.execute(f"CREATE DATABASE {database} OWNER {user}")
    admin_url = urlunsplit(urlsplit(postgres_url)._replace(path=f"/{database}"))
    return database, admin_url, admin_url.replace("postgres@", f"{user}@")


def test_a_login_role_that_may_create_roles_sets_it_up_itself(postgres_url, caplog):
    database, _, url = own_database(postgres_url, f"maker_{os.getpid()}", "CREATEROLE")
    with caplog.at_level(logging.WARNING, logger="agentdash.storage.postgres.read_models"):
        storage = open_pg(url)
    try:
        assert not [r for r in caplog.records if "row-level security" in r.message]
        reader = models_of(storage).reader
        assert reader is not None and reader.role == f"agentdash_reader_{database}"
        assert unprotected(url, reader.role) == []
        submit(storage, [wire("a", ORG), wire("b", OTHER_ORG)])
        Projector(storage).catch_up()
        assert run_text(models_of(storage), "orgs", "SELECT org_id FROM runs UNION SELECT org_id FROM activity",
                        {"org": ORG}) == [(ORG,)]  # fmt: skip
    finally:
        storage.close()


def test_a_login_role_that_may_not_create_roles_runs_without_it_and_is_told_how_to_turn_it_on(postgres_url, caplog):
    user = f"plain_{os.getpid()}"
    database, admin_url, _ = own_database(postgres_url, user)
    with psycopg.connect(admin_url, autocommit=True) as admin:  # its own schema, first in "$user", public
        admin.execute(f"CREATE SCHEMA {user} AUTHORIZATION {user}")
    url = admin_url.replace("postgres@", f"{user}@")
    with caplog.at_level(logging.WARNING, logger="agentdash.storage.postgres.read_models"):
        storage = open_pg(url)
    try:
        assert models_of(storage).reader is None  # it runs, scoped by the queries alone
        submit(storage, [wire("a", ORG), wire("b", OTHER_ORG), wire("c", OTHER_ORG, user_id="u2")])
        Projector(storage).catch_up()
        want = {org: org_metrics(storage, MetricsQuery(org, *QUERIES[0][:2])) for org in ORGS}
    finally:
        storage.close()
    assert want[ORG] != want[OTHER_ORG]
    (warning,) = [
        r for r in caplog.records if r.levelno == logging.WARNING and "row-level security is off" in r.message
    ]
    fix = re.search(r"run as a superuser: (.*) and restart", warning.message).group(1)
    reader = f"agentdash_reader_{database}_{user}"  # not the public schema: named after it too
    assert fix == f'CREATE ROLE "{reader}" NOLOGIN; GRANT "{reader}" TO "{user}";'
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(fix)
    caplog.clear()
    storage = open_pg(url)
    try:
        assert models_of(storage).reader is not None and models_of(storage).reader.role == reader
        assert not [r for r in caplog.records if "row-level security" in r.message]
        assert unprotected(url, reader) == []  # (its tables are in its schema)
        for org in ORGS:
            assert org_metrics(storage, MetricsQuery(org, *QUERIES[0][:2])) == want[org]
        assert run_text(models_of(storage), "orgs", "SELECT DISTINCT org_id FROM events", {"org": OTHER_ORG}) == [
            (OTHER_ORG,)
        ]
    finally:
        storage.close()
