"""Ingest keys (SPEC §5, issue 4): the key store, the CLI, and a real server that refuses, scopes and throttles writers."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import secrets
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from agentdash.auth.ingest_auth import REFRESH_S, ActiveKeys, warn_insecure
from agentdash.auth.ingest_keys import MalformedKey, issue_key, parse_key, secret_matches, valid_orgs
from agentdash.config import Settings
from agentdash.storage import IngestKeyError, IngestKeyStore, open_ingest_keys
from agentdash.storage.embedded.key_store import SqliteIngestKeyStore
from agentdash.testing import ServerProcess

# -- the store: one contract for every backend ------------------------------------------------------


@pytest.fixture
def store(key_store) -> IngestKeyStore:
    """conftest's `key_store`: each backend's store (embedded SQLite file, PostgreSQL table)."""
    return key_store


def secret_of(key: str) -> str:
    return parse_key(key)[1]


def test_a_key_is_issued_listed_and_revoked(store):
    issued = issue_key(store, ["acme", "globex", "acme"], name="ci")
    key_id, secret = parse_key(issued.key)
    assert issued.key == f"adk_{key_id}_{secret}" and len(secret) >= 43  # 32 random bytes
    assert (issued.record.id, issued.record.name, issued.record.orgs) == (key_id, "ci", ("acme", "globex"))
    assert abs(datetime.now(UTC) - issued.record.created_at).total_seconds() < 60
    assert store.list_keys() == [issued.record] and issued.record.active

    [active] = store.active_keys()
    assert (active.id, active.orgs) == (key_id, frozenset({"acme", "globex"}))
    assert active.secret_sha256 == hashlib.sha256(secret.encode()).digest()
    assert secret_matches(secret, active.secret_sha256)
    assert not secret_matches(secret[:-1], active.secret_sha256)

    revoked = store.revoke(key_id)
    assert revoked.revoked_at is not None and not revoked.active
    assert store.list_keys() == [revoked]
    assert store.active_keys() == []


def test_revoking_an_unknown_or_revoked_key_is_a_clear_error(store):
    with pytest.raises(IngestKeyError, match="no ingest key with id 'nope'"):
        store.revoke("nope")
    key_id = issue_key(store, ["acme"]).record.id
    store.revoke(key_id)
    with pytest.raises(IngestKeyError, match=f"ingest key '{key_id}' is already revoked"):
        store.revoke(key_id)


def test_every_key_is_new(store):
    keys = [issue_key(store, ["acme"]).key for _ in range(20)]
    assert len({parse_key(k)[0] for k in keys}) == len({secret_of(k) for k in keys}) == 20


@pytest.mark.parametrize(("orgs", "problem"), [([], "at least one --org"), ([""], "1-128"), (["x" * 129], "1-128"),
                                               (["acme", "*"], "not an org")])  # fmt: skip
def test_a_key_must_name_real_orgs(orgs, problem):
    with pytest.raises(ValueError, match=problem):
        valid_orgs(orgs)


def test_malformed_keys_are_refused_without_repeating_them():
    texts = ["", "adk", "adk_", "adk_123456789012", "adk_123456789012_", "adk_short_s3cr3t", "xyz_123456789012_s3cr3t",
             "Bearer adk_123456789012_s3cr3t", "adk_123456789012"]  # fmt: skip
    messages = set()
    for text in texts:
        with pytest.raises(MalformedKey) as caught:
            parse_key(text)
        messages.add(str(caught.value))
    assert len(messages) == 1 and "adk_<id>_<secret>" in messages.pop()  # one fixed message, whatever was sent


def test_the_store_file_holds_a_hash_not_the_key(tmp_path):
    store = SqliteIngestKeyStore(tmp_path / "ingest-keys.sqlite")
    issued = issue_key(store, ["acme"])
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir())  # the file and any WAL
    store.close()
    assert issued.record.id.encode() in on_disk  # the right file: it holds the record
    assert hashlib.sha256(secret_of(issued.key).encode()).digest() in on_disk
    assert secret_of(issued.key).encode() not in on_disk
    assert (tmp_path / "ingest-keys.sqlite").stat().st_mode & 0o077 == 0  # owner only


class CountingStore:
    """A store that counts how often the active keys are read."""

    def __init__(self, store: IngestKeyStore) -> None:
        self.store, self.reads = store, 0

    def active_keys(self):
        self.reads += 1
        return self.store.active_keys()


def test_active_keys_are_read_at_most_once_a_second_and_a_new_key_works_at_once(store):
    now = [100.0]
    first = issue_key(store, ["acme"]).record.id
    counting = CountingStore(store)
    keys = ActiveKeys(counting, clock=lambda: now[0])
    assert counting.reads == 1 and keys.find(first).orgs == {"acme"}

    for _ in range(1000):  # the hot path: no database read per request
        assert keys.find(first) is not None
    assert counting.reads == 1

    store.revoke(first)
    now[0] += REFRESH_S / 2
    assert keys.find(first) is not None  # still cached...
    now[0] += REFRESH_S / 2
    assert keys.find(first) is None  # ...for at most a second
    assert counting.reads == 2

    second = issue_key(store, ["globex"]).record.id
    assert keys.find(second) is not None  # an unknown id looks again at once rather than waiting out the second
    assert counting.reads == 3
    assert keys.find("0" * 12) is None and counting.reads == 4  # only a miss (a failed request) reads


def test_the_demo_revokes_its_earlier_keys(store):
    from agentdash.demo.command import DEMO_ORG, demo_key

    other = issue_key(store, [DEMO_ORG], name="ci").record.id
    first, second = demo_key(store), demo_key(store)
    active = {k.id: k for k in store.active_keys()}
    assert set(active) == {other, parse_key(second)[0]} and parse_key(first)[0] not in active
    assert active[parse_key(second)[0]].orgs == {DEMO_ORG}


def test_insecure_mode_warns_loudly_on_stderr_and_in_the_log(capsys, caplog):
    with caplog.at_level(logging.WARNING):
        warn_insecure(Settings(insecure_ingest=True))
    banner = capsys.readouterr().err
    assert banner.count("WARNING") >= 3 and "AUTHENTICATION IS OFF" in banner and "127.0.0.1:3001" in banner
    assert [r.levelname for r in caplog.records] == ["WARNING"] and "insecure-ingest" in caplog.text


# -- a real server over real HTTP ---------------------------------------------------------------------

_loopback = itertools.count(2)


def loopback_client() -> httpx.Client:
    """A client on its own loopback address: failed attempts are counted per address, so tests do not share a budget."""
    transport = httpx.HTTPTransport(local_address=f"127.0.0.{next(_loopback)}")
    return httpx.Client(transport=transport, timeout=30, trust_env=False)


@pytest.fixture
def client():
    with loopback_client() as c:
        yield c


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """One server for this module; its own key writes acme."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        server = ServerProcess(tmp_path_factory.mktemp("keys") / "data", ingest_orgs=("acme",)).start()
        yield server
        server.stop()


