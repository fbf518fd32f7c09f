"""The alerts endpoints (client port, SPEC §8): rules (list, create, edit, delete), their states, the history (JSON and
CSV) and what fires now, scoped by role (alerts.access)."""

from __future__ import annotations

import dataclasses
from typing import Literal

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath

from agentdash.alerts import InvalidRule, checked_rule, new_rule_id
from agentdash.alerts.access import check_may_manage, firing_for, visible_history, visible_rules
from agentdash.alerts.views import HistoryView, RuleView, firing_now, history_csv, history_view, rule_view
from agentdash.auth import Identity, NotVisible
from agentdash.storage import AlertRule, AlertStore, Unavailable
from agentdash.web.csv_export import CSV_MEDIA_TYPE, spreadsheet_safe
from agentdash.web.dependencies import identify

PREFIX = "/api/v1/orgs/{org_id:str}/alerts"


class RuleInput(msgspec.Struct, forbid_unknown_fields=True):
    """A rule as created or edited. Editing may leave out webhook_url to keep the rule's."""

    name: str
    kind: Literal["budget", "success_rate", "failed_runs"]
    threshold: float
    period: Literal["month", "day"] | None = None
    min_runs: int = 0
    team_id: str | None = None
    user_id: str | None = None
    webhook_url: str | None = None


class FiringView(msgspec.Struct):
    rule_id: str
    rule_name: str
    text: str
    since: str


def _store(state: State) -> AlertStore:
    if state.alert_store is None:
        raise Unavailable("this server keeps no alert rules")
    return state.alert_store


def _json_only(request: Request) -> None:
    # A cross-site form can post text/plain with the dashboard's cookie; application/json needs a preflight we refuse.
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise InvalidRule("send the rule as Content-Type: application/json")


def _rule(org_id: str, data: RuleInput, rule_id: str, webhook_url: str) -> AlertRule:
    return checked_rule(AlertRule(rule_id, org_id, data.name, data.kind, data.threshold, data.period or "day",
                                  webhook_url, data.min_runs, data.team_id, data.user_id))  # fmt: skip


@get(f"{PREFIX}/rules", sync_to_thread=True, summary="The alert rules the caller may manage, with their state")
def list_rules(request: Request, state: State, org_id: FromPath[str]) -> list[RuleView]:
    store = _store(state)
    rules = visible_rules(identify(request), org_id, store.list_rules(org_id))
    firing = store.firing()
    return [rule_view(r, firing) for r in rules]


@post(f"{PREFIX}/rules", sync_to_thread=True, summary="Create a rule (org admins; managers for their own teams)")
def create_rule(request: Request, state: State, org_id: FromPath[str], data: RuleInput) -> RuleView:
    _json_only(request)
    if not data.webhook_url:
        raise InvalidRule("a new rule needs a webhook_url")
    rule = _rule(org_id, data, new_rule_id(), data.webhook_url)
    check_may_manage(identify(request), org_id, rule)
    return rule_view(_store(state).add(rule), {})


@put(f"{PREFIX}/rules/{{rule_id:str}}", sync_to_thread=True, summary="Edit a rule (webhook_url left out: kept)")
def edit_rule(request: Request, state: State, org_id: FromPath[str], rule_id: FromPath[str],
              data: RuleInput) -> RuleView:  # fmt: skip
    _json_only(request)
    identity, store = identify(request), _store(state)
    old = _existing(store, identity, org_id, rule_id)
    new = _rule(org_id, data, rule_id, data.webhook_url or old.webhook_url)
    check_may_manage(identity, org_id, new)  # a manager cannot move a rule out of their teams either
    return rule_view(store.update(dataclasses.replace(new, created_at=old.created_at)), store.firing())


@delete(f"{PREFIX}/rules/{{rule_id:str}}", sync_to_thread=True, summary="Delete a rule (its history stays)")
def delete_rule(request: Request, state: State, org_id: FromPath[str], rule_id: FromPath[str]) -> None:
    identity, store = identify(request), _store(state)
    _existing(store, identity, org_id, rule_id)
    store.remove(rule_id)


def _existing(store: AlertStore, identity: Identity, org_id: str, rule_id: str) -> AlertRule:
    rule = store.get(rule_id)
    if rule is None or rule.org_id != org_id:
        visible_rules(identity, org_id, [])  # another org: 404 for it; a member: 403, as for any rule
        raise NotVisible(f"no alert rule {rule_id!r}")
    check_may_manage(identity, org_id, rule)
    return rule


@get(f"{PREFIX}/history", sync_to_thread=True, summary="Changes of state, newest first, with their notification")
def get_history(request: Request, state: State, org_id: FromPath[str]) -> list[HistoryView]:
    return _history(request, state, org_id)


def _history(request: Request, state: State, org_id: str) -> list[HistoryView]:
    events = _store(state).history(org_id)
    return [history_view(e) for e in visible_history(identify(request), org_id, events)]


@get(f"{PREFIX}/history.csv", sync_to_thread=True, summary="The alert history as CSV")
def get_history_csv(request: Request, state: State, org_id: FromPath[str]) -> Response:
    rows = _history(request, state, org_id)
    return Response(history_csv(rows, spreadsheet_safe), media_type=CSV_MEDIA_TYPE,
                    headers={"Content-Disposition": 'attachment; filename="agentdash-alert-history.csv"'})  # fmt: skip


@get(f"{PREFIX}/firing", sync_to_thread=True, summary="The alerts firing now that the caller's banner shows")
def get_firing(request: Request, state: State, org_id: FromPath[str]) -> list[FiringView]:
    identity = identify(request)
    if identity.org_id != org_id:
        visible_rules(identity, org_id, [])
    events = firing_for(identity, firing_now(_store(state), org_id))
    return [FiringView(e.rule_id, e.rule_name, e.text, e.at.isoformat()) for e in events]


ALERT_ROUTES = [list_rules, create_rule, edit_rule, delete_rule, get_history, get_history_csv, get_firing]
