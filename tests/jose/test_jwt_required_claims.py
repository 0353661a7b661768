"""RFC 7519 §4.1 presence rules: a claim the verifier requires is never optional.

Each rule is checked through every entry point that applies it (``JWTVerifier``, ``ClaimRules``,
``validate_claims``), since the first two normalise ``required`` once and the normalisation is
where a slip would drop a claim.
"""

from __future__ import annotations

import pytest

from sealring.jose import (
    ClaimRules,
    ExpiredToken,
    InvalidIssuer,
    JWTVerifier,
    KeySet,
    LocalSigner,
    MissingClaim,
    encode_jwt,
    validate_claims,
)
from tests.helpers.clock import T0 as NOW
from tests.helpers.jose import key

ISSUER = "https://as.example"
FULL = {"iss": ISSUER, "sub": "alice", "aud": "api", "exp": NOW + 60, "jti": "j1"}


def _token(claims: dict[str, object], typ: str | None = "JWT") -> str:
    return encode_jwt(claims, LocalSigner(key("ES256")), typ=typ)


def _verifier(**options: object) -> JWTVerifier:
    return JWTVerifier(KeySet.of(key("ES256")), clock=lambda: NOW, **options)  # type: ignore[arg-type]


def _without(name: str) -> dict[str, object]:
    return {k: v for k, v in FULL.items() if k != name}


@pytest.mark.parametrize("name", ["sub", "jti", "aud", "iss"])
def test_required_claim_is_enforced_by_the_verifier(name: str) -> None:
    verifier = _verifier(required=("exp", name))
    assert verifier.verify(_token(FULL)).claims["sub"] == "alice"
    with pytest.raises(MissingClaim) as caught:
        verifier.verify(_token(_without(name)))
    assert caught.value.claim == name


@pytest.mark.parametrize("name", ["sub", "jti", "aud", "iss", "exp"])
def test_required_claim_is_enforced_by_claim_rules(name: str) -> None:
    rules = ClaimRules(required=("exp", name))
    rules.check(FULL, NOW)
    with pytest.raises(MissingClaim) as caught:
        rules.check(_without(name), NOW)
    assert caught.value.claim == name


@pytest.mark.parametrize("name", ["sub", "jti", "aud", "iss", "exp"])
def test_required_claim_is_enforced_by_validate_claims(name: str) -> None:
    validate_claims(FULL, now=NOW, required=("exp", name))
    with pytest.raises(MissingClaim) as caught:
        validate_claims(_without(name), now=NOW, required=("exp", name))
    assert caught.value.claim == name


def test_required_sub_is_enforced_whatever_its_position() -> None:
    for required in (("sub", "exp"), ("exp", "sub"), ("exp", "exp", "sub"), ("sub",)):
        with pytest.raises(MissingClaim) as caught:
            _verifier(required=required).verify(_token(_without("sub")))
        assert caught.value.claim == "sub"


def test_required_iss_is_enforced_without_a_configured_issuer() -> None:
    verifier = _verifier(required=("exp", "iss"))
    assert verifier.verify(_token(FULL)).claims["iss"] == ISSUER
    with pytest.raises(MissingClaim) as caught:
        verifier.verify(_token(_without("iss")))
    assert caught.value.claim == "iss"


def test_configured_issuer_requires_iss_even_when_not_listed() -> None:
    verifier = _verifier(issuer=ISSUER, required=("exp",))
    assert verifier.verify(_token(FULL)).claims["iss"] == ISSUER
    with pytest.raises(MissingClaim) as caught:
        verifier.verify(_token(_without("iss")))
    assert caught.value.claim == "iss"
    with pytest.raises(InvalidIssuer):
        verifier.verify(_token({**FULL, "iss": ISSUER + "/"}))


def test_configured_issuer_listed_in_required_is_checked_once_and_exactly() -> None:
    verifier = _verifier(issuer=ISSUER, required=("exp", "iss", "sub"))
    assert verifier.verify(_token(FULL)).claims["sub"] == "alice"
    with pytest.raises(MissingClaim) as caught:
        verifier.verify(_token(_without("iss")))
    assert caught.value.claim == "iss"
    with pytest.raises(MissingClaim) as caught:
        verifier.verify(_token(_without("sub")))
    assert caught.value.claim == "sub"


def test_exp_is_required_by_default() -> None:
    with pytest.raises(MissingClaim) as caught:
        _verifier().verify(_token(_without("exp")))
    assert caught.value.claim == "exp"
    with pytest.raises(MissingClaim) as caught:
        ClaimRules().check(_without("exp"), NOW)
    assert caught.value.claim == "exp"


def test_exp_may_be_left_optional_for_plain_jwts() -> None:
    verified = _verifier(required=()).verify(_token(_without("exp")))
    assert "exp" not in verified.claims
    ClaimRules(required=()).check(_without("exp"), NOW)
    # An exp that is present is still checked.
    with pytest.raises(ExpiredToken):
        _verifier(required=()).verify(_token({**FULL, "exp": NOW - 1}))


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT"])
def test_access_tokens_require_exp_whatever_required_says(typ: str) -> None:
    verifier = _verifier(typ=typ, required=("sub",))
    assert verifier.verify(_token(FULL, typ="at+jwt")).claims["sub"] == "alice"
    with pytest.raises(MissingClaim) as caught:
        verifier.verify(_token(_without("exp"), typ="at+jwt"))
    assert caught.value.claim == "exp"
    # Forcing exp keeps the other required claims.
    with pytest.raises(MissingClaim) as caught:
        verifier.verify(_token(_without("sub"), typ="at+jwt"))
    assert caught.value.claim == "sub"


def test_non_access_token_type_does_not_force_exp() -> None:
    verifier = _verifier(typ="JWT", required=("sub",))
    assert "exp" not in verifier.verify(_token(_without("exp"))).claims


def test_required_as_a_string_is_refused() -> None:
    with pytest.raises(TypeError):
        _verifier(required="sub")
    with pytest.raises(TypeError):
        ClaimRules(required="sub")
    with pytest.raises(TypeError):
        validate_claims(FULL, now=NOW, required="sub")
