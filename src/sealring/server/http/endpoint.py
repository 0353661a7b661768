"""The decorator every OAuth endpoint wears, and how a handler finds the server context."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from sealring.server.context import ServerContext
from sealring.server.errors import OAuthError
from sealring.server.http.responses import error_response
from sealring.server.logging import logger

__all__ = ["Handler", "context_of", "oauth_endpoint"]

Handler = Callable[[Request], Awaitable[Response]]


def context_of(request: Request) -> ServerContext:
    context: ServerContext = request.app.state.sealring
    return context


def oauth_endpoint(name: str) -> Callable[[Handler], Handler]:
    """Render :class:`OAuthError` as RFC 6749 §5.2 JSON and count it by ``error`` code."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except OAuthError as exc:
                context_of(request).metrics.errors.labels(name, exc.error).inc()
                logger.info(
                    "oauth error",
                    extra={
                        "endpoint": name,
                        "error": exc.error,
                        "code": exc.code,
                        "status": exc.status,
                    },
                )
                return error_response(exc)

        return endpoint

    return wrap
