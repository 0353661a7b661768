"""Token revocation (RFC 7009).

Access tokens are JWTs verified by resource servers on their own, so revocation records the
token's ``jti`` until the token's ``exp``; introspection then reports it inactive.  (A resource
server that verifies locally does not see the revocation: docs/server.md, "Revocation".)
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sealring.jose.errors import JoseError
from sealring.server.endpoints._token_call import token_request
from sealring.server.errors import NO_STORE_HEADERS, UnauthorizedClient
from sealring.server.http.endpoint import context_of, oauth_endpoint
from sealring.server.routes import endpoint_url

__all__ = ["revocation_endpoint"]


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
