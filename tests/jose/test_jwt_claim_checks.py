"""RFC 7519 §4.1 claim checks: each failure names its claim, and each time limit holds at its edge.

Callers switch on the error class and ``.claim`` (docs/jose.md), so both are pinned here; the
message wording is not.
"""

from __future__ import annotations

import pytest

from sealring.jose import (
    ClaimRules,
    ExpiredToken,
    ImmatureToken,
    InvalidAudience,
    InvalidClaim,
    InvalidTokenType,
    JWTVerifier,
    KeySet,
    LocalSigner,
    MalformedToken,
    MissingClaim,
    check_type,
    decode_payload,
    encode_jwt,
    parse_compact,
    sign_compact,
    validate_claims,
)
from tests.helpers.clock import T0 as NOW
from tests.helpers.jose import key


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("exp", "1800000060"),
        ("exp", True),
        ("nbf", "0"),
        ("iat", "1800000000"),
        ("iat", None),
        ("iss", 7),
        ("sub", 123),
        ("sub", ["alice"]),
        ("jti", 5),
        ("aud", 5),
        ("aud", ["api", 5]),
        ("aud", {"api": True}),
    ],
)
def test_a_claim_of_the_wrong_type_is_refused_and_named(name: str, value: object) -> None:
    claims = {"exp": NOW + 60, name: value}
    with pytest.raises(InvalidClaim) as caught:
        validate_claims(claims, now=NOW, required=())
    assert caught.value.claim == name
    with pytest.raises(InvalidClaim) as caught:
        ClaimRules(required=()).check(claims, NOW)
    assert caught.value.claim == name


def test_numeric_dates_before_the_epoch_are_dates() -> None:
    # NumericDate is any number within +-2**53 (RFC 7519 §2): a past one is valid, not malformed.
    with pytest.raises(ExpiredToken):
        validate_claims({"exp": -1000}, now=NOW)
    validate_claims({"exp": NOW + 60, "iat": -1000, "nbf": -1000}, now=NOW)
    validate_claims({"exp": -1000, "iat": -2000}, now=-1500)
    with pytest.raises(ImmatureToken):
        validate_claims({"exp": -100, "iat": -1000}, now=-5000)


@pytest.mark.parametrize("leeway", [0, 30])
def test_exp_holds_until_leeway_before_it_and_not_at_it(leeway: float) -> None:
    # RFC 7519 §4.1.4: the current time MUST be before exp (leeway added to the clock skew).
    exp = NOW
    validate_claims({"exp": exp}, now=exp + leeway - 0.5, leeway=leeway)
    with pytest.raises(ExpiredToken):
        validate_claims({"exp": exp}, now=exp + leeway, leeway=leeway)


@pytest.mark.parametrize("leeway", [0, 30])
def test_iat_may_be_up_to_leeway_in_the_future(leeway: float) -> None:
    validate_claims({"exp": NOW + 600, "iat": NOW + leeway}, now=NOW, leeway=leeway)
    with pytest.raises(ImmatureToken):
        validate_claims({"exp": NOW + 600, "iat": NOW + leeway + 0.5}, now=NOW, leeway=leeway)


@pytest.mark.parametrize("leeway", [0, 30])
def test_nbf_is_reached_leeway_early_and_not_before(leeway: float) -> None:
    # RFC 7519 §4.1.5: the current time MUST be after or equal to nbf.
    validate_claims({"exp": NOW + 600, "nbf": NOW + leeway}, now=NOW, leeway=leeway)
    with pytest.raises(ImmatureToken):
        validate_claims({"exp": NOW + 600, "nbf": NOW + leeway + 0.5}, now=NOW, leeway=leeway)


def test_claim_rules_default_to_no_leeway() -> None:
    rules = ClaimRules()
    rules.check({"exp": NOW + 0.5}, NOW)
    with pytest.raises(ExpiredToken):
        rules.check({"exp": NOW}, NOW)
    with pytest.raises(ImmatureToken):
        rules.check({"exp": NOW + 60, "iat": NOW + 0.5}, NOW)