def event(org: str, id_: str | None = None) -> dict:
    return {"id": id_ or uuid.uuid4().hex, "type": "session.started", "org_id": org, "user_id": "u1",
            "session_id": "s1", "occurred_at": datetime.now(UTC).isoformat()}  # fmt: skip


def post(client: httpx.Client, server: ServerProcess, events: list[dict] | bytes, key: str | None = None,
         authorization: str | None = None) -> httpx.Response:  # fmt: skip
    headers = {"content-type": "application/json"}
    if key or authorization:
        headers["authorization"] = authorization or f"Bearer {key}"
    body = events if isinstance(events, bytes) else json.dumps({"events": events}).encode()
    return client.post(f"{server.ingest_url}/v1/events", content=body, headers=headers)


def logged(server: ServerProcess) -> int:
    return server.status()["events_logged"]


def assert_401(response: httpx.Response, problem: str) -> str:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert problem in response.json()["error"], response.json()
    return response.json()["error"]


def test_the_cli_creates_lists_and_revokes_keys_while_the_server_runs(keyed):
    key = keyed.create_ingest_key("acme", "globex", name="ci-bot")
    key_id, secret = parse_key(key)
    listing = keyed.cli("ingest-key", "list")
    cells = next(line for line in listing.splitlines() if line.startswith(key_id)).split()
    assert cells[:3] == [key_id, "ci-bot", "acme,globex"] and cells[5:] == ["active"]
    created = datetime.fromisoformat(f"{cells[3]}T{cells[4]}+00:00")
    assert abs(datetime.now(UTC) - created).total_seconds() < 60  # shown in UTC
    assert listing.splitlines()[0].split()[:4] == ["ID", "NAME", "ORGS", "CREATED"]
    assert parse_key(keyed.ingest_key)[0] in listing  # the server's own key too
    assert secret not in listing and secret_of(keyed.ingest_key) not in listing

    assert keyed.cli("ingest-key", "revoke", key_id) == f"revoked ingest key {key_id} (acme, globex)"
    row = next(line for line in keyed.cli("ingest-key", "list").splitlines() if line.startswith(key_id))
    assert row.split()[-3] == "revoked"
    with pytest.raises(RuntimeError, match="already revoked"):
        keyed.cli("ingest-key", "revoke", key_id)
    with pytest.raises(RuntimeError, match="no ingest key with id '000000000000'"):
        keyed.cli("ingest-key", "revoke", "000000000000")
    with pytest.raises(RuntimeError, match="--org"):
        keyed.cli("ingest-key", "create", "--name", "no-orgs")


