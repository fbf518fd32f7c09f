"""OIDC keys over real HTTP: RS256/ES256 accepted, rotation picked up, refetches throttled; then a real server."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from idp import AUDIENCE, ISSUER, FakeProvider, claims, ec_key, rsa_key
from litestar.testing import TestClient

from agentdash.auth import FailureLimiter
from agentdash.auth.jwks import JwksKeys
from agentdash.auth.tokens import NotAuthorized, OidcProvider, ProviderUnavailable, TokenVerifier
from agentdash.testing import ServerProcess, free_port
from agentdash.web import create_read_api

METRICS = "/api/v1/orgs/acme/metrics"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def oidc_verifier(url: str, clock: Clock) -> TokenVerifier:
    return TokenVerifier(
        oidc=OidcProvider(JwksKeys(url, max_age_s=300, min_fetch_gap_s=10, clock=clock), ISSUER, AUDIENCE)
    )


def test_rs256_and_es256_tokens_verify_with_one_fetch(clock):
    rsa, ec = rsa_key("rsa-1"), ec_key("ec-1")
    with FakeProvider(rsa, ec) as idp:
        verifier = oidc_verifier(idp.url, clock)
        for _ in range(20):
            assert verifier.verify(rsa.sign(claims(sub="ann"))).sub == "ann"
            assert verifier.verify(ec.sign(claims(sub="bo"))).sub == "bo"
        assert idp.fetches == 1  # the key set is cached


def test_wrong_issuer_or_audience_is_refused(clock):
    rsa = rsa_key("rsa-1")
    with FakeProvider(rsa) as idp:
        verifier = oidc_verifier(idp.url, clock)
        assert verifier.verify(rsa.sign(claims()))
        for changes in ({"iss": "https://evil.example.test/"}, {"iss": None}, {"aud": "another-app"}, {"aud": None}):
            with pytest.raises(NotAuthorized, match="issuer|audience|iss|aud"):
                verifier.verify(rsa.sign(claims(**changes)))


def test_a_rotated_key_verifies_without_restart(clock):
    old, new = rsa_key("2026-01"), rsa_key("2026-02")
    with FakeProvider(old) as idp:
        verifier = oidc_verifier(idp.url, clock)
        assert verifier.verify(old.sign(claims()))
        idp.publish(new)  # the provider rotates: the old key is gone, tokens carry the new kid
        clock.now += 11  # past the refetch gap
        assert verifier.verify(new.sign(claims()))
        assert idp.fetches == 2
        with pytest.raises(NotAuthorized, match="does not publish"):
            verifier.verify(old.sign(claims()))


def test_a_flood_of_unknown_kids_costs_one_fetch_per_gap(clock):
    rsa = rsa_key("rsa-1")
    with FakeProvider(rsa) as idp:
        verifier = oidc_verifier(idp.url, clock)
        assert verifier.verify(rsa.sign(claims()))
        clock.now += 11
        for i in range(200):
            with pytest.raises(NotAuthorized):
                verifier.verify(rsa.sign(claims(), kid=f"bogus-{i}"))
        assert idp.fetches == 2  # the first unknown kid refetched; the other 199 waited for the gap
        clock.now += 11
        with pytest.raises(NotAuthorized):
            verifier.verify(rsa.sign(claims(), kid="bogus-again"))
        assert idp.fetches == 3
        assert verifier.verify(rsa.sign(claims()))  # good tokens were never affected


def test_keys_are_refreshed_when_old_and_kept_when_the_provider_is_down(clock):
    rsa = rsa_key("rsa-1")
    with FakeProvider(rsa) as idp:
        verifier = oidc_verifier(idp.url, clock)
        assert verifier.verify(rsa.sign(claims()))
        clock.now += 301
        assert verifier.verify(rsa.sign(claims()))
        assert idp.fetches == 2
    clock.now += 301  # the provider is gone now: the refresh fails, the cached key still verifies
    assert verifier.verify(rsa.sign(claims()))


def test_an_unreachable_provider_is_a_clear_refusal(clock):
    verifier = oidc_verifier(f"http://127.0.0.1:{free_port()}/jwks", clock)
    with pytest.raises(ProviderUnavailable, match="could not be fetched"):
        verifier.verify(rsa_key("rsa-1").sign(claims()))


def test_the_read_api_answers_503_and_counts_no_failure_while_the_provider_is_unreachable(clock):
    verifier = oidc_verifier(f"http://127.0.0.1:{free_port()}/jwks", clock)
    token = rsa_key("rsa-1").sign(claims())
    with TestClient(create_read_api(None, verifier, FailureLimiter(limit=2))) as client:
        answers = [client.get(METRICS, headers={"Authorization": f"Bearer {token}"}) for _ in range(4)]
    assert [a.status_code for a in answers] == [503] * 4  # never 429: the caller did nothing wrong
    assert answers[0].headers["retry-after"] == "10" and "could not be fetched" in answers[0].json()["error"]


def test_only_rsa_and_p256_signing_keys_are_taken_from_the_set(clock):
    rsa = rsa_key("rsa-1")
    hostile = (
        {"kty": "oct", "kid": "shared", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"},  # a symmetric key
        {**rsa_key("x").jwk(), "kid": "labelled-hs256", "alg": "HS256"},
        {**rsa_key("y").jwk(), "kid": "for-encryption", "use": "enc"},
        {**rsa_key("z").jwk(), "kid": "rs512", "alg": "RS512"},
    )
    with FakeProvider() as idp:
        idp.publish(rsa, extra=hostile)
        keys = JwksKeys(idp.url, clock=clock)
        assert keys.key("rsa-1").algorithm == "RS256"
        assert [keys.key(entry["kid"]) for entry in hostile] == [None] * len(hostile)


# -- a real `agentdash serve` configured for the fake provider


def jwks_flags(idp: FakeProvider) -> tuple[str, ...]:
    return "--jwks-url", idp.url, "--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE


def status(server: ServerProcess, token: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}{METRICS}", headers={"Authorization": f"Bearer {token}"}, timeout=30, trust_env=False
    )


@pytest.fixture(scope="module")
def signing_keys():
    return rsa_key("rsa-1"), ec_key("ec-1")


@pytest.fixture(scope="module")
def idp(signing_keys):
    with FakeProvider(*signing_keys) as provider:
        yield provider


@pytest.fixture
def serve(tmp_path):
    started: list[ServerProcess] = []

    def start(*extra: str, dev: bool) -> ServerProcess:
        server = ServerProcess(tmp_path / f"data-{len(started)}", dev=dev)
        started.append(server)
        return server.start(*extra)

    yield start
    for server in started:
        if server.process and server.process.poll() is None:
            server.stop()


@pytest.mark.slow
def test_a_real_server_accepts_provider_tokens_and_refuses_forgeries(serve, idp, signing_keys):
    rsa, ec = signing_keys
    server = serve(*jwks_flags(idp), dev=True)
    assert status(server, rsa.sign(claims())).status_code == 200
    assert status(server, ec.sign(claims())).status_code == 200
    assert status(server, server.token("acme")).status_code == 200  # dev mode is on too (agentdash/testing/)
    forgeries = {
        "impostor key": rsa_key("rsa-1").sign(claims()),
        "wrong issuer": rsa.sign(claims(iss="https://evil.example.test/")),
        "wrong audience": rsa.sign(claims(aud="another-app")),
        "expired": rsa.sign(claims(exp=1_000_000)),
        "tampered": rsa.sign(claims(role="member"))[:-6] + "AAAAAA",
    }
    for name, token in forgeries.items():
        answer = status(server, token)
        assert answer.status_code == 401, name
        assert token not in answer.text


@pytest.mark.slow
def test_a_server_without_dev_mode_refuses_dev_tokens(serve, idp, signing_keys):
    server = serve(*jwks_flags(idp), dev=False)
    assert status(server, signing_keys[0].sign(claims())).status_code == 200
    refused = status(server, server.token("acme"))  # signed with the data dir's dev secret
    assert refused.status_code == 401 and "algorithm" in refused.json()["error"]


@pytest.mark.slow
def test_repeated_invalid_tokens_are_throttled(serve, idp, signing_keys):
    server = serve(*jwks_flags(idp), dev=False)
    forged = rsa_key("rsa-1").sign(claims())
    answers = [status(server, forged).status_code for _ in range(11)]
    assert answers == [401] * 10 + [429]
    throttled = status(server, forged)
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    # A good token passes: others behind the same address must not lock its owner out.
    assert status(server, signing_keys[0].sign(claims())).status_code == 200


@pytest.mark.slow
def test_serve_with_no_identity_provider_refuses_to_start(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "agentdash", "serve", "--data-dir", str(tmp_path / "data"), "--port", str(free_port()),
         "--ingest-port", str(free_port())],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "no identity provider is configured" in result.stderr and "--jwks-url" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()  # refused before touching the data dir