def test_verifier_defaults_to_no_leeway() -> None:
    verifier = JWTVerifier(KeySet.of(key("ES256")), clock=lambda: NOW)
    signer = LocalSigner(key("ES256"))
    assert verifier.verify(encode_jwt({"exp": NOW + 0.5}, signer)).claims["exp"] == NOW + 0.5
    with pytest.raises(ExpiredToken):
        verifier.verify(encode_jwt({"exp": NOW}, signer))


def test_an_audience_list_is_accepted_when_no_audience_is_configured() -> None:
    validate_claims({"exp": NOW + 60, "aud": ["a", "b"]}, now=NOW)
    validate_claims({"exp": NOW + 60, "aud": []}, now=NOW)
    validate_claims({"exp": NOW + 60, "aud": "a"}, now=NOW)


def test_an_audience_list_must_contain_ours() -> None:
    validate_claims({"exp": NOW + 60, "aud": ["other", "api"]}, now=NOW, audience="api")
    with pytest.raises(InvalidAudience):
        validate_claims({"exp": NOW + 60, "aud": ["other"]}, now=NOW, audience="api")
    with pytest.raises(InvalidAudience):
        validate_claims({"exp": NOW + 60, "aud": []}, now=NOW, audience="api")


def test_the_application_prefix_is_dropped_only_without_another_slash() -> None:
    # RFC 7515 §4.1.9: "application/" may be omitted only when no other "/" appears.
    check_type({"typ": "application/at+jwt"}, "at+jwt")
    check_type({"typ": "at+jwt"}, "application/at+jwt")
    with pytest.raises(InvalidTokenType):
        check_type({"typ": "application/example/at+jwt"}, "example/at+jwt")
    check_type({"typ": "application/example/at+jwt"}, "application/example/at+jwt")


def test_a_malformed_claims_set_is_reported_as_the_claims() -> None:
    # The header parsed: the error must point at the payload, not at the header.
    token = sign_compact(b"[1]", LocalSigner(key("ES256")))
    with pytest.raises(MalformedToken, match=r"^JWT claims: "):
        decode_payload(parse_compact(token))
    with pytest.raises(MalformedToken, match=r"^JWT claims: "):
        JWTVerifier(KeySet.of(key("ES256")), clock=lambda: NOW).verify(token)


def test_the_verifier_checks_its_audience() -> None:
    signer = LocalSigner(key("ES256"))
    verifier = JWTVerifier(KeySet.of(key("ES256")), audience="api", clock=lambda: NOW)
    assert verifier.verify(encode_jwt({"exp": NOW + 60, "aud": ["x", "api"]}, signer))
    with pytest.raises(InvalidAudience):
        verifier.verify(encode_jwt({"exp": NOW + 60, "aud": "other"}, signer))
    with pytest.raises(MissingClaim) as caught:
        verifier.verify(encode_jwt({"exp": NOW + 60}, signer))
    assert caught.value.claim == "aud"


def test_the_verifier_applies_its_leeway() -> None:
    signer = LocalSigner(key("ES256"))
    verifier = JWTVerifier(KeySet.of(key("ES256")), leeway=30, clock=lambda: NOW)
    assert verifier.verify(encode_jwt({"exp": NOW - 29.5}, signer))
    with pytest.raises(ExpiredToken):
        verifier.verify(encode_jwt({"exp": NOW - 30}, signer))


@pytest.mark.parametrize("audience", ["api", ["other", "api"], ("other", "api"), {"api"}])
def test_claim_rules_check_the_audience(audience: object) -> None:
    rules = ClaimRules(audience=audience)  # type: ignore[arg-type]
    rules.check({"exp": NOW + 60, "aud": "api"}, NOW)
    rules.check({"exp": NOW + 60, "aud": ["x", "api"]}, NOW)
    with pytest.raises(InvalidAudience):
        rules.check({"exp": NOW + 60, "aud": "nope"}, NOW)
    with pytest.raises(MissingClaim) as caught:
        rules.check({"exp": NOW + 60}, NOW)
    assert caught.value.claim == "aud"


def test_validate_claims_names_a_missing_audience() -> None:
    with pytest.raises(MissingClaim) as caught:
        validate_claims({"exp": NOW + 60}, now=NOW, audience="api")
    assert caught.value.claim == "aud"
