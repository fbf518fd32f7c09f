"""Source counts (issue 10): the store on both backends, the keeper that fills it, and /api/v1/orgs/{org}/sources
over real HTTP, with real agents' recorded exports."""

from __future__ import annotations

import copy
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from support import BACKENDS

from agentdash.config import Settings
from agentdash.sources import SourceStats, Translation
from agentdash.sources.keeper import SourceKeeper
from agentdash.sources.translate import SourceKey, Tally
from agentdash.storage import SourceCount, SourcesReport, SourceStore, StorageError, open_source_store
from agentdash.testing import ServerProcess

CAPTURES = Path(__file__).parent / "data" / "otlp"
NO_USER = "no user: set user.email (OTEL_RESOURCE_ATTRIBUTES=user.email=...)"
T0 = 1_772_000_000_000_000  # µs, 2026-02-25


def count(org: str = "acme", agent: str = "claude-code", version: str = "2.1.0", record: str = "api_request",
          records: int = 1, mapped: int = 1, ignored: int = 0, rejected: int = 0, accepted: int = 1,
          duplicate: int = 0, because: dict[str, int] | None = None, seen: int = T0) -> SourceCount:  # fmt: skip
    return SourceCount(org, agent, version, record, records, mapped, ignored, rejected, accepted, duplicate,
                       because or {}, seen)  # fmt: skip


# -- the store: one contract for both backends --------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def settings(request, tmp_path) -> Settings:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""
    return Settings(data_dir=tmp_path / "data", database_url=url)


@pytest.fixture
def store(settings):
    opened = open_source_store(settings)
    yield opened
    opened.close()


def only(report: SourcesReport):
    [agent] = report.agents
    return agent


def test_an_empty_store_reports_no_agents(store):
    assert store.sources("acme") == SourcesReport("acme", [])


def test_counts_add_up_reasons_merge_and_last_seen_is_the_latest(store):
    store.add(
        [count(records=3, mapped=2, rejected=1, because={NO_USER: 1}, seen=T0 + 5)],
        {("acme", "claude-code", "ana"): T0},
    )
    store.add([count(records=4, mapped=1, ignored=1, rejected=2, accepted=2, duplicate=1,
                     because={NO_USER: 1, "no session": 1}, seen=T0)],
              {("acme", "claude-code", "ana"): T0 + 9, ("acme", "claude-code", "bo"): T0 + 1})  # fmt: skip
    agent = only(store.sources("acme"))
    [row] = agent.record_names
    assert (row.record, row.records, row.mapped, row.ignored, row.rejected) == ("api_request", 7, 3, 1, 3)
    assert (row.events_accepted, row.events_duplicate) == (3, 1)
    assert row.rejected_because == {NO_USER: 2, "no session": 1}
    assert list(row.rejected_because) == [NO_USER, "no session"]  # most frequent first
    assert row.last_seen == datetime.fromtimestamp((T0 + 5) / 1e6, tz=UTC)
    assert (agent.agent, agent.records, agent.rejected, agent.people_count) == ("claude-code", 7, 3, 2)
    assert [(p.user_id, p.last_seen) for p in agent.people] == [
        ("ana", datetime.fromtimestamp((T0 + 9) / 1e6, tz=UTC)),
        ("bo", datetime.fromtimestamp((T0 + 1) / 1e6, tz=UTC)),
    ]


def test_versions_and_record_names_of_an_agent_are_summed_per_name(store):
    store.add([count(version="2.1.0", records=2, seen=T0), count(version="2.2.0", records=5, seen=T0 + 10),
               count(version="2.2.0", record="user_prompt", records=1, seen=T0 + 3)], {})  # fmt: skip
    agent = only(store.sources("acme"))
    assert agent.versions == ["2.2.0", "2.1.0"]  # newest seen first
    assert [(r.record, r.records) for r in agent.record_names] == [("api_request", 7), ("user_prompt", 1)]
    assert agent.last_seen == datetime.fromtimestamp((T0 + 10) / 1e6, tz=UTC)
    assert agent.people_count == 0 and agent.people == []


def test_agents_are_listed_most_recently_seen_first(store):
    store.add([count(agent="gemini-cli", seen=T0), count(agent="codex_exec", seen=T0 + 100)], {})
    assert [a.agent for a in store.sources("acme").agents] == ["codex_exec", "gemini-cli"]


def test_an_org_sees_only_its_own_rows_and_nobody_sees_org_blank(store):
    store.add([count(org="acme", records=1), count(org="globex", records=2), count(org="", records=4)],
              {("acme", "claude-code", "ana"): T0, ("globex", "claude-code", "gus"): T0})  # fmt: skip
    acme, globex = only(store.sources("acme")), only(store.sources("globex"))
    assert (acme.records, [p.user_id for p in acme.people]) == (1, ["ana"])
    assert (globex.records, [p.user_id for p in globex.people]) == (2, ["gus"])
    assert store.sources("").agents == []
    assert store.sources("initech").agents == []


