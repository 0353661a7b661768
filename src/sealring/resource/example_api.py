"""The example resource server of the concept diagram, built only on the public toolkit.

``GET /api/hello`` (any valid token), ``GET /api/items`` (``items:read``), ``POST /api/items``
(``items:write``; kept in memory), ``GET /healthz`` and ``GET /metrics`` (Prometheus: the
toolkit's counters, such as refused JWK Sets). Run it with
``sealring example-api --issuer URL --audience AUD``; it is also the app of the load benchmark.

The middleware demands a token on every route but ``/healthz`` (``required=True``), so
``/api/hello`` needs no decorator; the scoped routes add ``requires_token(scopes=...)``.
"""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sealring.resource import AccessTokenVerifier
from sealring.resource.integrations.starlette import (
    BearerTokenMiddleware,
    claims_of,
    requires_token,
)

__all__ = ["create_app"]

_MAX_NAME_LENGTH = 200


def create_app(verifier: AccessTokenVerifier, *, realm: str = "sealring-example") -> Starlette:
    """The example API protected by ``verifier``."""
    items: list[dict[str, Any]] = []

    async def hello(request: Request) -> Response:  # any valid token: the middleware demands one
        claims = claims_of(request)
        assert claims is not None
        return JSONResponse(
            {"message": f"hello, {claims.sub}", "sub": claims.sub, "scopes": sorted(claims.scopes)}
        )

    @requires_token(scopes=["items:read"], realm=realm)
    async def list_items(request: Request) -> Response:
        return JSONResponse({"items": items})

    @requires_token(scopes=["items:write"], realm=realm)
    async def create_item(request: Request) -> Response:
        claims = claims_of(request)
        assert claims is not None
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not 0 < len(name) <= _MAX_NAME_LENGTH:
            return JSONResponse(
                {"error": "invalid_item", "error_description": 'send {"name": "..."}'}, 400
            )
        item = {"id": len(items) + 1, "name": name, "created_by": claims.sub}
        items.append(item)
        return JSONResponse(item, 201)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/api/hello", hello, methods=["GET"]),
            Route("/api/items", list_items, methods=["GET"]),
            Route("/api/items", create_item, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        middleware=[
            Middleware(
                BearerTokenMiddleware,
                verifier=verifier,
                realm=realm,
                required=True,
                exempt_paths=["/healthz", "/metrics"],
            )
        ],
    )
