"""The ingest API end to end (SPEC §1): a real `agentdash serve` subprocess spoken to over HTTP."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from agentdash.testing import ServerProcess

pytestmark = pytest.mark.slow

BATCH = 500  # events per batch in the durability tests
RUNS_PER_BATCH = BATCH // 4  # each run: session.started, run.queued, run.started, run.finished
STATUSES = ("succeeded", "failed", "cancelled")
CATEGORIES = ("tool_error", "model_error", "timeout", "infra_error", "other")
MiB = 1024 * 1024


# -- helpers ------------------------------------------------------------------------------------


# Every org the tests here write (one per test); each server's ingest key covers exactly these.
ORGS = ("partial", "huge", "nul", "a", "b", "many", "big", "fat", "status", "dur", "fly", "lazy", "deep", "ctype",
        "rich")  # fmt: skip


@pytest.fixture
def ingest_orgs() -> tuple[str, ...]:
    return ORGS


def new_org(name: str) -> str:
    assert name in ORGS, f"add {name!r} to ORGS: the servers' ingest key covers only those"
    return name


def ev(org: str, type_: str, at: datetime, session: str = "s1", run: str | None = None, user: str = "u1",
       id_: str | None = None, **extra) -> dict:  # fmt: skip
    event = {"id": id_ or uuid.uuid4().hex, "type": type_, "org_id": org, "user_id": user,
             "session_id": session, "occurred_at": at.isoformat()}  # fmt: skip
    if run is not None:
        event["run_id"] = run
    event.update(extra)
    return event


def run_batch(org: str, rng: random.Random, runs: int = RUNS_PER_BATCH) -> list[dict]:
    """`runs` complete runs, each in its own session, with random ids, all in the last few hours."""
    now = datetime.now(UTC)
    events = []
    for _ in range(runs):
        run, session, user = f"r-{uuid.uuid4().hex}", f"s-{uuid.uuid4().hex}", f"u{rng.randrange(25)}"
        t0 = now - timedelta(seconds=rng.uniform(600, 6 * 3600))
        status = rng.choice(STATUSES)
        finish = {"status": status, "input_tokens": rng.randrange(10_000), "output_tokens": rng.randrange(2_000),
                  "cost_usd": rng.randrange(1, 500) / 1000}  # fmt: skip
        if status == "failed":
            finish["failure_category"] = rng.choice(CATEGORIES)
        events += [
            ev(org, "session.started", t0, session, user=user),
            ev(org, "run.queued", t0 + timedelta(seconds=1), session, run, user),
            ev(org, "run.started", t0 + timedelta(seconds=3), session, run, user),
            ev(org, "run.finished", t0 + timedelta(seconds=63), session, run, user, **finish),
        ]
    return events


def post(server: ServerProcess, body, client: httpx.Client | None = None, timeout: float = 30) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    send = client.post if client else httpx.post
    return send(f"{server.ingest_url}/v1/events", content=content,
                headers={"content-type": "application/json", **server.ingest_headers}, timeout=timeout)  # fmt: skip


def ingest(server: ServerProcess, events: list, client: httpx.Client | None = None) -> dict:
    response = post(server, {"events": events}, client)
    assert response.status_code == 200, response.text
    return response.json()


def status(server: ServerProcess) -> dict:
    response = httpx.get(f"{server.ingest_url}/status", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def logged(server: ServerProcess) -> int:
    return status(server)["events_logged"]


_tokens: dict[tuple[Path, str], str] = {}


def metrics(server: ServerProcess, org: str) -> dict:
    key = (server.data_dir, org)
    if key not in _tokens:
        _tokens[key] = server.token(org)
    today = datetime.now(UTC).date()
    params = {"from": (today - timedelta(days=2)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    response = httpx.get(f"{server.url}/api/v1/orgs/{org}/metrics", params=params,
                         headers={"Authorization": f"Bearer {_tokens[key]}"}, timeout=30)  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()


def assert_json_error(response: httpx.Response, status_code: int) -> str:
    assert response.status_code == status_code, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    return body["error"]


def assert_all_duplicates(server: ServerProcess, batches: list[list[dict]]) -> None:
    """Every event of every batch is already stored: re-sending stores nothing."""
    with httpx.Client(timeout=30) as client:
        for batch in batches:
            assert ingest(server, batch, client) == {"accepted": 0, "duplicates": len(batch), "rejected": []}


def assert_projection_matches(server: ServerProcess, org: str, batches: list[list[dict]]) -> None:
    """After catching up, the read API shows each distinct run once (nothing lost, nothing doubled)."""
    final = server.wait_projected()
    assert final["lag_events"] == 0 and final["events_projected"] == final["events_logged"]
    finished = [e for batch in batches for e in batch if e["type"] == "run.finished"]
    m = metrics(server, org)
    assert m["runs"] == len({e["run_id"] for e in finished}) == RUNS_PER_BATCH * len(batches)
    assert m["runs_finished"] == m["runs"]
    assert m["input_tokens"] == sum(e["input_tokens"] for e in finished)
    assert m["output_tokens"] == sum(e["output_tokens"] for e in finished)
    assert m["runs_failed"] == sum(e["status"] == "failed" for e in finished)
    assert m["sessions"] == len({e["session_id"] for batch in batches for e in batch})


def assert_clean_logs(*servers: ServerProcess) -> None:
    for server in servers:
        assert "Traceback" not in server.log(), server.log()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One server for the tests that only need a live endpoint (each uses its own org)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("no_proxy", "127.0.0.1,localhost")
        server = ServerProcess(tmp_path_factory.mktemp("shared") / "data", ingest_orgs=ORGS).start()
        yield server
        server.stop()


# -- partial success ----------------------------------------------------------------------------


def test_partial_success_stores_valid_events_and_explains_each_rejection(shared):
    org = new_org("partial")
    t = datetime.now(UTC) - timedelta(hours=1)
    long_id = "x" * 129
    events = [
        ev(org, "session.started", t, id_="ok-0"),
        {k: v for k, v in ev(org, "message.sent", t, id_="bad-1").items() if k != "user_id"},
        ev(org, "run.queued", t + timedelta(seconds=1), run="r1", id_="ok-2"),
        ev(org, "run.exploded", t, run="r1", id_="bad-3"),
        ev(org, "run.finished", t + timedelta(seconds=60), run="r1", id_="ok-4", status="failed",
           failure_category="tool_error", input_tokens=100, output_tokens=10, cost_usd=0.5),
        ev(org, "run.finished", t, run="r2", id_="bad-5", status="failed", cost_usd=99.0),
        ev(org, "message.sent", t, run="r1", id_="bad-6"),
        ev(org, "run.finished", t, run="r3", id_="bad-7", status="succeeded", cost_usd=-1),
        ev(org, "session.started", t, id_="bad-8", colour="blue"),
        ev(org, "session.started", t, id_=long_id),
        42,
        ev(org, "session.started", t, id_="bad-11") | {"occurred_at": "2026-03-01T10:00:00"},
        ev(org, "run.started", t + timedelta(seconds=11), run="r1", id_="ok-12"),
    ]  # fmt: skip
    before = logged(shared)

    result = ingest(shared, events)

    assert (result["accepted"], result["duplicates"]) == (4, 0)
    rejected = {r["index"]: r for r in result["rejected"]}
    expected = {1: ("bad-1", "user_id"), 3: ("bad-3", "type"), 5: ("bad-5", "failure_category"),
                6: ("bad-6", "run_id"), 7: ("bad-7", "cost_usd"), 8: ("bad-8", "colour"),
                9: (long_id, "id"), 10: (None, None), 11: ("bad-11", "occurred_at")}  # fmt: skip
    assert sorted(rejected) == sorted(expected)
    for index, (event_id, field) in expected.items():
        assert rejected[index]["id"] == event_id
        assert isinstance(rejected[index]["error"], str) and rejected[index]["error"]
        if field:
            assert field in rejected[index]["error"], rejected[index]
    assert logged(shared) == before + 4

    shared.wait_projected()
    m = metrics(shared, org)
    assert m["runs"] == 1  # r2 and r3 had only rejected events
    assert (m["runs_finished"], m["runs_failed"]) == (1, 1)
    assert m["failures_by_category"] == [{"category": "tool_error", "runs": 1}]
    assert (m["cost_usd"], m["input_tokens"], m["output_tokens"]) == (0.5, 100, 10)
    assert m["queue_wait_avg_s"] == pytest.approx(10.0)
    assert m["run_duration_avg_s"] == pytest.approx(49.0)
    assert m["sessions"] == 1 and m["active_users"] == 1


def test_a_cost_above_the_limit_is_a_per_event_rejection_and_the_limit_itself_counts(shared):
    """A cost above MAX_COST_USD (1e14) is refused at ingest, naming the field, rather than capped by the read models;
    the rest of the batch is stored (partial success), and a cost of exactly the limit is summed as sent."""
    org = new_org("rich")
    t = datetime.now(UTC) - timedelta(hours=1)
    events = [
        ev(org, "session.started", t, id_="ok-0"),
        ev(org, "usage", t, id_="bad-1", cost_usd=2e14),
        ev(org, "usage", t, id_="ok-2", cost_usd=1e14),
        ev(org, "usage", t, id_="bad-3", cost_usd=1e14 + 1),
    ]
    result = ingest(shared, events)
    assert (result["accepted"], result["duplicates"]) == (2, 0)
    assert [(r["index"], r["id"]) for r in result["rejected"]] == [(1, "bad-1"), (3, "bad-3")]
    assert all("cost_usd" in r["error"] and "100000000000000" in r["error"] for r in result["rejected"])
    shared.wait_projected()
    assert metrics(shared, org)["cost_usd"] == 1e14


def test_a_nul_character_is_a_per_event_rejection_over_http(shared):
    """Through the real decoder (events arrive as raw slices of the body), not only parse_event on bytes."""
    org = new_org("nul")
    t = datetime.now(UTC) - timedelta(hours=1)
    events = [
        ev(org, "session.started", t, id_="clean"),
        ev(org, "session.started", t, id_="dirty") | {"user_id": "u\u0000"},
    ]
    before = logged(shared)
    response = post(shared, {"events": events})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    assert [(r["index"], r["id"]) for r in response.json()["rejected"]] == [(1, "dirty")]
    assert "user_id" in response.json()["rejected"][0]["error"]
    assert logged(shared) == before + 1


def test_integer_too_large_for_storage_is_rejected_not_a_server_error(shared):
    """input_tokens of 2**63 passes validation but cannot be stored: it must be a per-event rejection,
    not a 500 that also throws away the valid events of the batch."""
    org = new_org("huge")
    t = datetime.now(UTC) - timedelta(hours=1)
    events = [
        ev(org, "session.started", t, id_="fine"),
        ev(org, "run.finished", t, run="r1", id_="huge", status="succeeded", input_tokens=2**63),
    ]
    before = logged(shared)
    response = post(shared, {"events": events})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 1
    assert [(r["index"], r["id"]) for r in result["rejected"]] == [(1, "huge")]
    assert "input_tokens" in result["rejected"][0]["error"]
    assert logged(shared) == before + 1


# -- dedupe -------------------------------------------------------------------------------------


def test_dedupe_on_org_and_id_forever(server_factory):
    server = server_factory()
    org_a, org_b = new_org("a"), new_org("b")
    rng = random.Random(1)
    first = run_batch(org_a, rng, runs=10)  # 40 events

    assert ingest(server, first) == {"accepted": 40, "duplicates": 0, "rejected": []}
    assert ingest(server, first) == {"accepted": 0, "duplicates": 40, "rejected": []}

    # a re-sent id is a no-op even with a different payload: the first copy stands
    changed = [
        {**{k: v for k, v in e.items() if k != "failure_category"}, "status": "cancelled"} if e["type"] == "run.finished" else e
        for e in first
    ]  # fmt: skip
    assert ingest(server, changed) == {"accepted": 0, "duplicates": 40, "rejected": []}

    # the same id twice in one batch counts once; the first copy is the one kept
    t = datetime.now(UTC) - timedelta(hours=2)
    twin_a = ev(org_a, "run.finished", t, "s-twin", "r-twin", id_="twin", status="succeeded", cost_usd=1.0)
    twin_b = dict(twin_a, status="failed", failure_category="timeout", cost_usd=7.0)
    assert ingest(server, [twin_a, twin_b]) == {"accepted": 1, "duplicates": 1, "rejected": []}

    # the same ids in another org are other events
    other_org = [dict(e, org_id=org_b) for e in first]
    assert ingest(server, other_org) == {"accepted": 40, "duplicates": 0, "rejected": []}

    # old and new mixed
    fresh = run_batch(org_a, rng, runs=5)
    assert ingest(server, first[:20] + fresh) == {"accepted": 20, "duplicates": 20, "rejected": []}
    assert logged(server) == 40 + 1 + 40 + 20

    server.wait_projected()
    stored = {org_a: first + fresh + [twin_a], org_b: other_org}
    for org, events in stored.items():
        finished = [e for e in events if e["type"] == "run.finished"]
        m = metrics(server, org)
        assert m["runs"] == len(finished) == {org_a: 16, org_b: 10}[org]
        assert m["runs_cancelled"] == sum(e["status"] == "cancelled" for e in finished)
        assert m["runs_failed"] == sum(e["status"] == "failed" for e in finished)
        assert m["cost_usd"] == pytest.approx(sum(e["cost_usd"] for e in finished))

    # dedupe survives a restart: the index is rebuilt from the log
    assert server.stop() == 0
    again = server_factory(server.data_dir)
    assert logged(again) == 101
    assert ingest(again, first) == {"accepted": 0, "duplicates": 40, "rejected": []}
    assert ingest(again, other_org) == {"accepted": 0, "duplicates": 40, "rejected": []}
    assert ingest(again, [twin_b, *fresh]) == {"accepted": 0, "duplicates": 21, "rejected": []}
    assert ingest(again, [dict(twin_a, id="twin-2")]) == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert logged(again) == 102
    assert_clean_logs(server, again)


# -- errors -------------------------------------------------------------------------------------

NOT_JSON = [b"not json", b"", b'{"events": [', b"\xff\xfe{}"]
WRONG_SHAPES = [{"events": 5}, {}, [], {"events": []}, {"events": "abc"}, {"events": None}, {"events": {"id": "x"}}]


@pytest.mark.parametrize("body", NOT_JSON + WRONG_SHAPES, ids=repr)
def test_malformed_body_is_400_with_json_error_and_stores_nothing(shared, body):
    before = logged(shared)
    assert_json_error(post(shared, body), 400)
    assert logged(shared) == before


def test_wrong_shape_error_names_the_problem(shared):
    """These bodies are JSON: the reason must be about the `events` shape, not claim the body is not JSON."""
    misleading = {}
    for body in WRONG_SHAPES:
        error = assert_json_error(post(shared, body), 400)
        if "events" not in error or "not json" in error.lower():
            misleading[json.dumps(body)] = error
    assert not misleading, misleading


def test_more_than_1000_events_is_413_and_stores_nothing(shared):
    org = new_org("many")
    events = run_batch(org, random.Random(2), runs=250)
    assert len(events) == 1000
    before = logged(shared)
    error = assert_json_error(post(shared, {"events": events + [ev(org, "session.started", datetime.now(UTC))]}), 413)
    assert "1000" in error
    assert logged(shared) == before
    assert ingest(shared, events)["accepted"] == 1000  # exactly 1000 is fine


def _body_of_size(org: str, size: int, count: int = 1000) -> bytes:
    """A valid batch of `count` events whose JSON body is exactly `size` bytes."""
    t = datetime.now(UTC) - timedelta(hours=1)
    events = [ev(org, "session.started", t, session=f"s{i}", attributes={"pad": ""}) for i in range(count)]
    overhead = len(json.dumps({"events": events}).encode())
    pad, extra = divmod(size - overhead, count)
    for i, event in enumerate(events):
        event["attributes"]["pad"] = "x" * (pad + (1 if i < extra else 0))
    body = json.dumps({"events": events}).encode()
    assert len(body) == size
    return body


def test_body_over_4_mib_is_413_and_exactly_4_mib_is_accepted(shared):
    org = new_org("big")
    before = logged(shared)
    for size in (4 * MiB + 1, 4 * MiB + 2, 6 * MiB):
        error = assert_json_error(post(shared, _body_of_size(org, size)), 413)
        assert error
    assert logged(shared) == before
    assert ingest(shared, json.loads(_body_of_size(org, 4 * MiB))["events"])["accepted"] == 1000
    assert logged(shared) == before + 1000


def test_event_over_32_kib_is_413_and_stores_nothing(shared):
    org = new_org("fat")
    t = datetime.now(UTC) - timedelta(hours=1)
    small = ev(org, "session.started", t)

    def sized(size: int) -> dict:
        event = ev(org, "session.started", t, attributes={"pad": ""})
        event["attributes"]["pad"] = "x" * (size - len(json.dumps(event).encode()))
        assert len(json.dumps(event).encode()) == size
        return event

    before = logged(shared)
    error = assert_json_error(post(shared, {"events": [small, sized(32 * 1024 + 1)]}), 413)
    assert "32768" in error or "32 KiB" in error
    assert logged(shared) == before
    assert ingest(shared, [small, sized(32 * 1024)])["accepted"] == 2


def test_other_errors_are_json_too(shared):
    assert_json_error(httpx.get(f"{shared.ingest_url}/v1/events", timeout=10), 405)
    assert_json_error(httpx.get(f"{shared.ingest_url}/no/such/path", timeout=10), 404)


# -- health, schema, status ------------------------------------------------------------------------


def test_healthz_schema_and_status(shared):
    assert httpx.get(f"{shared.ingest_url}/healthz", timeout=10).status_code == 200

    schema = httpx.get(f"{shared.ingest_url}/schema/openapi.json", timeout=10)
    assert schema.status_code == 200
    assert "post" in schema.json()["paths"]["/v1/events"]

    ingest(shared, run_batch(new_org("status"), random.Random(3), runs=2))
    shared.wait_projected()
    s = status(shared)
    assert set(s) >= {"events_logged", "events_projected", "lag_events", "lag_seconds", "last_fold_at"}
    assert isinstance(s["events_logged"], int) and s["events_logged"] >= 8
    assert s["lag_events"] == s["events_logged"] - s["events_projected"] == 0
    assert s["lag_seconds"] == 0
    folded_at = datetime.fromisoformat(s["last_fold_at"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - folded_at) < timedelta(minutes=5)


# -- durability ---------------------------------------------------------------------------------


def test_acknowledged_batches_survive_kill_9(server_factory, tmp_path):
    """Kill -9 the instant after a 200, at several points in the log's life; nothing acknowledged is lost."""
    data_dir, org, rng = tmp_path / "durable", new_org("dur"), random.Random(4)
    acked: list[list[dict]] = []
    servers = []
    for batches_before_kill in (1, 3):  # the first batch of an empty log; a few more after a restart
        server = server_factory(data_dir)
        servers.append(server)
        assert logged(server) == BATCH * len(acked)
        assert_all_duplicates(server, acked)
        with httpx.Client(timeout=30) as client:
            for _ in range(batches_before_kill):
                batch = run_batch(org, rng)
                assert ingest(server, batch, client) == {"accepted": BATCH, "duplicates": 0, "rejected": []}
                acked.append(batch)
        server.kill()  # right after the last 200

    server = server_factory(data_dir)
    servers.append(server)
    assert logged(server) == BATCH * len(acked)
    assert_all_duplicates(server, acked)
    assert logged(server) == BATCH * len(acked)
    assert_projection_matches(server, org, acked)
    assert server.stop() == 0
    assert_clean_logs(*servers)


