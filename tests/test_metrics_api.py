"""The read API over real HTTP against the independent oracle, on generated data sent out of order with duplicates."""

from __future__ import annotations

import datetime as dt
import random

import httpx
import pytest
from reference_metrics import reference_metrics
from support import close

from agentdash.demo import GeneratorConfig, generate, send

END = dt.date(2026, 3, 31)
CONFIG = GeneratorConfig(days=45, scale=0.25, end=END, org_id="acme", people=40, teams=4)
OTHER_ORG = GeneratorConfig(days=10, scale=0.1, end=END, org_id="globex", people=10, teams=2, seed=7)


@pytest.fixture(scope="module", params=["embedded", "postgres"])
def loaded(request, tmp_path_factory):
    """One server (of each backend) holding both orgs' events, delivered shuffled, with a fifth of them sent twice."""
    from agentdash.testing.server_process import ServerProcess

    database_url = request.getfixturevalue("module_postgres_url") if request.param == "postgres" else ""
    events = generate(CONFIG) + generate(OTHER_ORG)
    rng = random.Random(3)
    delivery = events + rng.sample(events, len(events) // 5)
    rng.shuffle(delivery)
    server = ServerProcess(tmp_path_factory.mktemp("metrics") / "data", database_url=database_url).start()
    try:
        stats = send(f"{server.ingest_url}/v1/events", delivery, batch_size=317, token=server.ingest_key)
        assert stats.rejected == 0
        assert stats.accepted == len({(e["org_id"], e["id"]) for e in events})
        server.wait_projected()
        yield server, events
    finally:
        server.stop()


def get(server, path: str, token: str | None, **params) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{server.url}{path}", params=params, headers=headers, timeout=30)


@pytest.mark.parametrize(
    "date_from, date_to, filters",
    [
        (END - dt.timedelta(days=44), END, {}),
        (END - dt.timedelta(days=6), END, {}),
        (END - dt.timedelta(days=29), END - dt.timedelta(days=10), {"team_id": "t-2"}),
        (END - dt.timedelta(days=44), END, {"user_id": "u-0003"}),
        (END - dt.timedelta(days=44), END, {"model": "m-0"}),
        (END - dt.timedelta(days=20), END, {"repo": "r-1", "team_id": "t-1"}),
        (END - dt.timedelta(days=44), END, {"model": "m-1", "repo": "r-0"}),
        (END - dt.timedelta(days=44), END, {"agent": "a-0"}),
        (END - dt.timedelta(days=20), END, {"agent": "a-1", "team_id": "t-0"}),
        (END, END, {}),
        (dt.date(2020, 1, 1), dt.date(2020, 1, 31), {}),  # nothing in range: zeros and nulls
    ],
)
def test_metrics_equal_the_oracle(loaded, date_from, date_to, filters):
    server, events = loaded
    filters = {key: _existing(events, key, position) for key, position in filters.items()}
    params = {"from": str(date_from), "to": str(date_to), **filters}
    answer = get(server, "/api/v1/orgs/acme/metrics", server.token("acme"), **params)
    assert answer.status_code == 200, answer.text
    expected = reference_metrics(events, "acme", date_from, date_to, **filters)
    if "model" in filters or "agent" in filters:
        assert 0 < expected["runs"] < reference_metrics(events, "acme", date_from, date_to)["runs"]
    close(answer.json(), expected)


def _existing(events, field: str, wanted: str) -> str:
    """The generator's own id for a team, user, model, repo or agent (the test names only a position)."""
    if field in ("model", "repo", "agent"):
        values = sorted(
            {e["attributes"][field] for e in events if e["org_id"] == "acme" and field in e.get("attributes", {})}
        )
    else:
        values = sorted({e[field] for e in events if e["org_id"] == "acme" and e.get(field)})
    index = int(wanted.split("-")[1]) % len(values)
    return values[index]


def test_breakdown_by_team_equals_the_team_filter(loaded):
    server, events = loaded
    token = server.token("acme")
    params = {"from": str(END - dt.timedelta(days=44)), "to": str(END)}
    rows = get(server, "/api/v1/orgs/acme/breakdown/team", token, **params).json()
    teams = {e["team_id"] for e in events if e["org_id"] == "acme"}
    assert {r["key"] for r in rows} == teams
    assert [r["runs"] for r in rows] == sorted((r["runs"] for r in rows), reverse=True)
    for row in rows[:2]:
        expected = reference_metrics(events, "acme", END - dt.timedelta(days=44), END, team_id=row["key"])
        for key in (
            "runs",
            "success_rate",
            "cost_usd",
            "active_users",
            "run_duration_p95_s",
            "handoff_rate",
            "sessions",
        ):
            close(row[key], expected[key], key)


def test_breakdown_by_user_is_limited_and_by_model_counts_every_run(loaded):
    server, events = loaded
    token = server.token("acme")
    params = {"from": str(END - dt.timedelta(days=44)), "to": str(END)}
    top = get(server, "/api/v1/orgs/acme/breakdown/user", token, limit=5, **params).json()
    assert len(top) == 5
    by_model = get(server, "/api/v1/orgs/acme/breakdown/model", token, **params).json()
    total = get(server, "/api/v1/orgs/acme/metrics", token, **params).json()
    assert sum(r["runs"] for r in by_model) == total["runs"]
    assert abs(sum(r["cost_usd"] for r in by_model) - total["cost_usd"]) < 1e-6
    assert get(server, "/api/v1/orgs/acme/breakdown/colour", token, **params).status_code == 400


def test_breakdown_by_model_counts_each_model_call_under_its_model(loaded):
    server, events = loaded
    first = END - dt.timedelta(days=44)
    params = {"from": str(first), "to": str(END)}
    rows = get(server, "/api/v1/orgs/acme/breakdown/model", server.token("acme"), **params).json()
    total = get(server, "/api/v1/orgs/acme/metrics", server.token("acme"), **params).json()
    assert total["cache_read_tokens"] > 0 and total["cache_write_tokens"] > 0  # the demo's runs report calls too
    for key in ("cache_read_tokens", "cache_write_tokens", "input_tokens"):
        assert sum(r[key] for r in rows) == total[key], key
    for row in rows:
        if row["key"] is None:  # pull requests no run links to a model (marked ones): PR figures only, no runs
            assert row["runs"] == 0 and row["agent_prs_opened"] > 0
            continue
        expected = reference_metrics(events, "acme", first, END, model=row["key"])
        for key in ("runs", "cost_usd", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
            close(row[key], expected[key], f"{row['key']}.{key}")


def test_breakdown_by_agent_equals_the_agent_filter_and_adds_up(loaded):
    server, events = loaded
    token = server.token("acme")
    first = END - dt.timedelta(days=44)
    params = {"from": str(first), "to": str(END)}
    rows = get(server, "/api/v1/orgs/acme/breakdown/agent", token, **params).json()
    total = get(server, "/api/v1/orgs/acme/metrics", token, **params).json()
    for key in ("runs", "runs_failed", "input_tokens", "agent_prs_opened", "agent_prs_merged"):
        assert sum(r[key] for r in rows) == total[key], key
    assert abs(sum(r["cost_usd"] for r in rows) - total["cost_usd"]) < 1e-6
    agents = {r["key"] for r in rows} - {None}
    assert len(agents) >= 3  # the demo's agents
    for row in rows:
        if row["key"] is None:
            continue
        expected = reference_metrics(events, "acme", first, END, agent=row["key"])
        for key in ("runs", "success_rate", "cost_usd", "active_users", "run_duration_p95_s", "handoff_rate",
                    "agent_prs_opened", "agent_prs_merged", "failures_by_category"):  # fmt: skip
            close(row[key], expected[key], f"{row['key']}.{key}")
    one = min(agents)
    csv_rows = get(server, "/api/v1/orgs/acme/breakdown/agent.csv", token, **params).text.splitlines()
    assert csv_rows[0].startswith("key,") and any(line.startswith(f"{one},") for line in csv_rows[1:])
    series = get(server, "/api/v1/orgs/acme/metrics.csv", token, agent=one, **params).text.splitlines()
    filtered = get(server, "/api/v1/orgs/acme/metrics", token, agent=one, **params).json()
    assert filtered["agent"] == one and len(series) == 1 + len(filtered["series"])
    assert get(server, "/api/v1/orgs/acme/breakdown/team", token, agent=one, **params).json()[0]["runs"] <= max(
        r["runs"] for r in rows if r["key"] == one
    )


def test_no_request_reaches_another_orgs_figures(loaded):
    server, _ = loaded
    acme = server.token("acme")
    for path in ("/api/v1/orgs/globex/metrics", "/api/v1/orgs/globex/breakdown/team", "/api/v1/orgs/nobody/metrics"):
        answer = get(server, path, acme)
        assert answer.status_code == 404
        assert set(answer.json()) == {"error"}
    assert (
        get(
            server,
            "/api/v1/orgs/globex/metrics",
            server.token("globex"),
            **{"from": str(END - dt.timedelta(days=9)), "to": str(END)},
        ).json()["runs"]
        > 0
    )


def test_requests_without_a_valid_token_are_refused(loaded):
    server, _ = loaded
    assert get(server, "/api/v1/orgs/acme/metrics", None).status_code == 401
    assert get(server, "/api/v1/orgs/acme/metrics", "not-a-jwt").status_code == 401
    forged = server.token("acme")[:-4] + "AAAA"
    assert get(server, "/api/v1/orgs/acme/metrics", forged).status_code == 401
    assert "error" in get(server, "/api/v1/orgs/acme/metrics", None).json()


def test_members_see_only_themselves_and_managers_only_their_teams(loaded):
    server, events = loaded
    user = _existing(events, "user_id", "u-0001")
    team = _existing(events, "team_id", "t-1")
    other_team = _existing(events, "team_id", "t-2")
    params = {"from": str(END - dt.timedelta(days=44)), "to": str(END)}
    member = server.token("acme", role="member", user=user)
    mine = get(server, "/api/v1/orgs/acme/metrics", member, **params).json()
    close(mine["runs"], reference_metrics(events, "acme", END - dt.timedelta(days=44), END, user_id=user)["runs"])
    assert get(server, "/api/v1/orgs/acme/metrics", member, user_id="someone-else", **params).status_code == 403
    manager = server.token("acme", role="manager", teams=team)
    assert get(server, "/api/v1/orgs/acme/metrics", manager, team_id=team, **params).status_code == 200
    assert get(server, "/api/v1/orgs/acme/metrics", manager, team_id=other_team, **params).status_code == 403


def test_a_manager_of_several_teams_sees_exactly_those_teams_together(loaded):
    server, events = loaded
    first, third, other = (_existing(events, "team_id", t) for t in ("t-0", "t-2", "t-1"))
    manager = server.token("acme", role="manager", teams=f"{first},{third}")
    date_from = END - dt.timedelta(days=44)
    params = {"from": str(date_from), "to": str(END)}
    both = get(server, "/api/v1/orgs/acme/metrics", manager, **params).json()
    expected = reference_metrics(events, "acme", date_from, END, teams=(first, third))
    close(both, expected | {"model": None, "repo": None, "agent": None})
    assert both["runs"] < reference_metrics(events, "acme", date_from, END)["runs"]
    rows = get(server, "/api/v1/orgs/acme/breakdown/team", manager, **params).json()
    assert {r["key"] for r in rows} == {first, third}
    insiders = {e["user_id"] for e in events if e["org_id"] == "acme" and e.get("team_id") in (first, third)}
    strangers = {e["user_id"] for e in events if e["org_id"] == "acme" and e.get("team_id") == other} - insiders
    users = {r["key"] for r in get(server, "/api/v1/orgs/acme/breakdown/user", manager, **params).json()}
    assert users and users <= insiders
    # Asking for someone outside their teams shows none of their figures.
    assert strangers
    assert get(server, "/api/v1/orgs/acme/metrics", manager, user_id=min(strangers), **params).json()["runs"] == 0


def test_bad_dates_are_clear_errors(loaded):
    server, _ = loaded
    token = server.token("acme")
    reversed_range = get(server, "/api/v1/orgs/acme/metrics", token, **{"from": "2026-03-10", "to": "2026-03-01"})
    assert reversed_range.status_code == 400 and "from" in reversed_range.json()["error"]
    bad_date = get(server, "/api/v1/orgs/acme/metrics", token, **{"from": "yesterday"})
    assert bad_date.status_code == 400 and "date_from: Invalid RFC3339 encoded date" in bad_date.json()["error"]
