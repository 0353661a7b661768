"""Starlette / ASGI: a middleware that authenticates, and a decorator that demands a token.

::

    app = Starlette(routes=[Route("/items", items)],
                    middleware=[Middleware(BearerTokenMiddleware, verifier=verifier, realm="api")])

    @requires_token(scopes=["items:read"])
    async def items(request: Request) -> Response:
        claims = get_token(request)

The middleware verifies a token when one is sent (a bad one is refused right there) and leaves
``None`` when none is; the decorator turns "none" into 401 and checks scopes (403).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Collection

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sealring.errors import SealringError
from sealring.resource.bearer import BearerOptions, error_response, extract_token
from sealring.resource.errors import InvalidRequest, MissingToken
from sealring.resource.verifier import AccessTokenClaims, AccessTokenVerifier

__all__ = [
    "SCOPE_KEY",
    "BearerTokenMiddleware",
    "get_token",
    "requires_token",
    "response_for",
    "token_from_request",
]

#: Where the middleware leaves the verified claims (or ``None``) in the ASGI scope.
SCOPE_KEY = "sealring.token"
_FORM_TYPE = "application/x-www-form-urlencoded"

Endpoint = Callable[[Request], Awaitable[Response]]


def response_for(exc: SealringError, realm: str | None) -> Response:
    """The Starlette response for a refused request."""
    answer = error_response(exc, realm)
    return Response(answer.body, answer.status, answer.headers, media_type=answer.media_type)


async def token_from_request(request: HTTPConnection, options: BearerOptions) -> str:
    """The bearer token of ``request`` from the methods ``options`` enable (RFC 6750 §2)."""
    query = request.query_params.getlist("access_token") if options.allow_query else []
    form: list[str] = []
    if (
        options.allow_form
        and isinstance(request, Request)
        and request.method not in ("GET", "HEAD")
        and request.headers.get("content-type", "").split(";")[0].strip() == _FORM_TYPE
    ):
        data = await request.form()
        form = [v for v in data.getlist("access_token") if isinstance(v, str)]
    return extract_token(request.headers.get("authorization"), form_values=form, query_values=query)


class BearerTokenMiddleware:
    """Pure ASGI middleware: verify the bearer token of every HTTP request that has one.

    A missing token is not an error here (``get_token`` returns ``None``) unless ``required``;
    a malformed or invalid one is answered at once (400/401), and a key-set outage with 503.
    The form-body method is not available here, since the middleware must not consume the body.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: AccessTokenVerifier,
        realm: str | None = None,
        allow_query: bool = False,
        required: bool = False,
        exempt_paths: Collection[str] = (),
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.options = BearerOptions(realm=realm, allow_query=allow_query)
        self.required = required
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            scope[SCOPE_KEY] = await self._claims(scope)
        except MissingToken as exc:
            if self.required and scope["path"] not in self.exempt_paths:
                await response_for(exc, self.options.realm)(scope, receive, send)
                return
            scope[SCOPE_KEY] = None
        except SealringError as exc:
            await response_for(exc, self.options.realm)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _claims(self, scope: Scope) -> AccessTokenClaims:
        # The hot path of every request: read the raw header list instead of building Headers.
        authorization: str | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is not None:
                    raise InvalidRequest("the request has more than one Authorization header")
                authorization = value.decode("latin-1")
        if authorization is not None and not self.options.allow_query:
            # A cache hit is a byte-exact string that passed the RFC 6750 syntax check when it
            # was first verified, so the check is only needed on a miss.
            scheme, _, credentials = authorization.partition(" ")
            if scheme.lower() == "bearer":
                claims = self.verifier.cached(credentials)
                if claims is not None:
                    return claims
        query: list[str] = []
        if self.options.allow_query:
            query = HTTPConnection(scope).query_params.getlist("access_token")
        return await self.verifier.averify(extract_token(authorization, query_values=query))


def get_token(request: HTTPConnection) -> AccessTokenClaims | None:
    """The claims the middleware verified for this request, ``None`` when it sent no token."""
    if SCOPE_KEY not in request.scope:
        raise RuntimeError("BearerTokenMiddleware is not installed on this app")
    claims: AccessTokenClaims | None = request.scope[SCOPE_KEY]
    return claims


def requires_token(
    scopes: Collection[str] = (), *, realm: str | None = None
) -> Callable[[Endpoint], Endpoint]:
    """Decorate an endpoint: 401 without a token, 403 without every scope in ``scopes``."""
    required = tuple(scopes)

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            claims = get_token(request)
            try:
                if claims is None:
                    raise MissingToken("this resource needs a bearer access token")
                claims.require_scopes(required)
            except SealringError as exc:
                return response_for(exc, realm)
            return await endpoint(request)

        return guarded

    return decorate
