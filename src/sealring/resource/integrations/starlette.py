"""Starlette / ASGI: a middleware that authenticates, and a decorator that demands a token.

::

    app = Starlette(routes=[Route("/items", items)],
                    middleware=[Middleware(BearerTokenMiddleware, verifier=verifier, realm="api")])

    @requires_token(scopes=["items:read"])
    async def items(request: Request) -> Response:
        claims = claims_of(request)

The middleware verifies a token when one is sent (a bad one is refused right there) and leaves
``None`` when none is; the decorator turns "none" into 401 and checks scopes (403). Given the
verifier (``requires_token(scopes, verifier=verifier)``) the decorator needs no middleware.
Both try the verified-token cache first with the raw header value (:func:`cached_claims`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Collection

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sealring.errors import SealringError
from sealring.resource.bearer import BearerOptions, error_response, extract_token
from sealring.resource.errors import InsufficientScope, InvalidRequest, MissingToken
from sealring.resource.verifier import AccessTokenClaims, AccessTokenVerifier

__all__ = [
    "SCOPE_KEY",
    "BearerTokenMiddleware",
    "cached_claims",
    "claims_of",
    "requires_token",
    "response_for",
    "token_from_request",
]

#: Where the middleware leaves the verified claims (or ``None``) in the ASGI scope.
SCOPE_KEY = "sealring.token"
_FORM_TYPE = "application/x-www-form-urlencoded"
_NOT_SET = object()

_Endpoint = Callable[[Request], Awaitable[Response]]


def response_for(exc: SealringError, realm: str | None) -> Response:
    """The Starlette response for a refused request."""
    answer = error_response(exc, realm)
    return Response(answer.body, answer.status, dict(answer.headers), media_type=answer.media_type)


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
    authorization = request.headers.getlist("authorization")
    if len(authorization) > 1:
        raise InvalidRequest("the request has more than one Authorization header")
    return extract_token(
        authorization[0] if authorization else None, form_values=form, query_values=query
    )


def cached_claims(scope: Scope, verifier: AccessTokenVerifier) -> AccessTokenClaims | None:
    """The claims of the request's ``Authorization: Bearer`` token if the cache holds them.

    The hot path of every request, without a coroutine: scan the raw header list instead of
    building ``Headers`` and look the raw value up. A cache hit is a byte-exact token that passed
    the RFC 6750 syntax check when it was first verified. ``None`` sends the request down the
    full path, which also answers a repeated header.
    """
    header: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            if header is not None:
                return None
            header = value
    return verifier.cached_header(header) if header is not None else None


class BearerTokenMiddleware:
    """Pure ASGI middleware: verify the bearer token of every HTTP request that has one.

    A missing token is not an error here (``claims_of`` returns ``None``) unless ``required``;
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
        claims = None if self.options.allow_query else cached_claims(scope, self.verifier)
        if claims is None:
            try:
                claims = await self._authenticate(scope)
            except MissingToken as exc:
                if self.required and scope["path"] not in self.exempt_paths:
                    await response_for(exc, self.options.realm)(scope, receive, send)
                    return
            except SealringError as exc:
                await response_for(exc, self.options.realm)(scope, receive, send)
                return
        scope[SCOPE_KEY] = claims
        await self.app(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> AccessTokenClaims:
        """The full path: RFC 6750 §2 extraction, then verification (which may fetch keys)."""
        token = await token_from_request(HTTPConnection(scope), self.options)
        return await self.verifier.averify(token)


def claims_of(request: HTTPConnection) -> AccessTokenClaims | None:
    """The claims the middleware verified for this request, ``None`` when it sent no token."""
    claims = request.scope.get(SCOPE_KEY, _NOT_SET)
    if claims is _NOT_SET:
        raise RuntimeError("BearerTokenMiddleware is not installed on this app")
    return claims  # type: ignore[no-any-return]


def requires_token(
    scopes: Collection[str] = (),
    *,
    realm: str | None = None,
    verifier: AccessTokenVerifier | None = None,
    allow_query: bool = False,
    allow_form: bool = False,
) -> Callable[[_Endpoint], _Endpoint]:
    """Decorate an endpoint: 401 without a token, 403 without every scope in ``scopes``.

    Without ``verifier`` it reads what :class:`BearerTokenMiddleware` found. With one it needs
    no middleware: it finds and verifies the token itself (``allow_query`` / ``allow_form``
    enable RFC 6750 §2.3 / §2.2) and leaves the claims for :func:`claims_of`.
    """
    required = tuple(dict.fromkeys(scopes))  # in the order given, for the 403 challenge
    options = BearerOptions(realm=realm, allow_form=allow_form, allow_query=allow_query)
    fast = verifier is not None and not (allow_query or allow_form)

    def decorate(endpoint: _Endpoint) -> _Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            # This runs on every request: on a cache hit, one header scan, one type test.
            if verifier is None:
                claims = request.scope.get(SCOPE_KEY, _NOT_SET)
            else:
                claims = cached_claims(request.scope, verifier) if fast else None
                if claims is None:
                    try:
                        claims = await verifier.averify(await token_from_request(request, options))
                    except SealringError as exc:
                        return response_for(exc, realm)
                request.scope[SCOPE_KEY] = claims
            if isinstance(claims, AccessTokenClaims) and (
                not required or claims.scopes.issuperset(required)
            ):
                return await endpoint(request)
            return _refusal(claims, required, realm)

        return guarded

    return decorate


def _refusal(claims: object, required: Collection[str], realm: str | None) -> Response:
    """The answer when ``guarded`` did not let the request through."""
    if claims is _NOT_SET:
        raise RuntimeError("BearerTokenMiddleware is not installed on this app")
    if not isinstance(claims, AccessTokenClaims):
        return response_for(MissingToken("this resource needs a bearer access token"), realm)
    return response_for(InsufficientScope(required), realm)
