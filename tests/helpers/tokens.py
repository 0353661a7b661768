"""Keys and RFC 9068 access tokens signed for real, as an authorization server would mint them."""

from __future__ import annotations

import secrets

from sealring.jose.jwk import JWK
from sealring.jose.jws import LocalSigner
from sealring.jose.jwt import encode_jwt
from tests.helpers.clock import T0

AUDIENCE = "https://api.example"


_KEY_CACHE: dict[str, JWK] = {}


def new_key(alg: str = "ES256", kid: str | None = None) -> JWK:
    """A private key; RSA generation is slow, so RSA keys are reused under new kids."""
    if alg.startswith(("RS", "PS")):
        base = _KEY_CACHE.get(alg)
        if base is None:
            base = _KEY_CACHE[alg] = JWK.generate(alg)
        return JWK.from_key(base.private_key(), alg=alg, kid=kid or secrets.token_hex(8))
    key = JWK.generate(alg)
    return JWK.from_key(key.private_key(), alg=alg, kid=kid or secrets.token_hex(8))


def mint(
    key: JWK,
    *,
    issuer: str,
    now: float = T0,
    lifetime: float = 600,
    audience: str = AUDIENCE,
    scope: str | None = "items:read",
    typ: str | None = "at+jwt",
    **extra: object,
) -> str:
    claims: dict[str, object] = {
        "iss": issuer,
        "sub": "client-1",
        "aud": audience,
        "client_id": "client-1",
        "iat": int(now),
        "exp": int(now + lifetime),
        "jti": secrets.token_hex(8),
    }
    if scope is not None:
        claims["scope"] = scope
    claims.update(extra)
    return encode_jwt(claims, LocalSigner(key), typ=typ)
