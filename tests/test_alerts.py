"""Budgets and alerts (SPEC §8, issue 12): the rule store on both backends, rule checks, and the CLI working on the
same data as a running server, including the test notification to a real webhook receiver."""

from __future__ import annotations

import dataclasses
import json
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest
from support import BACKENDS, submit
from webhook_receiver import Receiver

from agentdash.alerts import InvalidRule, checked_rule, new_rule_id, rule_table, shown_webhook
from agentdash.alerts.budgets import budget_progress
from agentdash.alerts.evaluate import Evaluator
from agentdash.alerts.notify import Notifier, next_attempt_s
from agentdash.config import Settings
from agentdash.demo.alerts import add_demo_rules
from agentdash.demo.generator import GeneratorConfig, generate_days, incidents
from agentdash.projector import Projector
from agentdash.storage import AlertEvent, AlertRule, AlertRuleError, AlertStore, Observation, open_alerts, open_storage
from agentdash.testing import free_port

SLACK = "https://hooks.slack.com/services/T000/B000/a-secret-path"


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path) -> Iterator[AlertStore]:
    """The alert store of each backend: <data-dir>/alerts.sqlite, or the database's tables."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""
    opened = open_alerts(Settings(data_dir=tmp_path, database_url=url))
    yield opened
    opened.close()


def budget(org: str = "acme", usd: float = 100.0, per: str = "month", **fields) -> AlertRule:
    return checked_rule(AlertRule(new_rule_id(), org, fields.pop("name", "budget"), "budget", usd, per, SLACK,
                                  **fields))  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


# -- the store, one contract for every backend -----------------------------------------------------------------------


def test_rules_are_added_listed_edited_and_removed(store):
    team = store.add(budget(name="platform monthly", team_id="platform"))
    org = store.add(budget(usd=20, per="day", name="org daily"))
    rate = store.add(checked_rule(AlertRule(new_rule_id(), "acme", "reliability", "success_rate", 0.8, "7d", SLACK,
                                            min_runs=50)))  # fmt: skip
    other = store.add(budget(org="globex", name="globex"))
    assert team.created_at is not None and team.created_at == team.updated_at
    assert [r.name for r in store.list_rules("acme")] == ["org daily", "platform monthly", "reliability"]
    assert [r.id for r in store.list_rules()] == [org.id, team.id, rate.id, other.id]
    assert store.get(rate.id) == rate and store.get("nope") is None
    assert (rate.kind, rate.threshold, rate.period, rate.min_runs, rate.team_id) == (
        "success_rate",
        0.8,
        "7d",
        50,
        None,
    )
    assert SLACK not in repr(store.list_rules())  # a webhook URL can be a credential

    edited = store.update(dataclasses.replace(team, threshold=250.0, team_id=None, user_id="ana"))
    assert (edited.threshold, edited.team_id, edited.user_id, edited.created_at) == (
        250.0,
        None,
        "ana",
        team.created_at,
    )
    assert edited.updated_at >= team.updated_at and store.get(team.id) == edited
    with pytest.raises(AlertRuleError, match="org 'globex' has no alert rule"):
        store.update(dataclasses.replace(team, org_id="globex"))  # a rule never moves to another org

    assert store.remove(org.id).name == "org daily"
    with pytest.raises(AlertRuleError, match=f"no alert rule '{org.id}'"):
        store.remove(org.id)
    assert [r.name for r in store.list_rules("acme")] == ["platform monthly", "reliability"]


def test_the_embedded_file_is_private(tmp_path):
    open_alerts(Settings(data_dir=tmp_path)).close()
    assert stat.S_IMODE((tmp_path / "alerts.sqlite").stat().st_mode) == 0o600


# -- rule checks -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "problem"),
    [({"name": " "}, "name must be 1 to 128"), ({"org_id": ""}, "org id"), ({"kind": "vibes"}, "kind must be one of"),
     ({"threshold": 0.0}, "above 0 USD"), ({"threshold": float("nan")}, "must be a number"),
     ({"period": "week"}, "per month or per day"), ({"team_id": "a", "user_id": "b"}, "at most one of team and user"),
     ({"webhook_url": "ftp://x/y"}, "http:// or https://"), ({"webhook_url": "not a url"}, "http:// or https://"),
     ({"kind": "success_rate", "threshold": 1.5, "min_runs": 5}, "fraction above 0 and at most 1"),
     ({"kind": "success_rate", "threshold": 0.8}, "at least 1 run"),
     ({"kind": "failed_runs", "threshold": -1.0}, "0 or more")],
)  # fmt: skip
def test_a_rule_that_cannot_work_is_refused_saying_why(changes, problem):
    with pytest.raises(InvalidRule, match=problem):
        checked_rule(dataclasses.replace(budget(), **changes))


def test_each_kind_gets_its_own_period_and_the_list_hides_webhook_paths():
    failed = checked_rule(dataclasses.replace(budget(), kind="failed_runs", threshold=10.0, min_runs=3, team_id=""))
    assert (failed.period, failed.min_runs, failed.team_id) == ("day", 0, None)
    assert shown_webhook(SLACK) == "https://hooks.slack.com/…"
    table = rule_table([budget(name="monthly", team_id="platform"), failed])
    assert table.splitlines()[0].split() == ["ID", "ORG", "NAME", "FOR", "WHEN", "WEBHOOK"]
    assert (
        "team platform" in table and "cost this month above $100.00" in table and "failed runs today above 10" in table
    )
    assert "a-secret-path" not in table


# -- the CLI, while a server runs on the same data -------------------------------------------------------------------


def cli(server, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*server.command, *args, "--data-dir", str(server.data_dir), *server._backend()],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert not check or done.returncode == 0, done.stderr
    return done


def test_the_cli_adds_lists_tests_and_removes_rules_while_a_server_runs(server, receiver):
    made = cli(server, "alerts", "add", "--org", "acme", "--name", "platform budget", "--budget-usd", "100",
               "--per", "month", "--team", "platform", "--webhook", receiver.url)  # fmt: skip
    rule_id = made.stdout.strip()
    assert len(rule_id) == 12 and "added alert rule 'platform budget' for team platform" in made.stderr
    rate_id = cli(server, "alerts", "add", "--org", "acme", "--name", "reliability", "--success-rate-below", "0.8",
                  "--min-runs", "50", "--webhook", receiver.url).stdout.strip()  # fmt: skip
    listed = cli(server, "alerts", "list").stdout
    assert rule_id in listed and rate_id in listed and "7-day success rate below 80% (at least 50 runs)" in listed
    assert "/hook" not in listed and "http://127.0.0.1/…" in listed

    tested = cli(server, "alerts", "test", rule_id)
    assert "delivered a test notification for 'platform budget' (HTTP 200)" in tested.stdout
    (body,) = receiver.bodies
    assert body["state"] == "test" and "platform budget" in body["text"] and body["rule"]["team_id"] == "platform"

    receiver.codes = [500]
    refused = cli(server, "alerts", "test", rule_id, check=False)
    assert refused.returncode == 1 and "HTTP 500" in refused.stderr

    assert "removed alert rule" in cli(server, "alerts", "rm", rule_id).stdout
    gone = cli(server, "alerts", "rm", rule_id, check=False)
    assert gone.returncode == 1 and f"no alert rule '{rule_id}'" in gone.stderr
    assert rule_id not in cli(server, "alerts", "list", "--org", "acme").stdout


@pytest.mark.parametrize(
    ("args", "problem"),
    [(["--budget-usd", "100"], "needs --per month or --per day"),
     (["--budget-usd", "100", "--per", "month", "--success-rate-below", "0.5"], "exactly one of"),
     (["--success-rate-below", "0.8"], "at least 1 run"),
     (["--budget-usd", "100", "--per", "day", "--team", "a", "--user", "b"], "at most one of team and user")],
)  # fmt: skip
def test_the_cli_refuses_rules_that_cannot_work(tmp_path, args, problem):
    done = subprocess.run([sys.executable, "-m", "agentdash", "alerts", "add", "--org", "acme", "--name", "x", *args,
                           "--webhook", "https://example.com/h", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and problem in done.stderr


def test_the_cli_edits_only_what_is_given_while_a_server_runs_and_the_server_evaluates_the_edit(server, receiver):
    rule_id = cli(server, "alerts", "add", "--org", "acme", "--name", "org budget", "--budget-usd", "1000000",
                  "--per", "month", "--webhook", receiver.url).stdout.strip()  # fmt: skip
    events = [
        run("r1", datetime.now(UTC), cost=2.5, team="platform"),
        run("r2", datetime.now(UTC), cost=4.0, team="web"),
    ]
    assert httpx.post(f"{server.ingest_url}/v1/events", json={"events": events},
                      headers=server.ingest_headers).json()["accepted"] == 2  # fmt: skip
    admin = server.token("acme", "org_admin")
    rules = f"{server.url}/api/v1/orgs/acme/alerts/rules"

    def listed() -> dict:
        (rule,) = httpx.get(rules, headers={"Authorization": f"Bearer {admin}"}, timeout=30).json()
        return rule

    edited = cli(server, "alerts", "edit", rule_id, "--budget-usd", "2", "--team", "platform")
    assert f"edited alert rule {rule_id} 'org budget' for team platform: cost this month above $2.00" in edited.stdout
    rule = listed()
    assert (rule["name"], rule["threshold"], rule["period"], rule["team_id"], rule["webhook"]) == (
        "org budget", 2.0, "month", "platform", "http://127.0.0.1/…")  # the rest kept  # fmt: skip
    # The running server sees the edit: platform's $2.50 is over the new budget, and fires once.
    history = f"{server.url}/api/v1/orgs/acme/alerts/history"
    fired = wait_for(lambda: httpx.get(history, headers={"Authorization": f"Bearer {admin}"}, timeout=30).json(),
                     what="the edited rule firing")  # fmt: skip
    assert [(h["rule_name"], h["state"], h["value"], h["threshold"]) for h in fired] == [
        ("org budget", "firing", 2.5, 2.0)]  # fmt: skip

    cli(
        server,
        "alerts",
        "edit",
        rule_id,
        "--name",
        "platform daily",
        "--per",
        "day",
        "--webhook",
        "https://x.example/h",
    )
    rule = listed()
    assert (rule["name"], rule["period"], rule["threshold"], rule["team_id"], rule["webhook"]) == (
        "platform daily", "day", 2.0, "platform", "https://x.example/…")  # fmt: skip
    cli(server, "alerts", "edit", rule_id, "--team", "")
    assert listed()["scope"] == "org acme"  # the whole org again
    cli(server, "alerts", "edit", rule_id, "--success-rate-below", "0.9", "--min-runs", "5", "--user", "ana")
    rule = listed()
    assert (rule["kind"], rule["threshold"], rule["min_runs"], rule["period"], rule["user_id"]) == (
        "success_rate", 0.9, 5, "7d", "ana")  # fmt: skip

    for args, code, problem in [
        (["--budget-usd", "0"], 2, "a rule that becomes a budget needs its period"),
        (["--budget-usd", "0", "--per", "day"], 2, "above 0 USD"),
        (["--min-runs", "0"], 2, "at least 1 run"),
        (["--webhook", "ftp://x/y"], 2, "http:// or https://"),
        (["--team", "a", "--user", "b"], 2, "at most one of team and user"),
        (["--budget-usd", "3", "--failed-runs-above", "4"], 2, "at most one of"),
        ([], 2, "nothing to change"),
    ]:  # fmt: skip
        refused = cli(server, "alerts", "edit", rule_id, *args, check=False)
        assert (refused.returncode, problem in refused.stderr) == (code, True), refused.stderr
    assert listed()["kind"] == "success_rate"  # a refused edit changes nothing
    missing = cli(server, "alerts", "edit", "nope", "--name", "x", check=False)
    assert missing.returncode == 1 and "no alert rule 'nope'" in missing.stderr


# -- evaluation after folds, on both backends ------------------------------------------------------------------------


class Clock:
    """The evaluator's injected clock: a settable UTC moment."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def run(run_id: str, at: datetime, status: str = "succeeded", cost: float = 0.0, team: str = "platform",
        user: str = "ana", org: str = "acme") -> dict:  # fmt: skip
    event = {"id": f"{run_id}-f", "type": "run.finished", "org_id": org, "user_id": user, "session_id": f"s-{run_id}",
             "run_id": run_id, "team_id": team, "occurred_at": at.isoformat(), "status": status, "cost_usd": cost}  # fmt: skip
    if status == "failed":
        event["failure_category"] = "model_error"
    return event


