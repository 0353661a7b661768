"""JWT claims (jose/jwt.py, RFC 7519 §4.1, RFC 9068 §2.1): NumericDates, types, the verifier."""

from __future__ import annotations

import json

import pytest

from sealring.jose import (
    ExpiredToken,
    ImmatureToken,
    InvalidAudience,
    InvalidClaim,
    InvalidIssuer,
    InvalidTokenType,
    JoseError,
    JWTVerifier,
    KeySet,
    LocalSigner,
    MalformedToken,
    MissingClaim,
    check_type,
    encode_jwt,
    sign_compact,
    validate_claims,
)
from tests.helpers.clock import T0
from tests.helpers.jose import key


def test_claims() -> None:
    validate_claims({"exp": T0 + 1}, now=T0)
    with pytest.raises(ExpiredToken):
        validate_claims({"exp": T0}, now=T0)
    validate_claims({"exp": T0 - 5}, now=T0, leeway=10)
    with pytest.raises(MissingClaim) as missing:
        validate_claims({}, now=T0)
    assert missing.value.claim == "exp"
    validate_claims({}, now=T0, required=())
    for bad in (True, "1900000000", None, [1], float("nan"), float("inf")):
        with pytest.raises(InvalidClaim):
            validate_claims({"exp": bad}, now=T0)
    with pytest.raises(ImmatureToken):
        validate_claims({"nbf": T0 + 5}, now=T0, required=())
    validate_claims({"nbf": T0 + 5}, now=T0, leeway=5, required=())
    with pytest.raises(ImmatureToken):
        validate_claims({"iat": T0 + 100}, now=T0, required=())
    with pytest.raises(InvalidIssuer):
        validate_claims(
            {"iss": "https://a.example/"}, now=T0, issuer="https://a.example", required=()
        )
    with pytest.raises(MissingClaim):
        validate_claims({}, now=T0, issuer="https://a.example", required=())
    with pytest.raises(InvalidClaim):
        validate_claims({"iss": 1}, now=T0, required=())
    validate_claims({"aud": "api"}, now=T0, audience="api", required=())
    validate_claims({"aud": ["x", "api"]}, now=T0, audience=["api", "other"], required=())
    with pytest.raises(InvalidAudience):
        validate_claims({"aud": ["x"]}, now=T0, audience="api", required=())
    with pytest.raises(InvalidClaim):
        validate_claims({"aud": [1]}, now=T0, audience="api", required=())
    with pytest.raises(InvalidClaim):
        validate_claims({"aud": {"api": 1}}, now=T0, audience="api", required=())
    with pytest.raises(MissingClaim):
        validate_claims({}, now=T0, audience="api", required=())


@pytest.mark.parametrize(
    "claim",
    ["exp", "nbf", "iat"],
)
@pytest.mark.parametrize(
    "value",
    [10**400, -(10**400), 2**53, -(2**53), 1e308, -1e308],
    ids=["1e400", "-1e400", "2^53", "-2^53", "1e308", "-1e308"],
)
def test_numeric_dates_beyond_2_53_are_refused(claim: str, value: float) -> None:
    # 10**400 must not pass as an "exp" that never comes (and then crash float() downstream).
    claims = {"exp": T0 + 60, claim: value}
    with pytest.raises(InvalidClaim) as caught:
        validate_claims(claims, now=T0)
    assert caught.value.claim == claim
    token = sign_compact(json.dumps(claims).encode(), LocalSigner(key("ES256")))
    with pytest.raises(InvalidClaim):
        JWTVerifier(KeySet.of(key("ES256")), clock=lambda: T0).verify(token)


def test_numeric_dates_within_range_still_work() -> None:
    validate_claims({"exp": 2**53 - 1, "iat": T0 - 0.5, "nbf": 0}, now=T0)


@pytest.mark.parametrize(
    ("now", "leeway", "expired"),
    [(T0, 0, True), (T0 - 0.001, 0, False), (T0 + 30, 30, True), (T0 + 29.999, 30, False)],
)
def test_exp_boundary(now: float, leeway: float, expired: bool) -> None:
    # RFC 7519 §4.1.4: the current time MUST be before exp; at exp (plus leeway) it is not.
    if expired:
        with pytest.raises(ExpiredToken):
            validate_claims({"exp": T0}, now=now, leeway=leeway)
    else:
        validate_claims({"exp": T0}, now=now, leeway=leeway)


def test_a_nan_clock_refuses_every_token() -> None:
    signer = LocalSigner(key("ES256"))
    verifier = JWTVerifier(KeySet.of(key("ES256")), clock=lambda: float("nan"))
    with pytest.raises(ExpiredToken):
        verifier.verify(encode_jwt({"exp": T0 + 60}, signer))
    with pytest.raises(ImmatureToken):
        validate_claims({"nbf": T0}, now=float("nan"), required=())
    with pytest.raises(ImmatureToken):
        validate_claims({"iat": T0}, now=float("nan"), required=())


@pytest.mark.parametrize("leeway", [float("nan"), float("inf"), -1.0])
def test_non_finite_leeway_is_a_configuration_error(leeway: float) -> None:
    # leeway=nan made "now - leeway >= exp" false, so expired tokens verified (sealring verify
    # --leeway nan exited 0 on a token expired decades ago).
    with pytest.raises(ValueError):
        JWTVerifier(KeySet.of(key("ES256")), leeway=leeway)
    with pytest.raises(ValueError):
        validate_claims({"exp": 1}, now=T0, leeway=leeway)


def test_type_rules() -> None:
    check_type({"typ": "at+jwt"}, "at+jwt")
    check_type({"typ": "application/AT+JWT"}, "at+jwt")
    check_type({"typ": "At+Jwt"}, "application/at+jwt")
    check_type({}, None)
    for header in ({"typ": "JWT"}, {}, {"typ": 1}, {"typ": "application/jwt"}):
        with pytest.raises(InvalidTokenType):
            check_type(header, "at+jwt")


def test_verifier_pipeline() -> None:
    a = key("ES256")
    signer = LocalSigner(a)
    claims = {"iss": "https://as.example", "aud": "api", "exp": T0 + 60, "sub": "u"}
    token = encode_jwt(claims, signer, typ="at+jwt")
    verifier = JWTVerifier(
        KeySet.of(a),
        issuer="https://as.example",
        audience="api",
        typ="at+jwt",
        required=(),
        clock=lambda: T0,
    )
    assert verifier.verify(token).claims == claims
    assert verifier.verify(token.encode()).claims == claims
    with pytest.raises(InvalidTokenType):
        verifier.verify(encode_jwt(claims, signer))
    with pytest.raises(MissingClaim):  # at+jwt always needs exp
        verifier.verify(
            encode_jwt({k: v for k, v in claims.items() if k != "exp"}, signer, typ="at+jwt")
        )
    late = JWTVerifier(KeySet.of(a), clock=lambda: T0 + 61)
    with pytest.raises(ExpiredToken):
        late.verify(token)
    with pytest.raises(MalformedToken):
        verifier.verify(sign_compact(b"[1]", signer, header={"typ": "at+jwt"}))
    with pytest.raises(JoseError):
        sign_compact(b"{}", signer, header={"alg": "RS256"})
    with pytest.raises(JoseError):
        encode_jwt({"x": object()}, signer)
