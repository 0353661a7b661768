"""Token revocation (RFC 7009).

Access tokens are JWTs verified by resource servers on their own, so revocation records the
token's ``jti`` until the token's ``exp``; introspection then reports it inactive.  A refresh
token revokes its whole grant (its family and the access tokens issued from it).  (A resource
server that verifies locally does not see the revocation: docs/server.md, "Revocation".)
"""

from __future__ import annotations

import functools

from starlette.requests import Request
from starlette.responses import Response

from sealring.jose.errors import JoseError
from sealring.server.clients import Client
from sealring.server.context import ServerContext
from sealring.server.endpoints._token_call import token_request
from sealring.server.errors import NO_STORE_HEADERS, UnauthorizedClient
from sealring.server.http.endpoint import context_of, oauth_endpoint
from sealring.server.routes import endpoint_url

__all__ = ["revocation_endpoint"]


async def _revoke_refresh_token(context: ServerContext, client: Client, token: str) -> None:
    """§2.1: revoking a refresh token revokes its grant, and with it the access tokens issued
    from the same grant (they carry its id, so introspection and userinfo refuse them)."""
    found = await context.database.call(context.login.refresh_tokens.find, token)
    if found is None:
        return
    if found.grant.client_id != client.client_id:
        raise UnauthorizedClient("the token was not issued to this client")
    await context.database.call(
        functools.partial(
            context.login.refresh_tokens.revoke_grant,
            found.grant.grant_id,
            now=context.clock(),
            reason="revoked",
        )
    )


@oauth_endpoint("revocation")
async def revocation_endpoint(request: Request) -> Response:
    context = context_of(request)
    client, token = await token_request(
        request,
        context,
        endpoint_url(context.settings.issuer, "revocation"),
        allow_public=True,
    )
    try:
        verified = context.verifier.verify(token)
    except JoseError:
        await _revoke_refresh_token(context, client, token)
        # §2.2: an invalid, expired or foreign token is not an error; there is nothing to revoke.
        return Response(b"", status_code=200, headers=dict(NO_STORE_HEADERS))
    claims = verified.claims
    exp = claims["exp"]
    assert isinstance(exp, int | float)  # validated as a NumericDate by the verifier
    if claims.get("client_id") != client.client_id:
        # §2.1: the token must have been issued to the client asking for its revocation.
        raise UnauthorizedClient("the token was not issued to this client")
    await context.database.call(
        context.revocations.revoke,
        str(claims["jti"]),
        client.client_id,
        float(exp),
        context.clock(),
    )
    return Response(b"", status_code=200, headers=dict(NO_STORE_HEADERS))