def test_writes_without_a_usable_key_are_401_and_store_nothing(keyed, client):
    key_id = parse_key(keyed.ingest_key)[0]
    wrong_secret = f"adk_{key_id}_{secrets.token_urlsafe(32)}"
    before = logged(keyed)
    assert_401(post(client, keyed, [event("acme")]), "missing Authorization: Bearer <ingest key>")
    assert_401(post(client, keyed, b"not json"), "missing Authorization")  # refused before the body is read
    assert_401(post(client, keyed, [event("acme")], authorization="Basic dXNlcjpwYXNz"), "Bearer <ingest key>")
    assert_401(post(client, keyed, [event("acme")], authorization="Bearer"), "Bearer <ingest key>")
    error = assert_401(post(client, keyed, [event("acme")], key="not-a-key"), "malformed ingest key")
    assert "not-a-key" not in error
    unknown = f"adk_{'0' * 12}_{secrets.token_urlsafe(32)}"
    assert_401(post(client, keyed, [event("acme")], key=unknown), "unknown or revoked ingest key")
    error = assert_401(post(client, keyed, [event("acme")], key=wrong_secret), "unknown or revoked ingest key")
    assert secret_of(wrong_secret) not in error
    assert logged(keyed) == before
    # operational endpoints stay open
    assert client.get(f"{keyed.ingest_url}/healthz").status_code == 200
    assert client.get(f"{keyed.ingest_url}/status").status_code == 200


def test_a_new_key_works_at_once_and_a_revoked_one_stops_within_2_s(keyed, client):
    key = keyed.create_ingest_key("acme", name="short-lived")
    assert post(client, keyed, [event("acme")], key=key).json()["accepted"] == 1  # no wait for a reload
    keyed.cli("ingest-key", "revoke", parse_key(key)[0])
    revoked_at = time.monotonic()
    while (answer := post(client, keyed, [event("acme")], key=key)).status_code == 200:
        assert time.monotonic() - revoked_at < 2, "the revoked key still writes after 2 s"
        time.sleep(0.05)
    assert_401(answer, "unknown or revoked ingest key")
    assert time.monotonic() - revoked_at < 2
    assert post(client, keyed, [event("acme")], key=keyed.ingest_key).status_code == 200  # other keys unaffected


def test_events_outside_the_keys_orgs_are_rejected_and_the_rest_stored(keyed, client):
    key_id = parse_key(keyed.ingest_key)[0]
    batch = [event("acme"), event("globex"), event("acme"), event("initech")]
    before = logged(keyed)
    answer = post(client, keyed, batch, key=keyed.ingest_key)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["accepted"], result["duplicates"]) == (2, 0)
    assert [(r["index"], r["id"]) for r in result["rejected"]] == [(1, batch[1]["id"]), (3, batch[3]["id"])]
    for rejection, org in zip(result["rejected"], ("globex", "initech"), strict=True):
        assert f"'{org}'" in rejection["error"] and key_id in rejection["error"] and "acme" in rejection["error"]
    assert logged(keyed) == before + 2

    # The accepted ones are stored (a re-send is a duplicate); the rejected ones are not (a rightful key stores them).
    again = post(client, keyed, [batch[0], batch[2]], key=keyed.ingest_key).json()
    assert (again["accepted"], again["duplicates"]) == (0, 2)
    globex_key = keyed.create_ingest_key("globex", name="globex-only")
    assert post(client, keyed, [batch[1]], key=globex_key).json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert logged(keyed) == before + 3


