"""Stateful Schemathesis over the alert rules of a real server: create, edit, list and delete chained by the created id.

Each scenario is a few linked calls; besides the stateless checks (no 5xx, every 4xx says why) every answer must match
the schema, and a deleted rule must be gone: editing or deleting it again answers 404 and the list no longer shows it.
"""

from __future__ import annotations

import copy
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.engine.link_calibration import LinkCalibrationState
from schemathesis.generation.feedback import NO_FEEDBACK
from support import BACKENDS
from test_fuzz_http import check_answer

from agentdash.testing import ServerProcess

pytestmark = pytest.mark.slow

ORG = "acme"
RULES = "/api/v1/orgs/{org_id}/alerts/rules"
RULE = RULES + "/{rule_id}"
ALERTS = "/api/v1/orgs/{org_id}/alerts"
# A real http URL on the discard port: a rule that fires notifies nobody, and creating one is not refused for its URL.
HOOK = "http://127.0.0.1:9/agentdash-fuzz"

# Bounded for two busy cores (50 scenarios of at most 10 calls); AGENTDASH_FUZZ_EXAMPLES=500 for a long hunt.
SCENARIOS = int(os.environ.get("AGENTDASH_FUZZ_EXAMPLES", "50"))
# No shrinking (as schemathesis's own runs): each replay calls the server again, whose rules have moved on, so a
# failure would take minutes to shrink and might not shrink at all; the failing scenario is reported as found.
STATEFUL_SETTINGS = settings(
    max_examples=SCENARIOS, stateful_step_count=10, deadline=None, derandomize=True, database=None,
    phases=[Phase.generate], suppress_health_check=list(HealthCheck),
)  # fmt: skip

# (source method, source path, status) -> {link name: (target method, target path, parameters)}: every link keeps the
# org, and the rule's id comes from the created or edited rule, or from the path of the delete.
SAME_ORG = {"org_id": "$request.path.org_id"}
LINKS = {
    ("post", RULES, "201"): {
        "EditCreated": ("put", RULE, {**SAME_ORG, "rule_id": "$response.body#/id"}),
        "DeleteCreated": ("delete", RULE, {**SAME_ORG, "rule_id": "$response.body#/id"}),
        "ListAfterCreate": ("get", RULES, SAME_ORG),
        "FiringAfterCreate": ("get", f"{ALERTS}/firing", SAME_ORG),
    },
    ("put", RULE, "200"): {
        "EditAgain": ("put", RULE, {**SAME_ORG, "rule_id": "$response.body#/id"}),
        "DeleteEdited": ("delete", RULE, {**SAME_ORG, "rule_id": "$response.body#/id"}),
        "ListAfterEdit": ("get", RULES, SAME_ORG),
    },
    ("delete", RULE, "204"): {
        "EditDeleted": ("put", RULE, {**SAME_ORG, "rule_id": "$request.path.rule_id"}),
        "DeleteAgain": ("delete", RULE, {**SAME_ORG, "rule_id": "$request.path.rule_id"}),
        "ListAfterDelete": ("get", RULES, SAME_ORG),
        "HistoryAfterDelete": ("get", f"{ALERTS}/history", SAME_ORG),
        "HistoryCsvAfterDelete": ("get", f"{ALERTS}/history.csv", SAME_ORG),
    },
}


def linked(raw: dict) -> dict:
    """The served schema with LINKS added to its responses (Litestar writes none)."""
    raw = copy.deepcopy(raw)
    for (method, path, status), links in LINKS.items():
        response = raw["paths"][path][method]["responses"][status]
        response["links"] = {
            name: {"operationId": raw["paths"][target][target_method]["operationId"], "parameters": parameters}
            for name, (target_method, target, parameters) in links.items()
        }
    return raw


class FollowEveryLink(LinkCalibrationState):
    """Every link is followed. Otherwise schemathesis swaps a linked id for a made-up one on a truly random coin, so
    two runs differ and hypothesis, finding a replay drawing differently, fails the run as flaky."""

    def use_probability(self, transition_id: str) -> float:
        return 1.0

    def is_calibrated(self, transition_id: str) -> bool:
        return True


@dataclass
class Tally:
    """What the whole run did, to show the chains happened: (method, path, status) -> calls, and revisits of deleted
    rules."""

    answers: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    after_delete: int = 0


@dataclass
class Ledger:
    """One scenario's rules: its checks depend on nothing earlier scenarios did, so hypothesis can replay one."""

    tally: Tally
    live: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)

    def check(self, case, response) -> None:
        """A deleted rule answers 404 to an edit or a delete; the list shows every live rule and no deleted one."""
        status, rule_id = response.status_code, (case.path_parameters or {}).get("rule_id")
        self.tally.answers[case.method, case.operation.path, status] += 1
        if case.operation.path == RULE and rule_id in self.deleted:
            assert status == 404, f"{case.method} of deleted rule {rule_id}: {status} {response.text[:300]}"
            self.tally.after_delete += 1
        elif case.method == "POST" and status == 201:
            self.live.add(response.json()["id"])
        elif case.method == "DELETE" and status == 204:
            self.live.discard(rule_id)
            self.deleted.add(rule_id)
        elif case.method == "GET" and case.operation.path == RULES and status == 200:
            shown = {rule["id"] for rule in response.json()}
            assert not shown & self.deleted, f"deleted rules still listed: {shown & self.deleted}"
            assert self.live <= shown, f"live rules not listed: {self.live - shown}"


