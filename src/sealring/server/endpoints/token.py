"""The token endpoint (RFC 6749 §3.2): authenticate the client, then the grant it names.

The hot path (``client_credentials``): the client comes from the in-memory cache, its secret is
checked with one HMAC, the signer is the key manager's cached one, and nothing is written to the
database.  The user grants (``authorization_code``, ``refresh_token``) read and write the login
stores in one short transaction each, so their handler runs under the database's time limit
(:meth:`~sealring.server.availability.Database.write`: in a worker thread, or on the event loop
for SQLite).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sealring.jose.errors import JoseError
from sealring.server.errors import (
    InvalidRequest,
    OAuthError,
    TemporarilyUnavailable,
    UnsupportedGrantType,
)
from sealring.server.grants import GRANTS, GrantRequest
from sealring.server.http.endpoint import context_of, oauth_endpoint
from sealring.server.http.forms import read_form
from sealring.server.http.responses import json_response
from sealring.server.protocol.client_auth import extract_credentials

__all__ = ["token_endpoint"]


@oauth_endpoint("token")
async def token_endpoint(request: Request) -> Response:
    context = context_of(request)
    settings = context.settings
    await context.check_address(request.client.host if request.client else None)
    form = await read_form(request, settings.max_body_size)
    creds = extract_credentials(request.headers.getlist("authorization"), form)
    grant_type = form.get("grant_type")
    if grant_type is None:
        raise InvalidRequest("grant_type is required")
    grant = GRANTS.get(grant_type)
    # The rate limit is taken once the client is authenticated but before its assertion's jti is
    # recorded, so a request refused with 429 leaves the assertion usable for the retry.
    limiter = context.rate_limiter
    client = await context.authenticator.authenticate(
        creds,
        endpoint=settings.token_endpoint,
        admit=limiter.check if limiter is not None and grant is not None else None,
        # RFC 6749 §4.1.3 and §6: a public client identifies itself with client_id alone.
        allow_public=grant is not None and grant.public_clients,
    )
    request.scope["sealring.client_id"] = client.client_id
    if grant is None:
        # The value is not echoed: §5.2 limits error_description to printable ASCII.
        raise UnsupportedGrantType("grant_type must be one of " + ", ".join(GRANTS))
    grant_request = GrantRequest(
        client=client,
        scope=form.get("scope"),
        resources=form.getall("resource"),
        issuer=settings.issuer,
        lifetime=settings.token_lifetime,
        signer=context.signer(),
        now=context.clock(),
        parameters={name: form.get(name) for name in grant.parameters},
        store=context.login.grants if grant.uses_store else None,
        id_token_lifetime=settings.id_token_lifetime,
        id_token_signer=context.signer(client.id_token_alg) if grant.uses_store else None,
    )
    try:
        if grant.uses_store:
            issued = await context.database.write(grant.handler, grant_request)
        else:
            issued = grant.handler(grant_request)
        # A user grant's tokens are signed here, after its transaction (grants.base.SignedLater).
        body = issued.response_body()
    except OAuthError:
        raise
    except JoseError as exc:
        raise TemporarilyUnavailable("the token could not be signed") from exc
    context.metrics.token_issued(grant_type, client.client_id)
    return json_response(body)