@pytest.fixture
def evaluation(backend, tmp_path):
    """A storage and alert store on one backend, folded by the projector, whose catch-up evaluates the rules."""
    storage = backend.open()
    alerts = open_alerts(Settings(data_dir=backend.data_dir, database_url=backend.database_url))
    clock = Clock(datetime(2026, 3, 31, 12, tzinfo=UTC))
    evaluator = Evaluator(storage, alerts, clock)
    changes: list[AlertEvent] = []
    projector = Projector(storage, after_fold=lambda: changes.extend(evaluator.run()))
    yield SimpleNamespace(storage=storage, alerts=alerts, clock=clock, projector=projector, changes=changes)
    alerts.close()
    storage.close()


def test_a_threshold_fires_once_when_crossed_and_resolves_once_when_back(evaluation):
    e = evaluation
    now = e.clock.now
    rule = e.alerts.add(checked_rule(AlertRule(new_rule_id(), "acme", "reliability", "success_rate", 0.8, "7d",
                                               SLACK, min_runs=4)))  # fmt: skip
    submit(e.storage, [run(f"ok{i}", now - timedelta(days=i)) for i in range(3)])
    e.projector.catch_up()
    assert e.changes == [] and e.alerts.firing() == {}  # 100 %, and too few runs anyway
    submit(e.storage, [run("bad0", now, "failed"), run("old", now - timedelta(days=7), "failed")])  # 8 days: out
    e.projector.catch_up()
    (fired,) = e.changes
    assert (fired.rule_id, fired.state, fired.value, fired.period_key) == (rule.id, "firing", 0.75, "2026-03-31")
    assert "75.0%" in fired.text and fired.delivery == "pending" and e.alerts.firing() == {rule.id: True}
    for _ in range(3):  # nothing new, and new data that leaves it below: no second entry
        e.projector.catch_up()
    submit(e.storage, [run("bad1", now, "failed", org="globex")])  # another org's failure
    e.projector.catch_up()
    assert len(e.changes) == 1

    submit(e.storage, [run("ok3", now), run("ok4", now)])  # 5 of 6: 83 %
    e.projector.catch_up()
    assert [c.state for c in e.changes] == ["firing", "resolved"] and e.changes[1].value == pytest.approx(5 / 6)
    submit(e.storage, [run("ok5", now)])
    e.projector.catch_up()
    assert [h.state for h in e.alerts.history("acme")] == ["resolved", "firing"]  # newest first, each once
    assert e.alerts.history("globex") == [] and e.alerts.checkpoint()[0] == e.storage.fold_state().seq


