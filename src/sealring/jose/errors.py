"""JOSE errors: one class per machine-readable code.

Every class subclasses :class:`JoseError` (itself a :class:`~sealring.errors.SealringError`) and
carries a fixed ``code``. Messages are safe to show to the party that sent the token: they never
contain key material, and never echo more of the input than a short name.
"""

from __future__ import annotations

from typing import ClassVar

from sealring.errors import ErrorCode, SealringError

__all__ = [
    "AlgorithmNotAllowed",
    "AmbiguousKey",
    "ExpiredToken",
    "ImmatureToken",
    "InvalidAudience",
    "InvalidClaim",
    "InvalidIssuer",
    "InvalidKey",
    "InvalidKeySet",
    "InvalidSignature",
    "InvalidTokenType",
    "JoseError",
    "KeyNotFound",
    "MalformedToken",
    "MissingClaim",
    "UnsupportedCritical",
]


class JoseError(SealringError):
    """Base of every error raised by :mod:`sealring.jose`."""

    code: ClassVar[ErrorCode] = "jose_error"


class MalformedToken(JoseError):
    """Segments, base64url, JSON, header shape or a size cap (RFC 7515 §5.2, §7.1)."""

    code = "malformed"


class UnsupportedCritical(JoseError):
    """``crit`` names an extension this implementation does not understand (RFC 7515 §4.1.11)."""

    code = "unsupported_crit"


class AlgorithmNotAllowed(JoseError):
    """The header's ``alg`` is not allowed, unknown, or not the algorithm bound to the key."""

    code = "alg_not_allowed"


class KeyNotFound(JoseError):
    """No key of the configured set is the one for this token."""

    code: ClassVar[ErrorCode] = "unknown_kid"


class AmbiguousKey(KeyNotFound):
    """Several keys of the set fit a token without ``kid``, so none is *the* one (RFC 7515
    §4.1.4): refused rather than tried one after another."""

    code = "ambiguous_key"


class InvalidSignature(JoseError):
    """The signature does not verify under the selected key."""

    code = "bad_signature"


class InvalidKey(JoseError):
    """A JWK that cannot be imported or is not acceptable (RFC 7517, RFC 7518 §6)."""

    code = "invalid_key"


class InvalidKeySet(JoseError):
    """A JWK Set document refused as a whole (RFC 7517 §5)."""

    code = "invalid_key_set"


class ExpiredToken(JoseError):
    """``exp`` is in the past beyond the leeway (RFC 7519 §4.1.4)."""

    code = "token_expired"


class ImmatureToken(JoseError):
    """``nbf`` (or ``iat``) is in the future beyond the leeway (RFC 7519 §4.1.5)."""

    code = "token_not_yet_valid"


class _ClaimError(JoseError):
    claim: str

    def __init__(self, message: str, *, claim: str) -> None:
        super().__init__(message)
        self.claim = claim


class InvalidClaim(_ClaimError):
    """A claim has the wrong type or value; ``.claim`` names it."""

    code = "invalid_claim"


class MissingClaim(_ClaimError):
    """A required claim is absent; ``.claim`` names it."""

    code = "missing_claim"


class InvalidIssuer(JoseError):
    """``iss`` is not the expected issuer (RFC 7519 §4.1.1, exact string comparison)."""

    code = "invalid_issuer"


class InvalidAudience(JoseError):
    """None of ``aud`` is an expected audience (RFC 7519 §4.1.3)."""

    code = "invalid_audience"


class InvalidTokenType(JoseError):
    """The header ``typ`` is not the expected media type (RFC 9068 §4)."""

    code = "invalid_type"
