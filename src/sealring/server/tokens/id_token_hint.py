"""``id_token_hint`` (OIDC Core §3.1.2.1) and RP-Initiated Logout §2: an ID token this server
issued, presented back as a hint about who the user is.

It must be signed by one of this server's published keys and name this issuer; an expired one is
accepted (the hint is about a past login, and RP-Initiated Logout §4 says the OP should accept it
after expiry).  An access token (``typ: at+jwt``) is not an ID token and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from sealring.jose.errors import InvalidClaim
from sealring.jose.jwks import KeySet
from sealring.jose.jws import verify_compact
from sealring.jose.jwt import check_type, decode_payload
from sealring.server.tokens.id_token import ID_TOKEN_TYPE

__all__ = ["IdTokenHint", "read_id_token_hint"]


@dataclass(frozen=True)
class IdTokenHint:
    subject: str
    audience: tuple[str, ...]
    session_id: str | None


def read_id_token_hint(token: str, keys: KeySet, *, issuer: str) -> IdTokenHint:
    """Verify ``token`` as one of this server's ID tokens, expiry aside; raises :class:`JoseError`."""
    jws = verify_compact(token, keys)
    check_type(jws.header, ID_TOKEN_TYPE)
    claims = decode_payload(jws)
    sub, aud, sid = claims.get("sub"), claims.get("aud"), claims.get("sid")
    if claims.get("iss") != issuer:
        raise InvalidClaim("the hint was not issued by this server", claim="iss")
    if not isinstance(sub, str) or not sub:
        raise InvalidClaim("the hint has no subject", claim="sub")
    audience = (aud,) if isinstance(aud, str) else tuple(aud) if isinstance(aud, list) else ()
    if not audience or not all(isinstance(a, str) for a in audience):
        raise InvalidClaim("the hint has no audience", claim="aud")
    if sid is not None and not isinstance(sid, str):
        raise InvalidClaim("sid must be a string", claim="sid")
    return IdTokenHint(sub, audience, sid)
