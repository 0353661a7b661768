"""Token introspection (RFC 7662).

Only authenticated confidential clients may call it (§2.1); a public client or an anonymous
caller gets ``invalid_client``.  Any token that is not an unexpired, unrevoked access token of
this issuer is reported as ``{"active": false}`` and nothing more (§2.2).

§4 ("the authorization server MUST determine whether or not the token can be used at the
protected resource making the introspection call"): a caller learns about a token only when it
was issued to the caller itself, or when the caller holds the ``introspect`` permission and is
registered for one of the token's audiences (a resource server).  Anything else is answered
``{"active": false}``, exactly as for a token that does not exist, so a caller cannot probe
other clients' tokens.  Calls count against the caller's rate limit, as at the token endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from sealring.jose.errors import JoseError
from sealring.server.clients import Client
from sealring.server.context import ServerContext
from sealring.server.endpoints._token_call import token_request
from sealring.server.grants.user_tokens import GRANT_CLAIM
from sealring.server.http.endpoint import context_of, oauth_endpoint
from sealring.server.http.responses import json_response
from sealring.server.routes import endpoint_url

__all__ = ["INTROSPECTED_CLAIMS", "introspection_endpoint", "may_introspect"]

INTROSPECTED_CLAIMS = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti")


@oauth_endpoint("introspection")
async def introspection_endpoint(request: Request) -> Response:
    context = context_of(request)
    client, token = await token_request(
        request, context, endpoint_url(context.settings.issuer, "introspection")
    )
    if context.rate_limiter is not None:
        await context.rate_limiter.check(client.client_id)
    try:
        claims = context.verifier.verify(token).claims
    except JoseError:
        return json_response(await _refresh_token(context, client, token))
    if not may_introspect(client, claims):
        return json_response({"active": False})
    if await context.database.call(context.revocations.is_revoked, str(claims["jti"])):
        return json_response({"active": False})
    grant_id = claims.get(GRANT_CLAIM)
    if grant_id is not None and not await context.database.call(
        context.login.grant_active, str(grant_id), context.clock()
    ):
        # The user's grant was revoked (code replay, refresh-token reuse, /revoke, logout).
        return json_response({"active": False})
    body: dict[str, object] = {"active": True, "token_type": "Bearer"}
    body.update({name: claims[name] for name in INTROSPECTED_CLAIMS if name in claims})
    return json_response(body)


async def _refresh_token(context: ServerContext, client: Client, token: str) -> dict[str, object]:
    """A refresh token of the caller's own: active while usable (unconsumed, unexpired, its
    family not revoked); anyone else's is ``{"active": false}`` like an unknown one (§4)."""
    found = await context.database.call(context.login.refresh_tokens.find, token)
    now = context.clock()
    if (
        found is None
        or found.grant.client_id != client.client_id
        or found.consumed_at is not None
        or now >= found.expires_at
        or not found.grant.active(now)
    ):
        return {"active": False}
    body: dict[str, object] = {
        "active": True,
        "token_type": "refresh_token",
        "client_id": found.grant.client_id,
        "sub": found.grant.subject,
        "exp": int(found.expires_at),
        "iss": context.settings.issuer,
    }
    if found.scope:
        body["scope"] = " ".join(found.scope)
    return body


def may_introspect(caller: Client, claims: Mapping[str, object]) -> bool:
    """RFC 7662 §4: the token's own client, or a permitted resource server of its audience."""
    if claims.get("client_id") == caller.client_id:
        return True
    if not caller.introspect:
        return False
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    return any(a in caller.audiences for a in audiences)
