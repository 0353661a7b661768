"""Operations endpoints: ``/healthz``, ``/readyz``, ``/metrics`` and ``/openapi.json``."""

from __future__ import annotations

import hmac

import anyio.to_thread
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from sealring.errors import SealringError
from sealring.server.context import ServerContext
from sealring.server.errors import OAuthError, TemporarilyUnavailable
from sealring.server.http.endpoint import context_of
from sealring.server.http.responses import error_response, json_response
from sealring.server.openapi import openapi_document

__all__ = ["healthz", "metrics_endpoint", "openapi_endpoint", "readyz"]

_NO_STORE = {"Cache-Control": "no-store"}


async def healthz(request: Request) -> Response:
    """The process is up and serving."""
    return json_response({"status": "ok"}, headers=_NO_STORE)


def _ping(context: ServerContext) -> None:
    with context.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def readyz(request: Request) -> Response:
    """Ready when the database answers and a signing key is active for the token algorithm.

    Rate-limited per caller address like the OAuth endpoints: each call queries the database.
    Bounded like a token request (``database_timeout``), and it agrees with one: a database the
    token endpoint answers 503 for is a 503 here.  A rate limiter whose Redis is down is reported
    as ``degraded`` (still ready: it fails open) or, with ``rate_limit_fail_closed``, as 503.
    """
    context = context_of(request)
    try:
        await context.check_address(request.client.host if request.client else None)
    except OAuthError as exc:
        return error_response(exc)
    try:
        await context.database.call(_ping, context)
    except TemporarilyUnavailable:
        body = {"status": "unavailable", "reason": "database unreachable"}
        return json_response(body, status=503, headers=_NO_STORE)
    try:
        context.keys.signer(context.settings.signing_alg)
    except SealringError as exc:
        # Our own message: names the algorithm and, when a KEK is missing, its id (not secret).
        body = {"status": "unavailable", "reason": exc.message}
        return json_response(body, status=503, headers=_NO_STORE)
    except Exception:
        body = {"status": "unavailable", "reason": "no active signing key"}
        return json_response(body, status=503, headers=_NO_STORE)
    limiter = context.rate_limiter
    if limiter is not None and not await limiter.healthy():
        if context.settings.rate_limit_fail_closed:
            body = {"status": "unavailable", "reason": "rate limiter unreachable"}
            return json_response(body, status=503, headers=_NO_STORE)
        return json_response({"status": "ready", "degraded": ["redis"]}, headers=_NO_STORE)
    return json_response({"status": "ready"}, headers=_NO_STORE)


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus metrics: per-client volumes, so not public (issue 10).

    Without a ``metrics_token`` setting the answer is the plain 404 of a path that does not
    exist; with one, only ``Authorization: Bearer <token>`` (compared in constant time) is
    served, anything else is 401.  Rendering reads memory only (no database query).
    """
    context = context_of(request)
    expected = context.settings.metrics_token
    if expected is None:
        raise HTTPException(status_code=404)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        return json_response(
            {"error": "invalid_token"},
            status=401,
            headers={**_NO_STORE, "WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body = await anyio.to_thread.run_sync(context.metrics.render)
    # Per-client volumes: no shared cache between the scraper and the server may keep them.
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers=_NO_STORE)


async def openapi_endpoint(request: Request) -> Response:
    return json_response(openapi_document(context_of(request).settings), headers=_NO_STORE)