def test_a_budget_fires_within_its_scope_and_a_new_month_resets_it(evaluation):
    e = evaluation
    now = e.clock.now  # 2026-03-31 12:00 UTC
    team = e.alerts.add(budget(usd=10, per="month", team_id="platform", name="platform"))
    person = e.alerts.add(budget(usd=10, per="month", user_id="bo", name="bo"))
    daily = e.alerts.add(budget(usd=5, per="day", name="org daily"))
    submit(e.storage, [run("r1", now.replace(day=1), cost=6.0), run("r2", now.replace(day=2), cost=3.0),
                       run("r3", now.replace(month=2, day=28), cost=50.0),  # February's: not this month's
                       run("r4", now, cost=4.0, team="mobile", user="bo")])  # fmt: skip
    e.projector.catch_up()
    assert e.changes == []  # platform 9 of 10, bo 4, the org 4 today
    submit(e.storage, [run("r5", now, cost=1.5)])
    e.projector.catch_up()
    assert {(c.rule_id, c.state, c.value, c.period_key) for c in e.changes} == {
        (team.id, "firing", 10.5, "2026-03"), (daily.id, "firing", 5.5, "2026-03-31")}  # fmt: skip
    assert "platform spent $10.50 this month (2026-03), over its $10.00 budget" in e.changes[0].text + e.changes[1].text

    e.clock.now = datetime(2026, 4, 1, 0, 0, 5, tzinfo=UTC)  # no new event: the new day and month are enough
    e.projector.catch_up()
    assert {(c.rule_id, c.state, c.value) for c in e.changes[2:]} == {(team.id, "resolved", 0.0),
                                                                      (daily.id, "resolved", 0.0)}  # fmt: skip
    e.projector.catch_up()
    assert len(e.changes) == 4 and person.id not in e.alerts.firing()
    submit(e.storage, [run("r6", e.clock.now, cost=11.0, team="mobile", user="bo")])
    e.projector.catch_up()
    assert {(c.rule_id, c.state, c.period_key) for c in e.changes[4:]} == {
        (person.id, "firing", "2026-04"), (daily.id, "firing", "2026-04-01")}  # fmt: skip


