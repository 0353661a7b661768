"""Token revocation (RFC 7009).

Access tokens are JWTs verified by resource servers on their own, so revocation records the
token's ``jti`` until the token's ``exp``; introspection then reports it inactive.  (A resource
server that verifies locally does not see the revocation: docs/server.md, "Revocation".)
"""

from __future__ import annotations

import anyio.to_thread
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from sealring.jose.errors import JoseError
from sealring.server.client_auth import extract_credentials
from sealring.server.clients import Client
from sealring.server.errors import (
    NO_STORE_HEADERS,
    InvalidRequest,
    UnauthorizedClient,
)
from sealring.server.forms import read_form
from sealring.server.models import RevokedToken
from sealring.server.state import ServerState, oauth_endpoint, state_of

__all__ = ["TOKEN_TYPE_HINTS", "RevocationStore", "revocation_endpoint", "token_request"]

TOKEN_TYPE_HINTS = ("access_token", "refresh_token")


class RevocationStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def revoke(self, jti: str, client_id: str, expires_at: float, now: float) -> None:
        try:
            with Session(self._engine) as session, session.begin():
                session.add(
                    RevokedToken(
                        jti=jti, client_id=client_id, expires_at=expires_at, revoked_at=now
                    )
                )
        except IntegrityError:
            pass  # revoked already: RFC 7009 §2.2, revocation is idempotent

    def is_revoked(self, jti: str) -> bool:
        with Session(self._engine) as session:
            return (
                session.scalar(select(RevokedToken.jti).where(RevokedToken.jti == jti)) is not None
            )

    def prune(self, now: float) -> int:
        with Session(self._engine) as session, session.begin():
            result = session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))
            return int(result.rowcount)  # type: ignore[attr-defined]


async def token_request(
    request: Request, state: ServerState, endpoint: str, *, allow_public: bool = False
) -> tuple[Client, str]:
    """The common part of RFC 7009 §2.1 and RFC 7662 §2.1: authenticate, then ``token``.

    ``token_type_hint`` is read (so that repeating it is ``invalid_request``) and then ignored:
    this server issues access tokens only and always looks the token up as one, and RFC 7009
    §2.1 says an invalid hint "is ignored ... and does not influence the revocation response".
    """
    form = await read_form(request, state.settings.max_body_size)
    creds = extract_credentials(request.headers.getlist("authorization"), form)
    token = form.get("token")
    form.get("token_type_hint")
    client = await state.authenticator.authenticate(
        creds, endpoint=endpoint, allow_public=allow_public
    )
    request.scope["sealring.client_id"] = client.client_id
    if token is None:
        raise InvalidRequest("token is required")
    return client, token


@oauth_endpoint("revocation")
async def revocation_endpoint(request: Request) -> Response:
    state = state_of(request)
    client, token = await token_request(
        request, state, state.settings.revocation_endpoint, allow_public=True
    )
    try:
        verified = state.verifier.verify(token)
    except JoseError:
        # §2.2: an invalid, expired or foreign token is not an error; there is nothing to revoke.
        return Response(b"", status_code=200, headers=dict(NO_STORE_HEADERS))
    claims = verified.claims
    exp = claims["exp"]
    assert isinstance(exp, int | float)  # validated as a NumericDate by the verifier
    if claims.get("client_id") != client.client_id:
        # §2.1: the token must have been issued to the client asking for its revocation.
        raise UnauthorizedClient("the token was not issued to this client")
    await anyio.to_thread.run_sync(
        state.revocations.revoke,
        str(claims["jti"]),
        client.client_id,
        float(exp),
        state.clock(),
    )
    return Response(b"", status_code=200, headers=dict(NO_STORE_HEADERS))