def test_people_are_counted_exactly_and_the_most_recent_listed(store):
    users = {("acme", "claude-code", f"u{i:03}"): T0 + i for i in range(130)}
    store.add([count()], users)
    agent = only(store.sources("acme"))
    assert agent.people_count == 130
    assert len(agent.people) == 100 and agent.people[0].user_id == "u129"


def test_counts_survive_a_reopen(settings):
    first = open_source_store(settings)
    first.add([count(records=2, because={NO_USER: 1}, rejected=1)], {("acme", "claude-code", "ana"): T0})
    first.close()
    again = open_source_store(settings)
    try:
        agent = only(again.sources("acme"))
        assert (agent.records, agent.rejected, agent.people_count) == (2, 1, 1)
        assert agent.record_names[0].rejected_because == {NO_USER: 1}
    finally:
        again.close()


def test_two_stores_on_one_backend_add_up(settings):
    """As two workers on one database (or the server and a second opener of the file) would."""
    a, b = open_source_store(settings), open_source_store(settings)
    try:
        threads = [threading.Thread(target=lambda s=s: [s.add([count()], {}) for _ in range(20)]) for s in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert only(a.sources("acme")).records == 40
    finally:
        a.close()
        b.close()


def test_the_embedded_file_is_private(tmp_path):
    store = open_source_store(Settings(data_dir=tmp_path / "data"))
    store.close()
    assert (tmp_path / "data" / "sources.sqlite").stat().st_mode & 0o777 == 0o600


# -- the keeper ---------------------------------------------------------------------------------------------------


def translation(org: str = "acme", user: str = "ana", records: int = 2, rejected: int = 0) -> Translation:
    tally = Tally(records=records, mapped=records - rejected, rejected=rejected, events_accepted=records - rejected,
                  reasons={NO_USER: rejected} if rejected else {}, last_seen_us=T0)  # fmt: skip
    return Translation(tallies={SourceKey(org, "claude-code", "2.1.0", "api_request"): tally},
                       users={(org, "claude-code", user): T0})  # fmt: skip


class FailingStore(SourceStore):
    """Fails the first `failures` adds, like a database that is briefly away, then keeps what it is given."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.added: list[tuple[list[SourceCount], dict]] = []

    def add(self, counts, users) -> None:
        if self.failures:
            self.failures -= 1
            raise StorageError("database away")
        self.added.append((list(counts), dict(users)))

    def sources(self, org_id: str) -> SourcesReport:
        raise NotImplementedError

    def close(self) -> None:
        pass


def test_the_keeper_stores_what_was_drained_and_nothing_when_idle(store):
    stats = SourceStats()
    keeper = SourceKeeper(stats, store)
    stats.add(translation(records=3, rejected=1))
    assert keeper.keep() == 1
    assert keeper.keep() == 0  # nothing new: no write
    agent = only(store.sources("acme"))
    assert (agent.records, agent.rejected, agent.people_count) == (3, 1, 1)


def test_a_failed_add_keeps_the_counts_for_the_next_tick():
    stats, failing = SourceStats(), FailingStore(failures=2)
    keeper = SourceKeeper(stats, failing)
    stats.add(translation(records=2, rejected=1))
    with pytest.raises(StorageError):
        keeper.keep()
    stats.add(translation(records=5, user="bo"))
    with pytest.raises(StorageError):
        keeper.keep()
    keeper.keep()
    [(counts, users)] = failing.added
    [merged] = counts
    assert (merged.records, merged.mapped, merged.rejected, merged.rejected_because) == (7, 6, 1, {NO_USER: 1})
    assert users == {("acme", "claude-code", "ana"): T0, ("acme", "claude-code", "bo"): T0}


def test_the_keeper_keeps_once_more_when_it_stops(store):
    stats = SourceStats()
    keeper = SourceKeeper(stats, store, interval_seconds=3600)
    keeper.start()
    stats.add(translation())
    keeper.stop()
    assert only(store.sources("acme")).records == 2


# -- over HTTP: a real server, real agents' exports ---------------------------------------------------------------


def capture(agent: str, scenario: str) -> list[dict]:
    path = CAPTURES / agent / f"{scenario}.json"
    if not path.exists():
        pytest.skip(f"no recording {path} (scripts/record_agent_otlp.py makes them)")
    return json.loads(path.read_text())


def send(server, key: str, export: dict) -> None:
    answer = httpx.post(f"{server.ingest_url}/v1/{export['signal']}", content=json.dumps(export["body"]).encode(),
                        headers={"content-type": "application/json", "authorization": f"Bearer {key}"}, timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text


def without_users(export: dict) -> dict:
    """The export as an agent without OTEL_RESOURCE_ATTRIBUTES=user.email=... would send it."""
    export = copy.deepcopy(export)

    def strip(node):
        if isinstance(node, dict):
            if isinstance(node.get("attributes"), list):
                node["attributes"] = [a for a in node["attributes"] if not a.get("key", "").startswith("user.")]
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)

    strip(export["body"])
    return export


def sources(server, org: str, role: str = "org_admin", teams: str = "") -> httpx.Response:
    return httpx.get(f"{server.url}/api/v1/orgs/{org}/sources",
                     headers={"authorization": f"Bearer {server.token(org, role, teams=teams)}"}, timeout=30)  # fmt: skip


def kept(server, org: str, records: int, timeout: float = 30) -> dict:
    """The org's sources once the keeper has stored `records` records of it."""
    deadline = time.monotonic() + timeout
    while True:
        answer = sources(server, org)
        assert answer.status_code == 200, answer.text
        report = answer.json()
        if sum(a["records"] for a in report["agents"]) >= records or time.monotonic() > deadline:
            return report
        time.sleep(0.2)


def by_agent(report: dict) -> dict[str, dict]:
    return {a["agent"]: a for a in report["agents"]}


def test_the_sources_api_shows_what_the_agents_sent_and_keeps_it_across_a_restart(server_factory, tmp_path):
    server = server_factory()
    key = server.create_ingest_key("acme", name="otlp")
    for export in capture("claude", "one_prompt") + capture("gemini", "one_prompt"):
        send(server, key, export)
    status = {(c["agent"], c["record"]): c for c in server.status()["otlp_records"] if c["org_id"] == "acme"}
    total = sum(c["records"] for c in status.values())
    report = kept(server, "acme", total)

    agents = by_agent(report)
    assert set(agents) == {"claude-code", "gemini-cli"}
    claude = agents["claude-code"]
    assert claude["versions"] == ["2.1.332"]
    assert claude["people_count"] == 1 and len(claude["people"]) == 1
    assert claude["last_seen"] is not None
    for agent in agents.values():
        for row in agent["record_names"]:
            expected = status[(agent["agent"], row["record"])]
            got = {
                k: row[k] for k in ("records", "mapped", "ignored", "rejected", "events_accepted", "events_duplicate")
            }
            assert got == {k: expected[k] for k in got}, row["record"]
    assert any(r["mapped"] for r in claude["record_names"]) and any(r["ignored"] for r in claude["record_names"])

    # a resend: every event is a duplicate now, and the counts say so
    for export in capture("claude", "one_prompt"):
        send(server, key, export)
    claude_records = claude["records"]
    again = by_agent(kept(server, "acme", total + claude_records))["claude-code"]
    assert again["records"] == 2 * claude_records
    assert sum(r["events_duplicate"] for r in again["record_names"]) == sum(
        r["events_accepted"] for r in claude["record_names"]
    )

    server.stop()
    restarted = server_factory(server.data_dir)
    assert restarted.status()["otlp_records"] == []  # in memory: gone with the process
    assert by_agent(sources(restarted, "acme").json())["claude-code"] == again


def test_rejected_records_say_why_and_only_admins_of_the_org_see_any_of_it(server):
    key = server.create_ingest_key("acme", name="otlp")
    for export in capture("claude", "one_prompt"):
        send(server, key, without_users(export))
    report = kept(server, "acme", 1)
    claude = by_agent(report)["claude-code"]
    rejected = {r["record"]: r for r in claude["record_names"] if r["rejected"]}
    assert rejected and all(r["rejected_because"] == {NO_USER: r["rejected"]} for r in rejected.values())
    assert claude["people_count"] == 0  # nobody could be named

    for role, teams in (("manager", "platform"), ("member", "")):
        answer = sources(server, "acme", role, teams)
        assert answer.status_code == 403 and "org admins" in answer.json()["error"], (role, answer.text)
    other = httpx.get(f"{server.url}/api/v1/orgs/acme/sources",
                      headers={"authorization": f"Bearer {server.token('globex')}"}, timeout=30)  # fmt: skip
    assert other.status_code == 404 and "acme" not in other.text and "claude" not in other.text
    assert sources(server, "globex").json() == {"org_id": "globex", "agents": []}
    assert httpx.get(f"{server.url}/api/v1/orgs/acme/sources", timeout=30).status_code == 401


def test_the_endpoint_is_in_the_openapi_schema(server):
    schema = httpx.get(f"{server.url}/api/schema/openapi.json", timeout=30).json()
    assert "/api/v1/orgs/{org_id}/sources" in schema["paths"]


def test_two_workers_on_one_database_add_their_counts_together(postgres_url, tmp_path):
    workers = [ServerProcess(tmp_path / f"worker{n}", database_url=postgres_url) for n in (1, 2)]
    try:
        for worker in workers:
            worker.start()
        key = workers[0].create_ingest_key("acme", name="otlp")
        exports = capture("claude", "one_prompt")
        records = 0
        for worker in workers:
            for export in exports:
                send(worker, key, export)
            records += sum(c["records"] for c in worker.status()["otlp_records"] if c["org_id"] == "acme")
        for worker in workers:  # each answers from the shared tables
            claude = by_agent(kept(worker, "acme", records))["claude-code"]
            assert claude["records"] == records and claude["people_count"] == 1
    finally:
        for worker in workers:
            if worker.process and worker.process.poll() is None:
                worker.stop()