def test_a_failed_evaluation_records_nothing_and_the_next_one_records_the_change_once(evaluation, monkeypatch):
    e = evaluation
    rule = e.alerts.add(dataclasses.replace(budget(usd=1, per="day"), kind="failed_runs", threshold=1.0))
    rule = e.alerts.update(checked_rule(rule))
    submit(e.storage, [run(f"bad{i}", e.clock.now, "failed") for i in range(2)])
    real = e.alerts.record

    def crash_before_commit(observations, seq, now_us):  # the process dies before the evaluation commits
        raise RuntimeError("killed")

    monkeypatch.setattr(e.alerts, "record", crash_before_commit)
    with pytest.raises(RuntimeError):
        e.projector.catch_up()
    assert e.storage.fold_state().seq == 2 and e.alerts.checkpoint() is None  # folded, not evaluated
    monkeypatch.setattr(e.alerts, "record", real)
    restarted = Evaluator(e.storage, e.alerts, e.clock)  # a new process: nothing in memory
    (fired,) = restarted.run()
    assert (fired.rule_id, fired.state, fired.value) == (rule.id, "firing", 2.0)
    assert Evaluator(e.storage, e.alerts, e.clock).run() == [] and len(e.alerts.history()) == 1


# -- notifications ---------------------------------------------------------------------------------------------------


