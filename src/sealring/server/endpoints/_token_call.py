"""The common front half of revocation (RFC 7009 §2.1) and introspection (RFC 7662 §2.1)."""

from __future__ import annotations

from starlette.requests import Request

from sealring.server.clients import Client
from sealring.server.context import ServerContext
from sealring.server.errors import InvalidRequest
from sealring.server.http.forms import read_form
from sealring.server.protocol.client_auth import extract_credentials

__all__ = ["TOKEN_TYPE_HINTS", "token_request"]

TOKEN_TYPE_HINTS = ("access_token", "refresh_token")


async def token_request(
    request: Request, context: ServerContext, endpoint: str, *, allow_public: bool = False
) -> tuple[Client, str]:
    """Authenticate the caller, then read ``token``.

    ``token_type_hint`` is read (so that repeating it is ``invalid_request``) and then ignored:
    the token is tried as an access token (a JWT) and then as a refresh token (an opaque
    handle), which cannot be confused, and RFC 7009 §2.1 says an invalid hint "is ignored ...
    and does not influence the revocation response".
    """
    await context.check_address(request.client.host if request.client else None)
    form = await read_form(request, context.settings.max_body_size)
    creds = extract_credentials(request.headers.getlist("authorization"), form)
    token = form.get("token")
    form.get("token_type_hint")
    client = await context.authenticator.authenticate(
        creds, endpoint=endpoint, allow_public=allow_public
    )
    request.scope["sealring.client_id"] = client.client_id
    if token is None:
        raise InvalidRequest("token is required")
    return client, token
