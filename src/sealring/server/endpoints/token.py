"""The token endpoint (RFC 6749 §3.2): authenticate the client, then the grant it names.

The hot path (``client_credentials``): the client comes from the in-memory cache, its secret is
checked with one HMAC, the signer is the key manager's cached one, and nothing is written to the
database.  The user grants (``authorization_code``, ``refresh_token``) read and write the login
stores in one short transaction each, so their handler runs under the database's time limit
(:meth:`~sealring.server.availability.Database.write`: in a worker thread, or on the event loop
for SQLite).

Two ways in, one set of checks: :func:`token_endpoint` (ASGI) and :class:`DirectToken`, which an
HTTP server calls synchronously with a whole request to answer it below ASGI
(:mod:`sealring.server.http.uvicorn_protocol`).  Both read the request with
:func:`_token_request`, authenticate through the same
:class:`~sealring.server.protocol.client_auth.ClientAuthenticator` checks, build the grant's
input with :func:`_grant_request`, call the same grant handler and answer with the same
:func:`~sealring.server.http.responses.json_response`.  :class:`DirectToken` answers only what
needs no I/O and succeeds; for anything else it declines before any side effect and the ASGI
path answers, errors included.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response

from sealring.jose.errors import JoseError
from sealring.keys.errors import KeysError
from sealring.server.clients import Client
from sealring.server.context import ServerContext
from sealring.server.errors import (
    InvalidRequest,
    OAuthError,
    TemporarilyUnavailable,
    UnsupportedGrantType,
)
from sealring.server.grants import GRANTS, Grant, GrantRequest
from sealring.server.http.endpoint import context_of, oauth_endpoint
from sealring.server.http.forms import Form, check_form_type, form_of, read_form
from sealring.server.http.responses import json_response
from sealring.server.protocol.client_auth import Credentials, extract_credentials

__all__ = ["DirectToken", "token_endpoint"]


def _token_request(
    authorization: Sequence[str], form: Form
) -> tuple[Credentials, str, Grant | None]:
    """The credentials the request presents, its ``grant_type``, and that grant (None if this
    server has none by that name)."""
    creds = extract_credentials(authorization, form)
    grant_type = form.get("grant_type")
    if grant_type is None:
        raise InvalidRequest("grant_type is required")
    return creds, grant_type, GRANTS.get(grant_type)


def _grant_request(
    context: ServerContext, grant: Grant, client: Client, form: Form
) -> GrantRequest:
    settings = context.settings
    return GrantRequest(
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


@oauth_endpoint("token")
async def token_endpoint(request: Request) -> Response:
    context = context_of(request)
    settings = context.settings
    await context.check_address(request.client.host if request.client else None)
    form = await read_form(request, settings.max_body_size)
    creds, grant_type, grant = _token_request(request.headers.getlist("authorization"), form)
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
    grant_request = _grant_request(context, grant, client, form)
    try:
        if grant.uses_store:
            issued = await context.database.write(grant.handler, grant_request)
        else:
            issued = grant.handler(grant_request)
        # A user grant's tokens are signed here, after its transaction (grants.base.SignedLater).
        body = issued.response_body()
    except OAuthError:
        raise
    except (JoseError, KeysError) as exc:  # KeysError: the HSM refused to sign (session lost)
        raise TemporarilyUnavailable("the token could not be signed") from exc
    context.metrics.token_issued(grant_type, client.client_id)
    return json_response(body)


class DirectToken:
    """:func:`token_endpoint`'s answer to a whole request, computed synchronously, or ``None``.

    Called with the request's headers (lower-case names, as sent), its body and the caller's
    address. It answers a request that succeeds without I/O: a grant that needs no store
    (``client_credentials``), a client authenticated by secret and found in the client cache,
    rate limits that are off or kept in memory. It returns the response and the client id (for
    the access log) after the side effects of a success (the rate-limit buckets, the
    ``tokens_issued`` counter), or ``None`` before any: an error of any kind, a client not
    cached, an assertion, a user grant, limits kept in Redis all go the ASGI way, which answers
    exactly as it would have.
    """

    def __init__(self, context: Callable[[], ServerContext | None]) -> None:
        self._context = context

    def __call__(
        self, headers: Sequence[tuple[bytes, bytes]], body: bytes, address: str | None
    ) -> tuple[Response, str] | None:
        context = self._context()
        if context is None or not context.limits_decide_now():
            return None
        if len(body) > context.settings.max_body_size:
            return None
        content_type = None
        authorization = []
        for name, value in headers:
            if name == b"authorization":
                authorization.append(value.decode("latin-1"))
            elif name == b"content-type" and content_type is None:
                content_type = value.decode("latin-1")
        try:
            check_form_type(content_type or "")
            form = form_of(body)
            creds, grant_type, grant = _token_request(authorization, form)
            if grant is None or grant.uses_store:
                return None
            client = context.authenticator.authenticate_cached(
                creds, allow_public=grant.public_clients
            )
            if client is None:
                return None
            issued = grant.handler(_grant_request(context, grant, client, form))
            answer = issued.response_body()
        except (OAuthError, JoseError, KeysError):
            return None
        if not context.take_now(address, client.client_id):
            return None
        context.metrics.token_issued(grant_type, client.client_id)
        return json_response(answer), client.client_id