def _send_until_stopped(server: ServerProcess, org: str, seed: int, stop: threading.Event,
                        acked: list, unanswered: list, broken: list, errors: list) -> None:  # fmt: skip
    rng = random.Random(seed)
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            batch = run_batch(org, rng)
            try:
                response = post(server, {"events": batch}, client)
            except httpx.HTTPError as exc:
                unanswered.append(batch)  # may or may not be stored
                broken.append(type(exc).__name__)
                return
            if response.status_code == 200 and response.json() == {"accepted": BATCH, "duplicates": 0, "rejected": []}:
                acked.append(batch)
            elif response.status_code in (429, 503):
                continue  # nothing stored; a producer would retry
            else:
                errors.append(f"{response.status_code} {response.text[:300]}")
                return


def test_kill_9_with_requests_in_flight(server_factory, tmp_path):
    """Several producers send at once; the server dies mid-request. Every acknowledged batch is kept,
    an unanswered one is stored at most once, and a final SIGTERM with requests in flight is clean."""
    data_dir, org = tmp_path / "inflight", new_org("fly")
    acked: list[list[dict]] = []
    unanswered: list[list[dict]] = []
    servers, broken_in_flight = [], []
    rounds = [(2, "kill"), (7, "kill"), (3, "term")]  # (batches acknowledged first, signal)
    for round_no, (min_acked, how) in enumerate(rounds):
        server = server_factory(data_dir)
        servers.append(server)
        stored = logged(server)
        assert BATCH * len(acked) <= stored <= BATCH * (len(acked) + len(unanswered))
        assert_all_duplicates(server, acked)
        for batch in unanswered:  # stored once or not at all: re-sending completes it exactly
            result = ingest(server, batch)
            assert result["accepted"] + result["duplicates"] == BATCH and not result["rejected"]
        acked += unanswered
        unanswered = []
        assert logged(server) == BATCH * len(acked)

        stop, errors, round_acked, broken = threading.Event(), [], [], []
        threads = [
            threading.Thread(target=_send_until_stopped,
                             args=(server, org, 100 * round_no + i, stop, round_acked, unanswered, broken, errors))
            for i in range(4)
        ]  # fmt: skip
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(round_acked) < min_acked and time.monotonic() < deadline and not errors:
            time.sleep(0.005)
        if how == "kill":
            server.kill()
        else:
            assert server.stop() == 0  # SIGTERM while producers are still sending
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        assert not errors, errors
        assert len(round_acked) >= min_acked
        acked += round_acked
        if how == "kill":
            # ConnectError: sent after the kill; anything else: the request was in flight when it died
            broken_in_flight += [name for name in broken if name != "ConnectError"]

    assert broken_in_flight, "no kill caught a request in flight: the test did not test what it claims"
    server = server_factory(data_dir)
    servers.append(server)
    assert BATCH * len(acked) <= logged(server) <= BATCH * (len(acked) + len(unanswered))
    assert_all_duplicates(server, acked)
    for batch in unanswered:
        result = ingest(server, batch)
        assert result["accepted"] + result["duplicates"] == BATCH
    acked += unanswered
    assert logged(server) == BATCH * len(acked)  # nothing stored twice
    assert_projection_matches(server, org, acked)
    assert server.stop() == 0
    assert_clean_logs(*servers)


