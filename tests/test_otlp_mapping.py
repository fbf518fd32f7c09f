"""SPEC §6's who-and-where rules, on one recorded Claude Code export with attributes added or changed."""

from __future__ import annotations

import copy
import time

import pytest

from agentdash.events import MAX_COST_USD
from agentdash.sources import log_records, translate
from tests.otlp_captures import capture, message, with_resource

NOW_US = time.time_ns() // 1000


def events(export: dict, orgs=frozenset({"acme"})):
    return translate(log_records(message(export)), orgs, NOW_US).events


@pytest.fixture
def export() -> dict:
    return next(e for e in capture("claude", "one_prompt") if e["signal"] == "logs")


def test_user_is_the_first_of_email_account_uuid_and_id(export):
    assert {e.user_id for e in events(export)} == {next(iter(_record_values(export, "user.id")))}
    assert {e.user_id for e in events(with_resource(export, **{"user.account_uuid": "acc-1"}))} == {"acc-1"}
    both = with_resource(export, **{"user.account_uuid": "acc-1", "user.email": "ada@example.com"})
    assert {e.user_id for e in events(both)} == {"ada@example.com"}


def test_record_attributes_win_over_the_resource(export):
    # Claude Code copies team.id onto every record; a resource team.id does not overrule it.
    record_team = next(iter(_record_values(export, "team.id")))
    assert {e.team_id for e in events(with_resource(export, **{"team.id": "other"}))} == {record_team}


def test_repo_branch_and_agent_come_from_vcs_and_service_attributes(export):
    found = events(with_resource(export, **{"vcs.repository.name": "acme/api", "vcs.ref.head.name": "feat/x"}))
    assert {(e.repo, e.branch) for e in found} == {("acme/api", "feat/x")}
    assert all('"agent":"claude-code"' in (e.attributes or "") for e in found)
    assert {e.agent for e in found} == {"claude-code"}  # the agent column: service.name


def test_agentdash_org_id_picks_one_of_the_key_s_orgs(export):
    named = with_resource(export, **{"agentdash.org_id": "globex"})
    assert {e.org_id for e in events(named, frozenset({"acme", "globex"}))} == {"globex"}
    assert events(named, frozenset({"acme"})) == []  # outside the key's orgs: rejected, counted
    assert events(export, frozenset({"acme", "globex"})) == []  # several orgs and none named


@pytest.mark.parametrize("cost", [MAX_COST_USD * 2, MAX_COST_USD + 1, "Infinity"])
def test_an_api_request_cost_above_the_limit_rejects_the_record_with_its_reason(export, cost):
    # SPEC §6: no api_request cost is dropped, so a cost the log cannot take is no cost of 0 but a rejected record.
    found = translate(log_records(message(_with_cost(export, cost))), frozenset({"acme"}), NOW_US)
    assert found.rejected == 1
    assert found.first_reason == "claude_code.api_request: cost_usd must be a number <= 1e14 USD"
    assert "usage" not in {e.type for e in found.events}
    assert {"message.sent", "run.started", "run.finished"} <= {e.type for e in found.events}  # the rest maps
    tally = next(t for key, t in found.tallies.items() if key.record == "claude_code.api_request")
    assert (tally.records, tally.mapped, tally.rejected) == (1, 0, 1)
    assert tally.reasons == {"cost_usd must be a number <= 1e14 USD": 1}


def test_an_api_request_cost_of_exactly_the_limit_is_a_usage_of_that_cost(export):
    found = translate(log_records(message(_with_cost(export, MAX_COST_USD))), frozenset({"acme"}), NOW_US)
    assert found.rejected == 0
    assert [e.cost_usd for e in found.events if e.type == "usage"] == [1e14]


def _with_cost(export: dict, cost: float | str) -> dict:
    """The export with its api_request records' cost_usd set to `cost` (a double; "Infinity" as OTLP JSON spells it)."""
    changed = copy.deepcopy(export)
    for rl in changed["body"]["resourceLogs"]:
        for sl in rl["scopeLogs"]:
            for record in sl["logRecords"]:
                for attribute in record["attributes"]:
                    if attribute["key"] == "cost_usd":
                        attribute["value"] = {"doubleValue": cost}
    return changed


def _record_values(export: dict, key: str) -> set[str]:
    return {a["value"]["stringValue"] for rl in export["body"]["resourceLogs"] for sl in rl["scopeLogs"]
            for r in sl["logRecords"] for a in r["attributes"] if a["key"] == key}  # fmt: skip
