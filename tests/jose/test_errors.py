"""The JOSE error classes (jose/errors.py): one fixed code per class."""

from __future__ import annotations

from sealring.errors import SealringError
from sealring.jose import (
    AlgorithmNotAllowed,
    AmbiguousKey,
    ExpiredToken,
    ImmatureToken,
    InvalidAudience,
    InvalidClaim,
    InvalidIssuer,
    InvalidKey,
    InvalidKeySet,
    InvalidSignature,
    InvalidTokenType,
    JoseError,
    KeyNotFound,
    MalformedToken,
    MissingClaim,
    UnsupportedCritical,
)


def test_error_codes() -> None:
    expected = {
        JoseError: "jose_error",
        MalformedToken: "malformed",
        UnsupportedCritical: "unsupported_crit",
        AlgorithmNotAllowed: "alg_not_allowed",
        KeyNotFound: "unknown_kid",
        AmbiguousKey: "ambiguous_key",
        InvalidSignature: "bad_signature",
        InvalidKey: "invalid_key",
        InvalidKeySet: "invalid_key_set",
        ExpiredToken: "token_expired",
        ImmatureToken: "token_not_yet_valid",
        InvalidClaim: "invalid_claim",
        MissingClaim: "missing_claim",
        InvalidIssuer: "invalid_issuer",
        InvalidAudience: "invalid_audience",
        InvalidTokenType: "invalid_type",
    }
    for cls, code in expected.items():
        assert issubclass(cls, SealringError)
        assert issubclass(cls, JoseError)
        assert cls.code == code
    assert MissingClaim("x", claim="exp").claim == "exp"