def firing_entry(store: AlertStore, url: str, at: datetime) -> AlertEvent:
    rule = store.add(dataclasses.replace(budget(), webhook_url=url))
    (event,) = store.record([Observation(rule, True, 123.0, "2026-03", "over budget")], 1, int(at.timestamp() * 1e6))
    return event


def test_a_webhook_that_fails_twice_gets_the_notification_on_the_third_attempt(store):
    receiver = Receiver(codes=(500, 503))
    try:
        event = firing_entry(store, receiver.url, datetime.now(UTC))
        notifier = Notifier(store, retry_initial_s=0.2)
        assert notifier.deliver_due() == 1 and notifier.deliver_due() == 0  # the retry is 0.2 s away
        (entry,) = store.history()
        assert (entry.delivery, entry.attempts, entry.last_status) == ("pending", 1, 500)
        deadline = time.monotonic() + 10
        while store.history()[0].delivery == "pending" and time.monotonic() < deadline:
            notifier.deliver_due()
            time.sleep(0.05)
        (entry,) = store.history()
        assert (entry.delivery, entry.attempts, entry.last_status, entry.last_error) == ("delivered", 3, 200, "")
        assert [b["code"] for b in receiver.bodies] == [500, 503, 200]
        body = receiver.bodies[-1]
        assert body["text"] == "over budget" and body["state"] == "firing"
        assert body["alert"]["id"] == event.id and body["alert"]["value"] == 123.0 and body["alert"]["kind"] == "budget"
        assert notifier.deliver_due() == 0 and len(receiver.bodies) == 3
    finally:
        receiver.close()


def test_back_off_doubles_to_an_hour_and_a_day_later_the_notification_has_failed(store):
    assert [next_attempt_s(n, 10) for n in (1, 2, 3, 4)] == [10, 20, 40, 80] and next_attempt_s(20, 10) == 3600
    receiver = Receiver(codes=(500,) * 10)
    try:
        firing_entry(store, receiver.url, datetime.now(UTC) - timedelta(hours=23, minutes=59, seconds=50))
        notifier = Notifier(store, retry_initial_s=30)
        notifier.deliver_due()
        (entry,) = store.history()
        assert (entry.delivery, entry.attempts, entry.last_status) == ("failed", 1, 500)  # the next try: past a day
        assert "HTTP 500" in entry.last_error and notifier.deliver_due() == 0
    finally:
        receiver.close()


# -- the server: evaluation after its folds, notification on its own thread, kill -9 -------------------------------