def alert_rules_machine(server: ServerProcess, tally: Tally):
    """A state machine over the alert operations only, as the org's admin, following just LINKS."""
    raw = httpx.get(f"{server.url}/api/schema/openapi.json", timeout=30, trust_env=False).json()
    config = SchemathesisConfig.from_dict({
        "base-url": server.url,
        "headers": {"Authorization": f"Bearer {server.token(ORG)}"},
        # No inferred links: the chains are the ones above. Schema-valid input only: hypothesis draws the 10 % of
        # invalid steps far more often than that, so chains would rarely start; the stateless runs send invalid input.
        "phases": {"stateful": {"inference": {"algorithms": []}, "generation": {"mode": "positive"}}},
        # The schema cannot say which thresholds and periods each kind takes: a 400 for a schema-valid rule is right.
        "checks": {"positive_data_acceptance": {"enabled": False}},
    })  # fmt: skip
    schema = schemathesis.openapi.from_dict(linked(raw), config=config).include(path_regex="/alerts/")

    machine = schema.build_state_machine(feedback=NO_FEEDBACK, link_calibration=FollowEveryLink())

    class AlertRules(machine):  # type: ignore[misc,valid-type]
        def setup(self) -> None:
            super().setup()
            self.ledger = Ledger(tally)  # schemathesis calls this at the start of each scenario

        def before_call(self, case) -> None:
            # Another org's calls are only 404s (the stateless runs cover those); the chains need the token's own.
            case.path_parameters = {**(case.path_parameters or {}), "org_id": ORG}
            # The schema cannot say a webhook is an http(s) URL with a host, and without one almost every create is
            # refused before the chain starts; the stateless runs fuzz the field itself. An edit may leave it out.
            if case.method in ("POST", "PUT") and isinstance(case.body, dict):
                webhook_url = case.body.get("webhook_url")
                if isinstance(webhook_url, str) or (case.method == "POST" and webhook_url is None):
                    case.body["webhook_url"] = HOOK

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            check_answer(case, response)
            super().validate_response(response, case, additional_checks, **kwargs)  # the schema's checks
            self.ledger.check(case, response)

    # Only a create starts a chain. Schemathesis trusts no root here (it takes org_id, team_id and user_id for
    # references to resources nothing creates), so it would also start scenarios with an edit or a delete of a
    # made-up id: 404s that feed no later step (the stateless runs send those) and take two thirds of the budget.
    for name in AlertRules.root_rules:
        if not name.startswith("RANDOM__POST_"):
            setattr(AlertRules, name, None)
    AlertRules._root_labels = frozenset({f"POST {RULES}"})  # else it waits for the hidden roots' turn and stops
    return AlertRules


@pytest.fixture(scope="module", params=BACKENDS)
def served(request, tmp_path_factory) -> Iterator[ServerProcess]:
    """One server per backend: PostgreSQL refuses some text SQLite keeps (a NUL), so each answers on its own."""
    url = request.getfixturevalue("module_postgres_url") if request.param == "postgres" else ""
    server = ServerProcess(tmp_path_factory.mktemp("stateful") / "data", database_url=url).start()
    yield server
    server.stop()


def test_alert_rules_stateful(served):
    tally = Tally()
    alert_rules_machine(served, tally).run(settings=STATEFUL_SETTINGS)
    assert "Traceback" not in served.log(), served.log()[-3000:]
    # The chains happened: rules were created, edited, listed and deleted, and deleted ones were asked for again.
    done = {(method, status) for method, _, status in tally.answers}
    assert {("POST", 201), ("PUT", 200), ("GET", 200), ("DELETE", 204)} <= done, tally.answers
    assert tally.after_delete > 0, tally.answers


RULE_BODY = {"name": "edge", "kind": "failed_runs", "threshold": 1, "webhook_url": HOOK}
ORG_PATH = f"/api/v1/orgs/{ORG}/alerts"


@pytest.mark.parametrize(("method", "path", "body", "token", "status"), [
    ("POST", f"{ORG_PATH}/rules", {**RULE_BODY, "kind": "success_rate", "threshold": 0.5, "min_runs": 2**31}, True, 400),
    ("POST", f"{ORG_PATH}/rules", {**RULE_BODY, "name": "a\0b"}, True, 400),
    ("POST", f"{ORG_PATH}/rules", {**RULE_BODY, "team_id": "t\0"}, True, 400),
    ("PUT", f"{ORG_PATH}/rules/a%00b", RULE_BODY, True, 404),
    ("DELETE", f"{ORG_PATH}/rules/a%00b", None, True, 404),
    ("GET", "/api/v1/orgs/a%00b/alerts/rules", None, True, 404),
    ("GET", "/api/v1/orgs/a%00b/alerts/history", None, False, 401),
], ids=["min-runs-over-int4", "nul-name", "nul-team", "nul-id-edit", "nul-id-delete", "nul-org-list", "nul-org-history"])  # fmt: skip
def test_edges_the_default_budget_seldom_reaches(served, method, path, body, token, status):
    """Found by long runs (on PostgreSQL they were 500s): refused with a reason, before the store is asked."""
    headers = {"Authorization": f"Bearer {served.token(ORG)}"} if token else {}
    response = httpx.request(method, f"{served.url}{path}", json=body, headers=headers, timeout=30, trust_env=False)
    assert response.status_code == status, response.text[:300]
    assert response.json()["error"].strip()
