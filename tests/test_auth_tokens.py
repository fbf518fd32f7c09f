"""Token verification: every forgery refused, each issuer path on its own terms, no key confusion, clear setup errors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable

import jwt
import pytest
from idp import AUDIENCE, ISSUER, FakeProvider, claims, ec_key, rsa_key

from agentdash.auth.tokens import (
    HmacKey,
    Identity,
    IdentityConfigError,
    NotAuthorized,
    TokenExpired,
    TokenVerifier,
    issue_local_token,
    verifier_for,
)  # fmt: skip
from agentdash.config import Settings

SECRET = "test-secret-0123456789abcdef0123456789"
OTHER_SECRET = "other-secret-0123456789abcdef012345678"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: dict, payload: dict, sign: Callable[[bytes], bytes] | None = None) -> str:
    """A token put together by hand, for what PyJWT refuses to sign (alg none, an HMAC over a public key)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode())) if sign else ''}"


def hs(payload: dict, secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, secret, algorithm=algorithm)


def with_payload(token: str, payload: dict) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{b64(json.dumps(payload).encode())}.{signature}"


def promoted(token: str) -> str:
    """The token with its payload rewritten to org_admin, signature kept."""
    return with_payload(token, jwt.decode(token, options={"verify_signature": False}) | {"role": "org_admin"})


def with_flipped_signature(token: str) -> str:
    head, signature = token.rsplit(".", 1)
    middle = len(signature) // 2
    return f"{head}.{signature[:middle]}{'A' if signature[middle] != 'A' else 'B'}{signature[middle + 1 :]}"


def in_(seconds: int) -> int:
    return int(time.time()) + seconds


@pytest.fixture
def verifier() -> TokenVerifier:
    return TokenVerifier([HmacKey(SECRET.encode(), ISSUER, AUDIENCE)])


def test_a_good_token_gives_its_identity(verifier):
    token = hs(claims(sub="bo", role="manager", teams=["t-1", "t-2"]))
    assert verifier.verify(token) == Identity(sub="bo", org_id="acme", role="manager", teams=("t-1", "t-2"))


def test_teams_may_be_left_out(verifier):
    assert verifier.verify(hs(claims(teams=None))).teams == ()


# Each case makes the same token twice: without its defect (it must pass) and with it (it must be refused).
FORGERIES: dict[str, Callable[[bool], str]] = {
    "alg none": lambda bad: raw_token({"alg": "none", "typ": "JWT"}, claims()) if bad else hs(claims()),
    "alg NONE": lambda bad: raw_token({"alg": "NONE", "typ": "JWT"}, claims()) if bad else hs(claims()),
    "no alg": lambda bad: raw_token({"typ": "JWT"}, claims(), _hmac(SECRET)) if bad else hs(claims()),
    "wrong key": lambda bad: hs(claims(), OTHER_SECRET if bad else SECRET),
    "HS512 with the right secret": lambda bad: hs(claims(), algorithm="HS512" if bad else "HS256"),
    "nbf in the future": lambda bad: hs(claims(nbf=in_(120 if bad else 20))),  # 20 s is within the leeway
    "iat in the future": lambda bad: hs(claims(iat=in_(120 if bad else 20))),
    "wrong issuer": lambda bad: hs(claims(iss="https://evil.example.test/" if bad else ISSUER)),
    "no issuer": lambda bad: hs(claims(iss=None if bad else ISSUER)),
    "wrong audience": lambda bad: hs(claims(aud="another-app" if bad else AUDIENCE)),
    "no audience": lambda bad: hs(claims(aud=None if bad else AUDIENCE)),
    "tampered payload": lambda bad: promoted(hs(claims(role="member"))) if bad else hs(claims(role="member")),
    "tampered signature": lambda bad: (with_flipped_signature if bad else str)(hs(claims())),
    "no exp": lambda bad: hs(claims(exp=None if bad else in_(600))),
    "no sub": lambda bad: hs(claims(sub=None if bad else "ann")),
    "no org_id": lambda bad: hs(claims(org_id=None if bad else "acme")),
    "no role": lambda bad: hs(claims(role=None if bad else "member")),
    "unknown role": lambda bad: hs(claims(role="owner" if bad else "member")),
    "role as a list": lambda bad: hs(claims(role=["org_admin"] if bad else "org_admin")),
    "empty sub": lambda bad: hs(claims(sub="" if bad else "ann")),
    "numeric sub": lambda bad: hs(claims(sub=42 if bad else "42")),
    "numeric org_id": lambda bad: hs(claims(org_id=7 if bad else "7")),
    "teams a string": lambda bad: hs(claims(teams="t-1" if bad else ["t-1"])),
    "teams with a number": lambda bad: hs(claims(teams=["t-1", 2] if bad else ["t-1", "2"])),
    "teams null": lambda bad: hs(claims(teams=None) | ({"teams": None} if bad else {})),
    "oversized": lambda bad: hs(claims(note="x" * (20_000 if bad else 2_000))),
}


