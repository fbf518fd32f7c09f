"""Filters in the URL, the change badge and the freshness line: page logic without a browser."""

from __future__ import annotations

from datetime import date

import pytest

from agentdash.auth import Forbidden, Identity
from agentdash.metrics import MetricsQuery
from agentdash.ui.cards import QUESTIONS, change, change_badge
from agentdash.ui.filters import DEFAULT_DAYS, MAX_DAYS, Filters
from agentdash.ui.freshness import freshness_text
from agentdash.ui.layout import NAV
from agentdash.ui.people import PEOPLE, TEAMS
from agentdash.ui.questions import OWN_PAGES
from agentdash.ui.view import scope

TODAY = date(2026, 3, 31)


def parse(**params) -> Filters:
    return Filters.from_params(params, today=TODAY)


def test_a_preset_ends_today_and_round_trips():
    f = parse(days="7", team_id="web")
    assert (f.date_from, f.date_to, f.days, f.team_id, f.user_id) == (date(2026, 3, 25), TODAY, 7, "web", None)
    assert f.to_query() == "days=7&team_id=web"
    assert Filters.from_params(dict(p.split("=") for p in f.to_query().split("&")), today=TODAY) == f


def test_a_custom_range_round_trips():
    f = parse(**{"from": "2026-01-01", "to": "2026-01-31", "user_id": "u1"})
    assert (f.date_from, f.date_to, f.days) == (date(2026, 1, 1), date(2026, 1, 31), None)
    assert f.to_query() == "from=2026-01-01&to=2026-01-31&user_id=u1"


@pytest.mark.parametrize("params", [
    {}, {"days": "abc"}, {"days": "8"}, {"days": "-7"}, {"from": "2026-02-01"}, {"from": "nope", "to": "2026-01-01"},
    {"from": "2026-02-01", "to": "2026-01-01"}, {"from": "2020-01-01", "to": "2026-01-01"}, {"team_id": "  "},
    {"team_id": "x" * 500}, {"user_id": "a\nb"},
])  # fmt: skip
def test_bad_values_fall_back_to_defaults(params):
    f = parse(**params)
    assert f.days in (DEFAULT_DAYS, 7 if params.get("days") == "7" else DEFAULT_DAYS)
    assert (f.date_to - f.date_from).days < MAX_DAYS
    assert f.team_id is None and f.user_id is None


def test_to_query_applies_changes_without_touching_the_filters():
    f = parse(days="30", team_id="web", user_id="u1")
    assert f.to_query(days=90, user_id=None) == "days=90&team_id=web"
    assert f.to_query(days=None) == "from=2026-03-02&to=2026-03-31&team_id=web&user_id=u1"
    assert f.days == 30


def test_metrics_query_and_previous_period():
    f = parse(days="7", team_id="web")
    assert f.metrics_query("acme") == MetricsQuery("acme", date(2026, 3, 25), TODAY, "web", None)
    previous = f.previous_period()
    assert (previous.date_from, previous.date_to, previous.days, previous.team_id) == (
        date(2026, 3, 18),
        date(2026, 3, 24),
        None,
        "web",
    )
    custom = parse(**{"from": "2026-03-01", "to": "2026-03-31"}).previous_period()
    assert (custom.date_from, custom.date_to) == (date(2026, 1, 29), date(2026, 2, 28))


def test_scope_uses_the_read_api_rule():
    f = parse(days="30")
    admin, member = Identity("a", "acme", "org_admin"), Identity("m", "acme", "member")
    manager = Identity("boss", "acme", "manager", ("ops", "web"))
    assert scope(admin, f).team_id is None
    assert scope(member, f).user_id == "m"
    with pytest.raises(Forbidden, match="own data"):
        scope(member, parse(user_id="other"))
    assert scope(admin, f).teams is None
    assert (scope(manager, f).team_id, scope(manager, f).teams) == (None, ("ops", "web"))  # all their teams at once
    assert (scope(manager, parse(team_id="web")).team_id, scope(manager, parse(team_id="web")).teams) == (
        "web",
        ("ops", "web"),
    )
    with pytest.raises(Forbidden, match="not one of yours"):
        scope(manager, parse(team_id="sales"))
    assert scope(Identity("a", "other", "org_admin"), f).org_id == "other"  # the org always comes from the token
    assert scope(Identity("boss", "acme", "manager", ()), f).teams == ()  # a manager of no team sees nothing


def test_model_and_repo_live_in_the_url_and_reach_the_query():
    f = parse(days="7", model="opus", repo="web-app", team_id="ops")
    assert f.to_query() == "days=7&team_id=ops&model=opus&repo=web-app"
    assert Filters.from_params(dict(p.split("=") for p in f.to_query().split("&")), today=TODAY) == f
    query = f.metrics_query("acme")
    assert (query.model, query.repo, query.team_id) == ("opus", "web-app", "ops")
    assert (f.previous_period().model, f.previous_period().repo) == ("opus", "web-app")
    member = scope(Identity("m", "acme", "member"), parse(model="opus"))
    assert (member.user_id, member.model) == ("m", "opus")


