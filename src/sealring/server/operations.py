"""Operations endpoints: ``/healthz``, ``/readyz``, ``/metrics`` and ``/openapi.json``."""

from __future__ import annotations

import json

import anyio.to_thread
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response

from sealring.server.openapi import openapi_document
from sealring.server.state import ServerState, state_of

__all__ = ["healthz", "metrics_endpoint", "openapi_endpoint", "readyz"]


def _json(body: dict[str, object], status: int = 200) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def healthz(request: Request) -> Response:
    """The process is up and serving."""
    return _json({"status": "ok"})


def _ping(state: ServerState) -> None:
    with state.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def readyz(request: Request) -> Response:
    """Ready when the database answers and a signing key is active for the token algorithm."""
    state = state_of(request)
    try:
        await anyio.to_thread.run_sync(_ping, state)
    except Exception:
        return _json({"status": "unavailable", "reason": "database unreachable"}, 503)
    try:
        state.keys.signer(state.settings.signing_alg)
    except Exception:
        return _json({"status": "unavailable", "reason": "no active signing key"}, 503)
    return _json({"status": "ready"})


async def metrics_endpoint(request: Request) -> Response:
    state = state_of(request)
    body = await anyio.to_thread.run_sync(state.metrics.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def openapi_endpoint(request: Request) -> Response:
    state = state_of(request)
    return _json(openapi_document(state.settings))
