"""The alerts endpoints (client port, SPEC §8): rules (list, create, edit, delete), their states, the history (JSON and
CSV) and what fires now, scoped by role (alerts.access)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Literal

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, FromPath

from agentdash.alerts import InvalidRule, manage
from agentdash.alerts.access import firing_for, visible_history, visible_rules
from agentdash.alerts.views import HistoryView, RuleView, firing_now, history_csv, history_view, rule_view
from agentdash.storage import AlertStore, Unavailable
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


# forbid_unknown_fields refuses other fields; Litestar's schema would not say so, and a client would believe it may
# send them.
RuleBody = Annotated[RuleInput, Body(media_type=RequestEncodingType.JSON, schema_extra={"additionalProperties": False})]


class FiringView(msgspec.Struct):
    rule_id: str
    rule_name: str
    text: str
    since: str


class Refusal(msgspec.Struct):
    """Every refusal's body (web/errors.py): the reason in words."""

    error: str


def _refusals(*statuses: int) -> dict[int, ResponseSpec]:
    # Without these the schema offers Litestar's own 400 shape, which errors.py never sends, and no 401/403/404.
    return {status: ResponseSpec(Refusal, generate_examples=False, description=HTTPStatus(status).phrase)
            for status in statuses}  # fmt: skip


# 400 a bad parameter or rule, 401 no or a bad token, 403 a member or another team's rule, 404 another org or no such
# rule, 413 a body too large, 429 too many bad tokens, 503 the store or the identity provider unreachable.
REFUSALS = _refusals(400, 401, 403, 404, 413, 429, 503)


def _store(state: State) -> AlertStore:
    if state.alert_store is None:
        raise Unavailable("this server keeps no alert rules")
    return state.alert_store


def _json_only(request: Request) -> None:
    # A cross-site form can post text/plain with the dashboard's cookie; application/json needs a preflight we refuse.
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise InvalidRule("send the rule as Content-Type: application/json")


def _draft(data: RuleInput) -> manage.RuleDraft:
    return manage.RuleDraft(**msgspec.structs.asdict(data))


@get(f"{PREFIX}/rules", sync_to_thread=True, responses=REFUSALS,
     summary="The alert rules the caller may manage, with their state")  # fmt: skip
def list_rules(request: Request, state: State, org_id: FromPath[str]) -> list[RuleView]:
    identity = identify(request)
    # The caller first: another org's id (it may hold a NUL, which PostgreSQL refuses) never reaches the store.
    visible_rules(identity, org_id, [])
    store = _store(state)
    rules = visible_rules(identity, org_id, store.list_rules(org_id))
    firing = store.firing()
    return [rule_view(r, firing) for r in rules]


@post(f"{PREFIX}/rules", sync_to_thread=True, responses=REFUSALS,
      summary="Create a rule (org admins; managers for their own teams)")  # fmt: skip
def create_rule(request: Request, state: State, org_id: FromPath[str], data: RuleBody) -> RuleView:
    _json_only(request)
    return rule_view(manage.create_rule(_store(state), identify(request), org_id, _draft(data)), {})


@put(f"{PREFIX}/rules/{{rule_id:str}}", sync_to_thread=True, responses=REFUSALS,
     summary="Edit a rule (webhook_url left out: kept)")  # fmt: skip
def edit_rule(request: Request, state: State, org_id: FromPath[str], rule_id: FromPath[str],
              data: RuleBody) -> RuleView:  # fmt: skip
    _json_only(request)
    store = _store(state)
    return rule_view(manage.edit_rule(store, identify(request), org_id, rule_id, _draft(data)), store.firing())


@delete(f"{PREFIX}/rules/{{rule_id:str}}", sync_to_thread=True, responses=REFUSALS,
        summary="Delete a rule (its history stays)")  # fmt: skip
def delete_rule(request: Request, state: State, org_id: FromPath[str], rule_id: FromPath[str]) -> None:
    manage.delete_rule(_store(state), identify(request), org_id, rule_id)


@get(f"{PREFIX}/history", sync_to_thread=True, responses=REFUSALS,
     summary="Changes of state, newest first, with their notification")  # fmt: skip
def get_history(request: Request, state: State, org_id: FromPath[str]) -> list[HistoryView]:
    return _history(request, state, org_id)


def _history(request: Request, state: State, org_id: str) -> list[HistoryView]:
    identity = identify(request)
    visible_history(identity, org_id, [])  # the caller first, as in list_rules
    events = _store(state).history(org_id)
    return [history_view(e) for e in visible_history(identity, org_id, events)]


# media_type: without it the schema would document the CSV as JSON
@get(f"{PREFIX}/history.csv", sync_to_thread=True, media_type=CSV_MEDIA_TYPE, responses=REFUSALS,
     summary="The alert history as CSV")  # fmt: skip
def get_history_csv(request: Request, state: State, org_id: FromPath[str]) -> Response[str]:
    rows = _history(request, state, org_id)
    return Response(history_csv(rows, spreadsheet_safe), media_type=CSV_MEDIA_TYPE,
                    headers={"Content-Disposition": 'attachment; filename="agentdash-alert-history.csv"'})  # fmt: skip


@get(f"{PREFIX}/firing", sync_to_thread=True, responses=REFUSALS,
     summary="The alerts firing now that the caller's banner shows")  # fmt: skip
def get_firing(request: Request, state: State, org_id: FromPath[str]) -> list[FiringView]:
    identity = identify(request)
    if identity.org_id != org_id:
        visible_rules(identity, org_id, [])
    events = firing_for(identity, firing_now(_store(state), org_id))
    return [FiringView(e.rule_id, e.rule_name, e.text, e.at.isoformat()) for e in events]


ALERT_ROUTES = [list_rules, create_rule, edit_rule, delete_rule, get_history, get_history_csv, get_firing]
