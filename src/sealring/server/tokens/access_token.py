"""JWT access tokens (RFC 9068): the claims this server signs, and checking its own tokens.

The token response (RFC 6749 §5.1) is :class:`IssuedToken`; introspection and revocation read a
token back with :class:`OwnTokenVerifier`, against the keys this server publishes.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sealring.jose.jwks import KeySet
from sealring.jose.jws import Signer
from sealring.jose.jwt import ACCESS_TOKEN_TYPE, JWTVerifier, VerifiedJWT, encode_jwt

__all__ = [
    "IssuedToken",
    "OwnTokenVerifier",
    "PublishedKeys",
    "issue_access_token",
]

# The JSON string encoder json.dumps uses by default (ensure_ascii): quotes and escapes a str.
_json_string: Callable[[str], str] = json.encoder.encode_basestring_ascii

# RFC 9068 §2.2 claims every token of this server carries, so verifying one of ours requires them.
_REQUIRED_CLAIMS = ("exp", "iat", "jti", "client_id", "sub")


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str

    def response_body(self) -> bytes:
        """RFC 6749 §5.1: ``json.dumps`` of ``access_token, token_type, expires_in[, scope]``
        with compact separators, byte for byte, without its encoder's per-call set-up (each
        string through the same escaping function it uses)."""
        scope = ',"scope":' + _json_string(self.scope) if self.scope else ""
        return (
            '{"access_token":' + _json_string(self.access_token)
            + ',"token_type":"Bearer","expires_in":' + str(int(self.expires_in))
            + scope + "}"
        ).encode()  # fmt: skip


def issue_access_token(
    *,
    issuer: str,
    subject: str,
    client_id: str,
    audience: str | Sequence[str],
    scopes: Sequence[str],
    lifetime: int,
    signer: Signer,
    now: float,
    extra_claims: Mapping[str, object] | None = None,
) -> IssuedToken:
    """RFC 9068 §2.2: sign ``iss sub aud exp iat jti client_id [scope]`` with header ``typ: at+jwt``.

    ``extra_claims`` adds claims about the user's login (RFC 9068 §2.2.1 ``auth_time``, and
    ``sid``); it can never replace one of the claims above.
    """
    iat = int(now)
    claims: dict[str, object] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience if isinstance(audience, str) else list(audience),
        "exp": iat + lifetime,
        "iat": iat,
        "jti": secrets.token_urlsafe(16),
        "client_id": client_id,
    }
    scope_text = " ".join(scopes)
    if scope_text:
        claims["scope"] = scope_text
    for name, value in (extra_claims or {}).items():
        if name in claims or name == "scope":
            raise ValueError(f"extra claim {name!r} would replace a core claim")
        claims[name] = value
    token = encode_jwt(claims, signer, typ=ACCESS_TOKEN_TYPE)
    return IssuedToken(token, lifetime, scope_text)


class JWKSLike(Protocol):
    """A published JWK Set document (:class:`sealring.keys.JWKSDocument`)."""

    @property
    def body(self) -> bytes: ...
    @property
    def etag(self) -> str: ...
    @property
    def max_age(self) -> int: ...
    def matches(self, if_none_match: str | None) -> bool: ...


class PublishedKeys(Protocol):
    """Where this server's published keys come from (:meth:`sealring.keys.KeyManager.jwks`)."""

    def jwks(self) -> JWKSLike: ...


class OwnTokenVerifier:
    """Verifies access tokens this server issued, against its own published keys.

    Rebuilt only when the JWKS document changes (its ETag).
    """

    def __init__(
        self, keys: PublishedKeys, issuer: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._clock = clock
        self._etag: str | None = None
        self._verifier: JWTVerifier | None = None

    def verify(self, token: str) -> VerifiedJWT:
        doc = self._keys.jwks()
        if self._verifier is None or doc.etag != self._etag:
            self._verifier = JWTVerifier(
                KeySet.from_json(doc.body),
                issuer=self._issuer,
                typ=ACCESS_TOKEN_TYPE,
                required=_REQUIRED_CLAIMS,
                clock=self._clock,
            )
            self._etag = doc.etag
        return self._verifier.verify(token)
