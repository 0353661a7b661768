"""The login/consent decisions of /authorize (OIDC Core §3.1.2.1) and id_token_hint reading,
as pure functions: one test per rule."""

from __future__ import annotations

import dataclasses

import pytest

from sealring.jose.errors import InvalidClaim, JoseError
from sealring.jose.jwk import JWK
from sealring.jose.jwks import KeySet
from sealring.jose.jws import LocalSigner
from sealring.jose.jwt import encode_jwt
from sealring.server.protocol.authorization_request import AuthorizationRequest
from sealring.server.protocol.prompt import SignedIn, consent_needed, login_reasons
from sealring.server.tokens.id_token import Authentication, IDToken
from sealring.server.tokens.id_token_hint import read_id_token_hint

NOW = 1_800_000_000.0
ISSUER = "https://login.example.com"
REQUEST = AuthorizationRequest(
    client_id="app",
    redirect_uri="https://app.example/cb",
    redirect_uri_in_request=True,
    scopes=("openid", "profile"),
    code_challenge="x" * 43,
    code_challenge_method="S256",
    issuer=ISSUER,
)
ALICE = SignedIn("sub-alice", "alice", NOW - 100)


def reasons(signed_in: SignedIn | None = ALICE, *, hint: str | None = None,
            login_hint: str | None = None, **request: object) -> tuple[str, ...]:  # fmt: skip
    return login_reasons(
        dataclasses.replace(REQUEST, **request),  # type: ignore[arg-type]
        signed_in,
        hint_subject=hint,
        login_hint=login_hint,
        now=NOW,
    )


def test_a_live_session_needs_no_login() -> None:
    assert reasons() == ()


def test_no_session_needs_login() -> None:
    assert reasons(None) == ("no_session",)


@pytest.mark.parametrize("prompt", ["login", "select_account"])
def test_prompt_login_needs_login(prompt: str) -> None:
    assert reasons(prompt=frozenset({prompt})) == ("prompt",)
    assert reasons(prompt=frozenset({"consent"})) == ()


@pytest.mark.parametrize(("max_age", "again"), [(0, True), (99, True), (100, False), (101, False)])
def test_max_age_counts_from_auth_time(max_age: int, again: bool) -> None:
    assert (reasons(max_age=max_age) == ("max_age",)) is again


def test_max_age_0_means_a_new_login_even_right_after_one() -> None:
    just_now = dataclasses.replace(ALICE, auth_time=NOW)
    assert reasons(just_now, max_age=0) == ("max_age",)
    assert reasons(just_now, max_age=1) == ()


def test_a_hint_for_another_subject_needs_login() -> None:
    assert reasons(hint="sub-bob") == ("id_token_hint",)
    assert reasons(hint="sub-alice") == ()
    assert reasons(login_hint="bob") == ("login_hint",)
    assert reasons(login_hint="alice") == ()


def test_consent_is_asked_for_what_was_not_allowed() -> None:
    assert consent_needed(REQUEST, skip_consent=False, remembered=())
    assert consent_needed(REQUEST, skip_consent=False, remembered=("openid",))
    assert not consent_needed(REQUEST, skip_consent=False, remembered=("openid", "profile", "x"))
    assert not consent_needed(REQUEST, skip_consent=False, remembered=("profile", "openid"))
    forced = dataclasses.replace(REQUEST, prompt=frozenset({"consent"}))
    assert consent_needed(forced, skip_consent=False, remembered=("openid", "profile"))
    assert not consent_needed(forced, skip_consent=True, remembered=())


KEY = JWK.generate("ES256")
OTHER = JWK.generate("ES256")
KEYS = KeySet.of(KEY.public())


def id_token(key: JWK = KEY, *, issuer: str = ISSUER, now: float = NOW, typ: str = "JWT") -> str:
    token = IDToken(
        issuer=issuer,
        client_id="app",
        authentication=Authentication("sub-alice", auth_time=int(now) - 5, session_id="sid-1"),
        now=now,
        lifetime=60,
    )
    return encode_jwt(token.claims("ES256"), LocalSigner(key, "ES256"), typ=typ)


def test_our_id_token_is_read_even_when_expired() -> None:
    hint = read_id_token_hint(id_token(now=NOW - 86400 * 30), KEYS, issuer=ISSUER)
    assert hint.subject == "sub-alice"
    assert hint.audience == ("app",)
    assert hint.session_id == "sid-1"


@pytest.mark.parametrize(
    "token",
    [
        id_token(OTHER),  # not our key
        id_token(issuer="https://other.example"),  # not our issuer
        id_token(typ="at+jwt"),  # an access token is no ID token
        id_token()[:-4] + "AAAA",  # tampered
    ],
    ids=["foreign-key", "foreign-issuer", "access-token", "tampered"],
)
def test_anything_else_is_refused(token: str) -> None:
    with pytest.raises(JoseError):
        read_id_token_hint(token, KEYS, issuer=ISSUER)


def signed_hint(claims: dict[str, object]) -> str:
    return encode_jwt(claims, LocalSigner(KEY, "ES256"), typ="JWT")


HINT = {"iss": ISSUER, "sub": "sub-alice", "aud": "app", "exp": int(NOW) + 60}


def test_a_hint_for_several_audiences_names_them_all() -> None:
    hint = read_id_token_hint(signed_hint({**HINT, "aud": ["app", "other"]}), KEYS, issuer=ISSUER)
    assert hint.audience == ("app", "other")
    assert hint.session_id is None


@pytest.mark.parametrize(
    ("change", "claim"),
    [
        ({"iss": None}, "iss"),
        ({"iss": ISSUER + "/"}, "iss"),
        ({"sub": None}, "sub"),
        ({"sub": ""}, "sub"),
        ({"sub": 7}, "sub"),
        ({"aud": None}, "aud"),
        ({"aud": []}, "aud"),
        ({"aud": ["app", 7]}, "aud"),
        ({"aud": 7}, "aud"),
        ({"aud": {"app": True}}, "aud"),
        ({"sid": 7}, "sid"),
        ({"sid": ["sid-1"]}, "sid"),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else v,
)
def test_a_signed_hint_without_our_issuer_a_subject_or_an_audience_is_refused_naming_the_claim(
    change: dict[str, object], claim: str
) -> None:
    claims = {k: v for k, v in {**HINT, **change}.items() if v is not None}
    with pytest.raises(InvalidClaim) as refused:
        read_id_token_hint(signed_hint(claims), KEYS, issuer=ISSUER)
    assert refused.value.claim == claim
