"""Token introspection (RFC 7662).

Only authenticated confidential clients may call it (§2.1); a public client or an anonymous
caller gets ``invalid_client``.  Any token that is not an unexpired, unrevoked access token of
this issuer is reported as ``{"active": false}`` and nothing more (§2.2).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sealring.jose.errors import JoseError
from sealring.server.endpoints._token_call import token_request
from sealring.server.http.endpoint import context_of, oauth_endpoint
from sealring.server.http.responses import json_response
from sealring.server.routes import endpoint_url

__all__ = ["INTROSPECTED_CLAIMS", "introspection_endpoint"]

INTROSPECTED_CLAIMS = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti")


@oauth_endpoint("introspection")
async def introspection_endpoint(request: Request) -> Response:
    context = context_of(request)
    _, token = await token_request(
        request, context, endpoint_url(context.settings.issuer, "introspection")
    )
    try:
        claims = context.verifier.verify(token).claims
    except JoseError:
        return json_response({"active": False})
    if await context.database.call(context.revocations.is_revoked, str(claims["jti"])):
        return json_response({"active": False})
    body: dict[str, object] = {"active": True, "token_type": "Bearer"}
    body.update({name: claims[name] for name in INTROSPECTED_CLAIMS if name in claims})
    return json_response(body)