def test_a_key_for_several_orgs_writes_each_of_them(keyed, client):
    key = keyed.create_ingest_key("acme", "globex", "initech", name="multi")
    before = logged(keyed)
    answer = post(client, keyed, [event("acme"), event("globex"), event("initech"), event("hooli")], key=key).json()
    assert answer["accepted"] == 3 and [r["index"] for r in answer["rejected"]] == [3]
    assert logged(keyed) == before + 3


def test_no_file_in_the_data_dir_holds_a_key_secret(keyed, client):
    key = keyed.create_ingest_key("acme", name="grep-me")
    assert post(client, keyed, [event("acme")], key=key).status_code == 200
    files = [p for p in keyed.data_dir.iterdir() if p.is_file()]
    assert any(p.name.startswith("ingest-keys.sqlite") for p in files)
    contents = b"".join(p.read_bytes() for p in files)
    assert parse_key(key)[0].encode() in contents  # the record is there...
    for secret in (secret_of(key), secret_of(keyed.ingest_key)):
        assert secret.encode() not in contents  # ...its secret is not


def test_repeated_failures_from_one_address_are_throttled_with_429(keyed, client):
    guess = f"adk_{'0' * 12}_guess"
    for _ in range(10):
        assert_401(post(client, keyed, [event("acme")], key=guess), "unknown or revoked")
    before = logged(keyed)
    throttled = post(client, keyed, [event("acme")], key=guess)
    assert throttled.status_code == 429, throttled.text
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    assert "too many failed ingest key attempts" in throttled.json()["error"]
    assert logged(keyed) == before
    assert client.get(f"{keyed.ingest_url}/healthz").status_code == 200
    # The key's owner behind the same address is not locked out by someone else's guesses.
    assert post(client, keyed, [event("acme")], key=keyed.ingest_key).json()["accepted"] == 1
    assert post(client, keyed, [event("acme")], key=guess).status_code == 429  # the guesser still is
    with loopback_client() as elsewhere:  # another address is not affected
        assert_401(post(elsewhere, keyed, [event("acme")], key=guess), "unknown or revoked")
    assert "10 failed key attempts from 127.0.0." in keyed.log()


def test_a_forged_x_forwarded_for_neither_dodges_nor_aims_the_throttle(keyed, client):
    """Without --trusted-proxies the connecting peer is the client, whatever X-Forwarded-For says."""
    guess = f"adk_{'0' * 12}_guess"
    answers = [
        client.post(f"{keyed.ingest_url}/v1/events", json={"events": [event("acme")]},
                    headers={"authorization": f"Bearer {guess}", "x-forwarded-for": f"198.51.100.{i}, evil-text-{i}"})
        for i in range(11)
    ]  # fmt: skip
    assert [a.status_code for a in answers] == [401] * 10 + [429]  # a fresh header per try buys no fresh budget
    assert "198.51.100." not in keyed.log() and "evil-text" not in keyed.log()


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget(tmp_path):
    server = ServerProcess(tmp_path / "data", ingest_orgs=("acme",)).start("--trusted-proxies", "127.0.0.1")
    try:
        with httpx.Client(timeout=30, trust_env=False) as proxy:  # connects from 127.0.0.1, the trusted proxy

            def write(client_ip: str, key: str) -> int:
                headers = {"authorization": f"Bearer {key}", "x-forwarded-for": client_ip}
                body = {"events": [event("acme")]}
                return proxy.post(f"{server.ingest_url}/v1/events", json=body, headers=headers).status_code

            guess = f"adk_{'0' * 12}_guess"
            assert [write("203.0.113.5", guess) for _ in range(11)] == [401] * 10 + [429]
            assert write("203.0.113.6", guess) == 401  # another client behind the proxy keeps its budget
            assert write("203.0.113.5", server.ingest_key) == 200  # and valid keys pass everywhere
            assert write("2001:db8::1", guess) == 401
            assert "failed key attempts from 203.0.113.5" in server.log()
    finally:
        server.stop()