def _hmac(secret: str | bytes) -> Callable[[bytes], bytes]:
    key = secret.encode() if isinstance(secret, str) else secret
    return lambda message: hmac.new(key, message, hashlib.sha256).digest()


@pytest.mark.parametrize("defect", FORGERIES)
def test_a_token_with_one_defect_is_refused(verifier, defect):
    make = FORGERIES[defect]
    assert verifier.verify(make(False)).org_id  # the same token without the defect passes
    forged = make(True)
    with pytest.raises(NotAuthorized) as refused:
        verifier.verify(forged)
    assert type(refused.value) is NotAuthorized  # only a genuine, expired token says "sign in again"
    message = str(refused.value)
    assert message and all(part not in message for part in forged.split(".") if len(part) > 8)


@pytest.mark.parametrize("token", ["", "junk", "a.b", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9.e30."])
def test_garbage_is_refused_without_a_crash(verifier, token):
    with pytest.raises(NotAuthorized):
        verifier.verify(token)


def test_an_expired_token_says_sign_in_again(verifier):
    assert verifier.verify(hs(claims(exp=in_(-10))))  # within the 30 s leeway
    with pytest.raises(TokenExpired, match="sign in again"):
        verifier.verify(hs(claims(exp=in_(-60))))


def test_an_expired_token_with_a_wrong_signature_is_not_called_expired(verifier):
    with pytest.raises(NotAuthorized) as refused:
        verifier.verify(hs(claims(exp=in_(-60)), OTHER_SECRET))
    assert not isinstance(refused.value, TokenExpired)


# -- the HS256 secret and dev mode, as configured by Settings


def test_jwt_secret_mode_accepts_what_agentdash_token_signs(tmp_path):
    settings = Settings(data_dir=tmp_path, jwt_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    token = issue_local_token(settings, "acme", "manager", "bo", ("t-1",))
    assert verifier_for(settings).verify(token) == Identity("bo", "acme", "manager", ("t-1",))
    assert jwt.decode(token, options={"verify_signature": False})["iss"] == ISSUER


def test_jwt_secret_mode_checks_iss_and_aud_only_when_configured(tmp_path):
    assert verifier_for(Settings(data_dir=tmp_path, jwt_secret=SECRET)).verify(hs(claims(iss=None, aud=None)))
    strict = verifier_for(Settings(data_dir=tmp_path, jwt_secret=SECRET, jwt_issuer=ISSUER))
    with pytest.raises(NotAuthorized, match="lacks the 'iss'"):
        strict.verify(hs(claims(iss=None, aud=None)))


def test_jwt_secret_mode_refuses_dev_tokens(tmp_path):
    dev_token = issue_local_token(Settings(data_dir=tmp_path), "acme", "org_admin", "dev")
    assert verifier_for(Settings(data_dir=tmp_path, dev=True)).verify(dev_token)
    with pytest.raises(NotAuthorized, match="signature"):
        verifier_for(Settings(data_dir=tmp_path, jwt_secret=SECRET)).verify(dev_token)


def test_a_short_secret_is_refused_without_echoing_it(tmp_path):
    with pytest.raises(IdentityConfigError, match="at least 32 bytes") as refused:
        verifier_for(Settings(data_dir=tmp_path, jwt_secret="hunter2-hunter2"))
    assert "hunter2" not in str(refused.value)
    with pytest.raises(IdentityConfigError):
        issue_local_token(Settings(data_dir=tmp_path, jwt_secret="hunter2-hunter2"), "acme", "member", "ann")


def test_no_secret_in_reprs(tmp_path):
    settings = Settings(data_dir=tmp_path, jwt_secret=SECRET, dev=True)
    verifier = verifier_for(settings)
    dev = (tmp_path / "dev-secret").read_text()
    for text in (repr(settings), repr(verifier), repr(verifier.hmac_keys)):
        assert SECRET not in text and dev not in text


def test_nothing_configured_names_the_three_options(tmp_path):
    with pytest.raises(IdentityConfigError) as refused:
        verifier_for(Settings(data_dir=tmp_path))
    assert all(option in str(refused.value) for option in ("--jwks-url", "--jwt-secret", "--dev"))


@pytest.mark.parametrize("missing", ["jwt_issuer", "jwt_audience"])
def test_a_jwks_url_needs_issuer_and_audience(tmp_path, missing):
    values = {"jwks_url": "https://idp.example.test/jwks", "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
    assert verifier_for(Settings(data_dir=tmp_path, **values))
    with pytest.raises(IdentityConfigError, match="--jwt-issuer and --jwt-audience"):
        verifier_for(Settings(data_dir=tmp_path, **(values | {missing: ""})))


def test_a_jwks_url_must_be_http(tmp_path):
    with pytest.raises(IdentityConfigError, match="jwks-url"):
        verifier_for(
            Settings(data_dir=tmp_path, jwks_url="file:///etc/passwd", jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
        )


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_dev_mode_on_loopback(tmp_path, host):
    assert verifier_for(Settings(data_dir=tmp_path, dev=True, host=host)).hmac_keys


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "dashboard.example.com"])
def test_dev_mode_is_refused_off_loopback(tmp_path, host):
    with pytest.raises(IdentityConfigError, match="loopback"):
        verifier_for(Settings(data_dir=tmp_path, dev=True, host=host))


# -- several issuers at once, and keys that must never be confused


@pytest.fixture(scope="module")
def keys():
    return {"rsa": rsa_key("rsa-1"), "ec": ec_key("ec-1")}


@pytest.fixture(scope="module")
def provider(keys):
    with FakeProvider(keys["rsa"], keys["ec"]) as idp:
        yield idp


@pytest.fixture
def everything(tmp_path, provider) -> tuple[TokenVerifier, Settings]:
    settings = Settings(data_dir=tmp_path, dev=True, jwt_secret=SECRET, jwks_url=provider.url, jwt_issuer=ISSUER,
                        jwt_audience=AUDIENCE)  # fmt: skip
    return verifier_for(settings), settings


def test_several_issuers_each_accept_their_own_tokens(everything, keys):
    verifier, settings = everything
    dev_token = issue_local_token(Settings(data_dir=settings.data_dir), "acme", "member", "dev")
    for token in (hs(claims()), dev_token, keys["rsa"].sign(claims()), keys["ec"].sign(claims())):
        assert verifier.verify(token).org_id == "acme"


def test_a_token_cannot_take_the_dev_path_to_skip_the_secrets_checks(everything):
    verifier, _ = everything
    assert verifier.verify(hs(claims()))
    with pytest.raises(NotAuthorized):  # the dev path checks no iss, but only the dev secret reaches it
        verifier.verify(hs(claims(iss=None)))


def test_an_hmac_over_the_public_key_is_refused(everything, keys):
    verifier, _ = everything
    oidc_only = TokenVerifier(oidc=verifier.oidc)
    rsa = keys["rsa"]
    assert oidc_only.verify(rsa.sign(claims()))
    for secret in (rsa.public_pem(), json.dumps(rsa.jwk()).encode()):
        forged = raw_token({"alg": "HS256", "typ": "JWT", "kid": rsa.kid}, claims(), _hmac(secret))
        for candidate in (verifier, oidc_only):
            with pytest.raises(NotAuthorized):
                candidate.verify(forged)


def test_a_key_verifies_only_its_own_algorithm(everything, keys):
    verifier, _ = everything
    rsa, ec = keys["rsa"], keys["ec"]
    assert verifier.verify(rsa.sign(claims())) and verifier.verify(ec.sign(claims()))
    for forged in (rsa.sign(claims(), kid=ec.kid), ec.sign(claims(), kid=rsa.kid)):
        with pytest.raises(NotAuthorized, match="algorithm"):
            verifier.verify(forged)


def test_an_rs256_token_with_wrong_claims_is_refused(everything, keys):
    verifier, _ = everything
    for changes in ({"iss": "https://evil.example.test/"}, {"aud": "another-app"}, {"aud": None}, {"role": "owner"}):
        with pytest.raises(NotAuthorized):
            verifier.verify(keys["rsa"].sign(claims(**changes)))
    with pytest.raises(TokenExpired):
        verifier.verify(keys["rsa"].sign(claims(exp=in_(-60))))


def test_a_key_not_published_is_refused(everything):
    verifier, _ = everything
    impostor = rsa_key("rsa-1")  # same kid, another key pair
    with pytest.raises(NotAuthorized, match="signature"):
        verifier.verify(impostor.sign(claims()))
    with pytest.raises(NotAuthorized, match="does not publish"):
        verifier.verify(rsa_key("rsa-unknown").sign(claims()))
    with pytest.raises(NotAuthorized, match="kid"):
        verifier.verify(jwt.encode(claims(), impostor.private, algorithm="RS256"))