def test_the_agent_lives_in_the_url_and_reaches_the_query_and_the_csv_links():
    from types import SimpleNamespace

    from agentdash.ui.questions import csv_url

    f = parse(days="7", agent="claude-code", model="opus")
    assert f.to_query() == "days=7&model=opus&agent=claude-code"
    assert Filters.from_params(dict(p.split("=") for p in f.to_query().split("&")), today=TODAY) == f
    assert (f.metrics_query("acme").agent, f.previous_period().agent) == ("claude-code", "claude-code")
    member = scope(Identity("m", "acme", "member"), f)
    assert (member.user_id, member.agent) == ("m", "claude-code")
    view = SimpleNamespace(query=f.metrics_query("acme"))
    assert csv_url(view, "breakdown/agent").endswith("breakdown/agent.csv?from=2026-03-25&to=2026-03-31&model=opus"
                                                      "&agent=claude-code")  # fmt: skip
    assert parse(agent="x" * 500).agent is None


def test_change_and_its_colour():
    assert change(None, 1.0) is None and change(1.0, None) is None and change(1.0, 0) is None
    assert change(0.9, 0.8) == pytest.approx(0.125)
    assert change_badge(None, +1) == ("no previous data", "grey")
    assert change_badge(0.125, +1) == ("▲ 12.5%", "positive")
    assert change_badge(0.125, -1) == ("▲ 12.5%", "negative")
    assert change_badge(-0.5, -1) == ("▼ 50.0%", "positive")
    assert change_badge(0.2, 0)[1] == "grey"
    assert change_badge(0.0, +1) == ("■ 0.0%", "grey")


def test_every_question_has_a_page_in_the_navigation():
    # The overview, the six questions of SPEC §3 in order and §7's, then the people and team lists.
    assert [path for path, _, _ in NAV] == ["/", *(q.path for q in QUESTIONS), "/people", "/teams"]
    assert [q.path for q in QUESTIONS][-2:] == ["/iteration", "/shipping"] and len(QUESTIONS) == 7


def test_linked_breakdown_rows_open_the_people_and_team_pages():
    assert {s.dimension: (s.path, s.field) for s in (PEOPLE, TEAMS)} == OWN_PAGES


def test_freshness_text_is_utc():
    assert freshness_text(None, 3) == "No data folded yet · 3 events behind"
    assert freshness_text(1_767_225_600_000_000, 0) == "Data as of 2026-01-01 00:00:00 UTC · 0 events behind"


def test_the_weekly_toggle_round_trips_and_is_carried_by_changes():
    f = parse(days="30", weekly="1")
    assert f.weekly and f.to_query() == "days=30&weekly=1"
    assert f.to_query(team_id="web") == "days=30&team_id=web&weekly=1"
    assert f.to_query(weekly=False) == "days=30"
    assert not parse(days="30", weekly="yes").weekly
    custom = parse(**{"from": "2026-01-01", "to": "2026-01-31", "weekly": "1"})
    assert custom.weekly and custom.previous_period().weekly


def test_every_question_has_a_page_and_csv_links_carry_the_scoped_filters():
    from types import SimpleNamespace

    from agentdash.ui.questions import PAGES, csv_url

    assert {q.path for q in QUESTIONS} == set(PAGES)
    assert all(page.charts >= 2 and page.columns for page in PAGES.values())
    view = SimpleNamespace(query=MetricsQuery("ac me", date(2026, 3, 1), date(2026, 3, 31), "web", None))
    assert csv_url(view, "metrics") == "/api/v1/orgs/ac%20me/metrics.csv?from=2026-03-01&to=2026-03-31&team_id=web"
    assert csv_url(view, "breakdown/user").startswith("/api/v1/orgs/ac%20me/breakdown/user.csv?")


def test_breakdown_table_rows_sort_by_raw_values_and_show_text_for_people():
    from agentdash.metrics import BreakdownRow
    from agentdash.ui.questions import table_rows

    rows = table_rows(
        [BreakdownRow(key=None, runs=1200, cost_usd=3.4, success_rate=None)], ("runs", "cost_usd", "success_rate")
    )
    assert rows == [{"id": 0, "key": "(none)", "runs": 1200, "runs__text": "1.2k", "cost_usd": 3.4, "cost_usd__text": "$3.40",
                     "success_rate": None, "success_rate__text": "—"}]  # fmt: skip


def test_a_page_address_keeps_what_its_path_pins():
    from agentdash.ui.view import View

    person = View(
        Identity("a", "acme", "org_admin"), parse(days="30", user_id="u 1", team_id="ops"), None, "/people/{user_id}"
    )
    assert person.path == "/people/u%201"
    assert person.url(weekly=True) == "/people/u%201?days=30&team_id=ops&weekly=1"  # the person stays in the path
    assert person.url(user_id="u2") == "/people/u2?days=30&team_id=ops"  # another person: their page
    assert person.url(user_id=None) == "/people?days=30&team_id=ops"  # nobody: back to the list
    team = View(Identity("a", "acme", "org_admin"), parse(days="7", team_id="eu/ops"), None, "/teams/{team_id:path}")
    assert (team.path, team.url(team_id=None)) == ("/teams/eu%2Fops", "/teams?days=7")
    cost = View(Identity("a", "acme", "org_admin"), parse(days="7"), None, "/cost")
    assert (cost.path, cost.url(model="opus")) == ("/cost", "/cost?days=7&model=opus")