def test_the_server_log_never_shows_a_key(keyed, client):
    fresh = keyed.create_ingest_key("acme", name="log-check")
    revoked = keyed.create_ingest_key("acme", name="log-check-revoked")
    keyed.cli("ingest-key", "revoke", parse_key(revoked)[0])
    time.sleep(REFRESH_S + 0.1)
    assert post(client, keyed, [event("acme")], key=fresh).status_code == 200
    assert post(client, keyed, [event("acme")], key=revoked).status_code == 401
    assert post(client, keyed, [event("acme")], key=f"{fresh[:-4]}xxxx").status_code == 401
    log = keyed.log()
    assert "refused a write from 127.0.0." in log  # failures are logged...
    for key in (fresh, revoked, keyed.ingest_key):
        assert secret_of(key) not in log  # ...without the key
    assert f"{fresh[:-4]}xxxx"[-20:] not in log


def test_generate_needs_a_key_and_sends_with_it(keyed):
    env = {k: v for k, v in os.environ.items() if k != "AGENTDASH_INGEST_KEY"}
    url = f"{keyed.ingest_url}/v1/events"
    args = [
        sys.executable,
        "-m",
        "agentdash",
        "generate",
        "--days",
        "2",
        "--scale",
        "0.05",
        "--org",
        "acme",
        "--url",
        url,
    ]

    started = time.monotonic()
    missing = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert (
        missing.returncode != 0 and "AGENTDASH_INGEST_KEY" in missing.stderr and "ingest-key create" in missing.stderr
    )
    assert time.monotonic() - started < 10  # fails before generating anything

    before = logged(keyed)
    sent = subprocess.run(
        [*args, "--key", keyed.ingest_key], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert sent.returncode == 0, sent.stderr
    accepted = int(sent.stdout.split(" accepted")[0].rsplit(" ", 1)[1].replace(",", ""))
    assert accepted > 0 and logged(keyed) == before + accepted

    globex_key = keyed.create_ingest_key("globex", name="wrong-org")
    env_key = {**env, "AGENTDASH_INGEST_KEY": globex_key}
    out_of_scope = subprocess.run(args, capture_output=True, text=True, env=env_key, timeout=120, check=False)
    assert out_of_scope.returncode == 0 and " 0 accepted" in out_of_scope.stdout
    assert "outside the scope of ingest key" in out_of_scope.stderr


def test_insecure_mode_accepts_any_org_without_a_key_and_says_so(server_factory):
    server = server_factory(None, "--insecure-ingest")
    with loopback_client() as client:
        answer = post(client, server, [event("acme"), event("anything-at-all")])
    assert answer.status_code == 200 and answer.json()["accepted"] == 2, answer.text
    log = server.log()
    assert "WARNING: INGEST AUTHENTICATION IS OFF" in log
    assert "ingest authentication is OFF (--insecure-ingest)" in log


def test_a_default_server_refuses_writes_without_a_key(server):
    with loopback_client() as client:
        assert_401(post(client, server, [event("acme")]), "missing Authorization")
        assert post(client, server, [event("acme")], key=server.ingest_key).json()["accepted"] == 1
    assert "INGEST AUTHENTICATION IS OFF" not in server.log()


def test_the_key_store_opens_next_to_a_running_server(keyed):
    """What the CLI relies on: the store takes no lock that the server's event log holds."""
    store = open_ingest_keys(Settings(data_dir=keyed.data_dir))
    try:
        assert any(k.name == "tests" and k.orgs == ("acme",) for k in store.list_keys())
    finally:
        store.close()


def test_the_openapi_schema_declares_the_bearer_key(keyed):
    schema = httpx.get(f"{keyed.ingest_url}/schema/openapi.json", timeout=10).json()
    assert schema["paths"]["/v1/events"]["post"]["security"] == [{"ingestKey": []}]
    assert schema["components"]["securitySchemes"]["ingestKey"]["scheme"] == "bearer"
