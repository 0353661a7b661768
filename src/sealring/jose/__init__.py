"""The JOSE core: strict JWK, JWK Set, JWS and JWT on ``cryptography`` alone (no I/O, no clock).

See ``docs/architecture.md`` for the contract and ``docs/jose.md`` for the rules it enforces.
"""

from sealring.jose import errors
from sealring.jose.algorithms import ALGORITHMS
from sealring.jose.errors import *  # noqa: F403  (the error classes: errors.__all__)
from sealring.jose.jwk import JWK
from sealring.jose.jwks import KeySet
from sealring.jose.jws import (
    DEFAULT_MAX_HEADER_SIZE,
    DEFAULT_MAX_TOKEN_SIZE,
    CompactJWS,
    LocalSigner,
    Signer,
    parse_compact,
    select_key,
    sign_compact,
    verify_compact,
    verify_signature,
)
from sealring.jose.jwt import (
    ACCESS_TOKEN_TYPE,
    ClaimRules,
    JWTVerifier,
    VerifiedJWT,
    check_type,
    decode_payload,
    encode_jwt,
    validate_claims,
)

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "ALGORITHMS",
    "DEFAULT_MAX_HEADER_SIZE",
    "DEFAULT_MAX_TOKEN_SIZE",
    "JWK",
    "ClaimRules",
    "CompactJWS",
    "JWTVerifier",
    "KeySet",
    "LocalSigner",
    "Signer",
    "VerifiedJWT",
    "check_type",
    "decode_payload",
    "encode_jwt",
    "parse_compact",
    "select_key",
    "sign_compact",
    "validate_claims",
    "verify_compact",
    "verify_signature",
]
__all__ += errors.__all__
