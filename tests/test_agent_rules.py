"""An org's own agent rules (SPEC §7 "the rules are documented and configurable", issue 11): the rule store on both
backends, the checks a rule must pass, how an org's rules and the built-in ones combine, and, on a real server of
each backend, rules added with the CLI while it runs: a branch prefix counts that org's PRs at once, a bot author
marks the GitHub deliveries that arrive after it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import date

import httpx
import pytest
from support import BACKENDS
from test_github_webhook import SECRET, deliver, pr_example

from agentdash.config import Settings
from agentdash.sources.attribution import (
    AGENT_MARKS,
    BUILT_IN,
    REFRESH_S,
    Attribution,
    InvalidRule,
    OrgAttribution,
    checked_rule,
    rule_table,
)
from agentdash.storage import AgentRule, AgentRuleError, AgentRuleStore, open_agent_rules
from agentdash.testing import ServerProcess


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path) -> Iterator[AgentRuleStore]:
    """The rule store of each backend: <data-dir>/agent-rules.sqlite, or the database's table."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""
    opened = open_agent_rules(Settings(data_dir=tmp_path, database_url=url))
    yield opened
    opened.close()


# -- the store, one contract for every backend -----------------------------------------------------------------------


def test_rules_are_added_listed_changed_and_removed(store):
    first, replaced = store.add(AgentRule("acme", "branch_prefix", "devin/", "devin"))
    assert not replaced and first.created_at is not None
    store.add(AgentRule("acme", "author", "devin-ai-integration[bot]", "devin"))
    store.add(AgentRule("globex", "branch_prefix", "devin/", "devin"))
    changed, replaced = store.add(AgentRule("acme", "branch_prefix", "devin/", "cognition"))
    assert replaced and changed.agent == "cognition"
    assert [(r.org_id, r.kind, r.value, r.agent) for r in store.list_rules()] == [
        ("acme", "author", "devin-ai-integration[bot]", "devin"), ("acme", "branch_prefix", "devin/", "cognition"),
        ("globex", "branch_prefix", "devin/", "devin")]  # fmt: skip
    assert [r.org_id for r in store.list_rules("globex")] == ["globex"]
    removed = store.remove("acme", "branch_prefix", "devin/")
    assert (removed.kind, removed.value, removed.agent) == ("branch_prefix", "devin/", "cognition")
    with pytest.raises(AgentRuleError, match="org 'acme' has no branch_prefix rule 'devin/'"):
        store.remove("acme", "branch_prefix", "devin/")
    assert len(store.list_rules()) == 2


# -- the rules themselves --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "agent", "problem"),
    [("body_pattern", "(unclosed", "devin", "is not a regular expression"),
     ("branch_prefix", "   ", "devin", "not blank"), ("branch_prefix", "x" * 256, "devin", "1–255 characters"),
     ("author", "bot", "Devin AI", "agent must be"), ("author", "bot", "", "agent must be")],
)  # fmt: skip
def test_a_rule_that_cannot_work_is_refused_naming_why(kind, value, agent, problem):
    with pytest.raises(InvalidRule, match=problem):
        checked_rule("acme", kind, value, agent)


def test_authors_are_kept_in_lower_case_and_other_values_as_given():
    assert checked_rule("acme", "author", "Devin-AI[bot]", "devin").value == "devin-ai[bot]"
    assert checked_rule("acme", "body_pattern", r"Made by \w+", "devin").value == r"Made by \w+"


def test_an_orgs_rules_come_before_the_built_in_ones_and_add_to_them():
    rules = [AgentRule("acme", "branch_prefix", "devin/", "devin"), AgentRule("acme", "author", "bot", "robo"),
             AgentRule("acme", "body_pattern", r"^made by devin", "devin"),
             AgentRule("acme", "branch_prefix", "claude/mine-", "in-house")]  # fmt: skip
    acme = Attribution.of(rules)
    assert acme.branch_prefixes == ("devin/", "claude/mine-", "claude/", "copilot/", "codex/")
    assert acme.agent_mark("", "octocat", "devin/fix-1") == "devin"
    assert acme.agent_mark("", "BOT", "main") == "robo"
    assert acme.agent_mark("Fix.\nMade by Devin", "octocat", "main") == "devin"
    assert acme.agent_mark("", "octocat", "claude/mine-1") == "in-house"  # the org's rule is the more specific
    assert acme.agent_mark("", "octocat", "claude/theirs") == "claude-code"  # the built-in ones still hold
    assert acme.agent_mark("", "Copilot", "main") == "copilot"
    assert BUILT_IN.agent_mark("", "octocat", "devin/fix-1") is None  # another org's rules are not its own
    assert BUILT_IN.branch_prefixes == ("claude/", "copilot/", "codex/")