# -- ingest does not wait for the projector ------------------------------------------------------------


def test_ingest_answers_without_waiting_for_projection(server_factory):
    server = server_factory(None, "--projector-interval", "3600")
    org = new_org("lazy")
    rng = random.Random(5)
    with httpx.Client(timeout=30) as client:
        for _ in range(2):
            started = time.monotonic()
            assert ingest(server, run_batch(org, rng), client)["accepted"] == BATCH
            assert time.monotonic() - started < 5
    time.sleep(0.2)
    s = status(server)
    assert s["events_logged"] == 2 * BATCH
    assert s["events_projected"] == 0
    assert s["lag_events"] == 2 * BATCH
    assert s["lag_seconds"] >= 0.2
    assert s["last_fold_at"] is None
    assert metrics(server, org)["runs"] == 0  # the read models have not seen them yet
    server.kill()  # a clean stop would fold the 1000 events first; nothing more to check here


def test_deeply_nested_json_is_a_400_not_a_server_error(shared):
    t = datetime.now(UTC) - timedelta(hours=1)
    event = json.dumps(ev(new_org("deep"), "session.started", t))[:-1] + ', "attributes": {"a": '
    body = ('{"events": [' + event + "[" * 5000 + "]" * 5000 + "}}]}").encode()
    before = logged(shared)
    assert "nests" in assert_json_error(post(shared, body), 400)
    assert logged(shared) == before
    assert_clean_logs(shared)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
def test_a_body_not_declared_json_is_415(shared, content_type):
    """A cross-site page can send those without a preflight; with --insecure-ingest that would be a write."""
    t = datetime.now(UTC) - timedelta(hours=1)
    body = json.dumps({"events": [ev(new_org("ctype"), "session.started", t)]}).encode()
    headers = {**shared.ingest_headers, **({"content-type": content_type} if content_type else {})}
    before = logged(shared)
    answer = httpx.post(f"{shared.ingest_url}/v1/events", content=body, headers=headers, timeout=30)
    assert "application/json" in assert_json_error(answer, 415)
    assert logged(shared) == before
    charset = {**headers, "content-type": "application/json; charset=utf-8"}
    assert httpx.post(f"{shared.ingest_url}/v1/events", content=body, headers=charset, timeout=30).status_code == 200
