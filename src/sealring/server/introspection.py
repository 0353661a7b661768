"""Token introspection (RFC 7662).

Only authenticated confidential clients may call it (§2.1); a public client or an anonymous
caller gets ``invalid_client``.  Any token that is not an unexpired, unrevoked access token of
this issuer is reported as ``{"active": false}`` and nothing more (§2.2).
"""

from __future__ import annotations

import json

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from sealring.jose.errors import JoseError
from sealring.server.errors import NO_STORE_HEADERS
from sealring.server.revocation import token_request
from sealring.server.state import oauth_endpoint, state_of

__all__ = ["INTROSPECTED_CLAIMS", "introspection_endpoint"]

INTROSPECTED_CLAIMS = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti")


def _json(body: dict[str, object]) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        headers=dict(NO_STORE_HEADERS),
        media_type="application/json",
    )


@oauth_endpoint("introspection")
async def introspection_endpoint(request: Request) -> Response:
    state = state_of(request)
    _, token = await token_request(request, state, state.settings.introspection_endpoint)
    try:
        claims = state.verifier.verify(token).claims
    except JoseError:
        return _json({"active": False})
    if await anyio.to_thread.run_sync(state.revocations.is_revoked, str(claims["jti"])):
        return _json({"active": False})
    body: dict[str, object] = {"active": True, "token_type": "Bearer"}
    body.update({name: claims[name] for name in INTROSPECTED_CLAIMS if name in claims})
    return _json(body)