def test_the_table_lists_an_orgs_rules_then_every_built_in_one():
    table = rule_table([AgentRule("acme", "branch_prefix", "devin/", "devin")]).splitlines()
    assert table[1].split()[:4] == ["acme", "branch_prefix", "devin/", "devin"]
    built_in = sum(len(m.branch_prefixes) + len(m.authors) + len(m.body_patterns) for m in AGENT_MARKS)
    assert table.index("built in, for every org:") == 2 and len(table) == 3 + built_in
    assert rule_table([])[:2] == "no"


def test_the_servers_copy_sees_a_change_within_a_second_and_keeps_its_last_good_copy(tmp_path):
    store = open_agent_rules(Settings(data_dir=tmp_path))
    now = [0.0]
    copy = OrgAttribution(store, clock=lambda: now[0])
    assert copy.of("acme") is BUILT_IN
    store.add(AgentRule("acme", "branch_prefix", "devin/", "devin"))
    assert copy.of("acme") is BUILT_IN  # not yet reloaded: at most once a second
    now[0] += REFRESH_S
    assert copy.of("acme").branch_prefixes[0] == "devin/" and copy.of("globex") is BUILT_IN
    store.close()  # a failing reload keeps what it had
    now[0] += REFRESH_S
    assert copy.of("acme").branch_prefixes[0] == "devin/"


# -- on a real server of each backend ---------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def live(request, tmp_path) -> Iterator[ServerProcess]:
    """A server of each backend whose GitHub owner Codertocat (the examples' pull requests) belongs to org acme."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""
    server = ServerProcess(tmp_path / "data", database_url=url).start()
    server.cli("github", "link", "--org", "acme", "--owner", "Codertocat", "--secret", SECRET)
    yield server
    if server.process and server.process.poll() is None:
        server.stop()


def prs_opened(server: ServerProcess, org: str, day: date) -> int:
    server.wait_projected()
    return server.org_metrics(org, day, day)["agent_prs_opened"]


def until(condition, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "the rule did not take effect in time"
        time.sleep(0.2)
    return value


def test_rules_added_while_the_server_runs_count_prs_of_that_org_only(live):
    day = date(2026, 11, 3)
    events = [{"id": f"{org}-pr-1", "type": "pr.opened", "org_id": org, "occurred_at": f"{day}T10:00:00Z",
               "repo": "acme/api", "pr_number": 1, "head_branch": "devin/fix-login"} for org in ("acme", "globex")]  # fmt: skip
    answer = httpx.post(f"{live.ingest_url}/v1/events", json={"events": events}, headers=live.ingest_headers,
                        timeout=30, trust_env=False)  # fmt: skip
    assert answer.status_code == 200 and answer.json()["accepted"] == 2
    assert prs_opened(live, "acme", day) == 0  # devin/ is no built-in prefix

    added = live.cli("agent-rules", "add", "--org", "acme", "--agent", "devin", "--branch-prefix", "devin/")
    assert "added branch_prefix 'devin/'" in added
    assert until(lambda: prs_opened(live, "acme", day)) == 1  # every PR at once, no rebuild
    assert prs_opened(live, "globex", day) == 0
    assert "devin/" in live.cli("agent-rules", "list", "--org", "acme")

    live.cli("agent-rules", "rm", "--org", "acme", "--branch-prefix", "devin/")
    until(lambda: prs_opened(live, "acme", day) == 0)


def test_a_bot_author_rule_marks_github_deliveries_from_then_on(live):
    payload = pr_example("opened")  # GitHub's example: opened by Codertocat on branch `changes`, no mark
    with httpx.Client(timeout=30, trust_env=False) as client:
        before = deliver(client, live, "pull_request", payload)
        assert before.status_code == 200 and "agent_mark" not in before.json()
        live.cli("agent-rules", "add", "--org", "acme", "--agent", "codertocat-bot", "--author", "codertocat")

        def marked():
            answer = deliver(client, live, "pull_request", payload, delivery=str(uuid.uuid4()))
            assert answer.status_code == 200, answer.text
            return answer.json().get("agent_mark")

        assert until(marked) == "codertocat-bot"
    opened_at = date.fromisoformat(payload["pull_request"]["created_at"][:10])
    assert prs_opened(live, "acme", opened_at) == 1  # the marked delivery made the PR an agent's