def wait_for(condition, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_kill_9_before_the_notification_then_restart_delivers_it_exactly_once(server_factory):
    hook_port = free_port()  # nobody listens yet: the first attempts are refused
    server = server_factory(None, "--alert-retry-initial", "0.3")
    rule_id = cli(server, "alerts", "add", "--org", "acme", "--name", "daily", "--budget-usd", "1", "--per", "day",
                  "--webhook", f"http://127.0.0.1:{hook_port}/hook").stdout.strip()  # fmt: skip
    now = datetime.now(UTC)
    events = [run("r1", now, cost=0.75), run("r2", now, cost=0.5)]
    answer = httpx.post(f"{server.ingest_url}/v1/events", json={"events": events}, headers=server.ingest_headers)
    assert answer.json()["accepted"] == 2
    history = open_alerts(Settings(data_dir=server.data_dir))  # the same file, beside the running server
    try:
        (entry,) = wait_for(lambda: [h for h in history.history() if h.attempts >= 1], what="a failed attempt")
        assert (entry.rule_id, entry.state, entry.value, entry.delivery) == (rule_id, "firing", 1.25, "pending")
        assert "ConnectError" in entry.last_error
        server.kill()  # SIGKILL: the change is recorded, its notification not delivered
        (entry,) = history.history()  # with every attempt made before the kill

        receiver = Receiver(codes=(500, 500), port=hook_port)
        try:
            server_factory(server.data_dir, "--alert-retry-initial", "0.3")  # re-evaluates: nothing changed
            (done,) = wait_for(lambda: [h for h in history.history() if h.delivery == "delivered"], what="delivery")
            time.sleep(2)  # a few more folds, evaluations and notifier passes: nothing repeats
            assert [b["code"] for b in receiver.bodies] == [500, 500, 200]
            assert {b["alert"]["id"] for b in receiver.bodies} == {entry.id}
            assert "spent $1.25 today" in receiver.bodies[-1]["text"]
            (final,) = history.history()
            assert (final.id, final.attempts, final.last_status) == (entry.id, entry.attempts + 3, 200)
        finally:
            receiver.close()
    finally:
        history.close()


# -- the read API: rules, states and history, scoped by role, over real HTTP -----------------------------------------


def test_rules_and_history_over_http_by_role(server):
    admin, member = server.token("acme", "org_admin", "root"), server.token("acme", "member", "ana")
    manager = server.token("acme", "manager", "mo", teams="platform")
    api = f"{server.url}/api/v1/orgs/acme/alerts"

    def call(method: str, path: str, token: str, body: dict | None = None, **kwargs) -> httpx.Response:
        return httpx.request(method, f"{api}{path}", json=body, headers={"Authorization": f"Bearer {token}"},
                             timeout=30, **kwargs)  # fmt: skip

    org_budget = {"name": "org daily", "kind": "budget", "threshold": 1.0, "period": "day",
                  "webhook_url": "https://hooks.example.com/services/secret-path"}  # fmt: skip
    made = call("POST", "/rules", admin, org_budget)
    assert made.status_code == 201, made.text
    org_rule = made.json()
    assert (org_rule["scope"], org_rule["state"], org_rule["webhook"]) == (
        "org acme",
        "ok",
        "https://hooks.example.com/…",
    )
    team_rule = call("POST", "/rules", manager, {**org_budget, "name": "platform", "team_id": "platform"}).json()
    mobile = call("POST", "/rules", admin, {**org_budget, "name": "mobile", "team_id": "mobile", "threshold": 1e6})
    assert mobile.status_code == 201

    for token, body, status, problem in [
        (manager, org_budget, 403, "own teams only"),  # org-wide: an admin's
        (manager, {**org_budget, "team_id": "mobile"}, 403, "own teams only"),
        (manager, {**org_budget, "user_id": "ana"}, 403, "own teams only"),
        (member, {**org_budget, "user_id": "ana"}, 403, "org admins"),
        (admin, {**org_budget, "threshold": -1}, 400, "above 0 USD"),
        (admin, {**org_budget, "webhook_url": None}, 400, "needs a webhook_url"),
        (admin, {**org_budget, "kind": "vibes"}, 400, "kind"),
    ]:  # fmt: skip
        refused = call("POST", "/rules", token, body)
        assert (refused.status_code, problem in refused.json()["error"]) == (status, True), refused.text
    form = httpx.post(f"{api}/rules", content=json.dumps(org_budget), timeout=30,
                      headers={"Authorization": f"Bearer {admin}", "Content-Type": "text/plain"})  # fmt: skip
    assert form.status_code == 400 and "application/json" in form.json()["error"]

    assert [r["name"] for r in call("GET", "/rules", admin).json()] == ["mobile", "org daily", "platform"]
    assert [r["name"] for r in call("GET", "/rules", manager).json()] == ["platform"]
    assert call("GET", "/rules", member).status_code == 403
    assert call("GET", "/rules", server.token("globex", "org_admin")).status_code == 404  # another org's
    assert httpx.get(f"{server.url}/api/v1/orgs/globex/alerts/rules", timeout=30,
                     headers={"Authorization": f"Bearer {admin}"}).status_code == 404  # fmt: skip

    mobile_id = mobile.json()["id"]
    assert call("PUT", f"/rules/{mobile_id}", manager, {**org_budget, "team_id": "platform"}).status_code == 403
    assert call("DELETE", f"/rules/{mobile_id}", manager).status_code == 403
    moved = call("PUT", f"/rules/{team_rule['id']}", manager, {**org_budget, "team_id": "mobile"})
    assert moved.status_code == 403  # not out of their teams either
    edited = call("PUT", f"/rules/{team_rule['id']}", manager,
                  {"name": "platform", "kind": "budget", "threshold": 1.25, "period": "month", "team_id": "platform"})  # fmt: skip
    assert edited.status_code == 200, edited.text
    assert (edited.json()["threshold"], edited.json()["period"], edited.json()["webhook"]) == (
        1.25, "month", "https://hooks.example.com/…")  # the webhook kept  # fmt: skip
    assert call("PUT", "/rules/nope", admin, org_budget).status_code == 404
    assert call("DELETE", f"/rules/{mobile_id}", admin).status_code == 204
    assert call("DELETE", f"/rules/{mobile_id}", admin).status_code == 404

    # The data crosses both lines: each fires once, seen by role.
    now = datetime.now(UTC)
    events = [run("r1", now, cost=1.5, team="platform", user="ana"), run("r2", now, cost=0.75, team="web", user="bo")]
    assert httpx.post(f"{server.ingest_url}/v1/events", json={"events": events},
                      headers=server.ingest_headers).json()["accepted"] == 2  # fmt: skip
    history = wait_for(lambda: (h := call("GET", "/history", admin).json()) and len(h) == 2 and h, what="two alerts")
    assert {(h["rule_name"], h["state"], h["value"]) for h in history} == {("org daily", "firing", 2.25),
                                                                          ("platform", "firing", 1.5)}  # fmt: skip
    assert [h["rule_name"] for h in call("GET", "/history", manager).json()] == ["platform"]
    assert call("GET", "/history", member).status_code == 403
    assert {r["name"]: r["state"] for r in call("GET", "/rules", admin).json()} == {"org daily": "firing",
                                                                                   "platform": "firing"}  # fmt: skip
    assert {f["rule_name"] for f in call("GET", "/firing", admin).json()} == {"org daily", "platform"}
    assert [f["rule_name"] for f in call("GET", "/firing", manager).json()] == ["platform"]
    assert call("GET", "/firing", member).json() == []  # no rule is about ana alone
    table = call("GET", "/history.csv", admin)
    assert table.headers["content-type"].startswith("text/csv")
    assert table.text.splitlines()[0].startswith("at,rule_name,state,value") and len(table.text.splitlines()) == 3

    schema = httpx.get(f"{server.url}/api/schema/openapi.json", timeout=30).json()["paths"]
    assert {"/api/v1/orgs/{org_id}/alerts/rules", "/api/v1/orgs/{org_id}/alerts/rules/{rule_id}",
            "/api/v1/orgs/{org_id}/alerts/history", "/api/v1/orgs/{org_id}/alerts/history.csv"} <= set(schema)  # fmt: skip


# -- the demo --------------------------------------------------------------------------------------------------------


def test_the_demo_has_a_budget_near_its_limit_and_the_bad_model_week_fired(tmp_path):
    now = datetime(2026, 6, 20, 12, tzinfo=UTC)
    config = GeneratorConfig(days=40, org_id="demo", seed=42, end=now.date())
    settings = Settings(data_dir=tmp_path)
    storage, store = open_storage(settings), open_alerts(settings)
    try:
        for day in generate_days(config):
            submit(storage, day)
        Projector(storage).catch_up()
        monthly, reliability, daily = add_demo_rules(storage, store, config, now)
        (progress,) = [p for p in budget_progress(storage, [monthly], now)]
        assert 0.85 < progress.share < 1 and progress.forecast_share > 1  # near the limit, on course to pass it
        first, last = incidents(config).bad_model_days
        history = store.history("demo")[::-1]
        assert [(h.rule_name, h.state) for h in history] == [("reliability", "firing"), ("reliability", "resolved")]
        assert first <= history[0].at.date() <= last < history[1].at.date()
        assert Evaluator(storage, store, lambda: now).run() == []  # the server's evaluator takes over: nothing new
    finally:
        store.close()
        storage.close()
