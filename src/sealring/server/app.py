"""The ASGI application: ``create_app(settings)``.

Start-up (the lifespan) builds the server context (:func:`~sealring.server.context.build_context`:
migrates the database, loads the client-secret HMAC key, makes sure the signing keys are ready)
and starts two background tasks: the key manager's schedule and the pruning of expired assertion
jtis and revocation records.  The routes come from :data:`~sealring.server.routes.ROUTES`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from urllib.parse import urlsplit

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp

from sealring.server.context import ServerContext, build_context
from sealring.server.endpoints import HANDLERS
from sealring.server.endpoints.discovery import discovery_answer
from sealring.server.endpoints.jwks import jwks_answer
from sealring.server.endpoints.token import DirectToken
from sealring.server.http.middleware import (
    DirectRoutes,
    PostedRoutes,
    PrebuiltRoutes,
    RequestContext,
    direct_endpoint,
    http_error,
)
from sealring.server.logging import access_log, logger
from sealring.server.metrics import Metrics
from sealring.server.routes import DISCOVERY, ROUTES, well_known_paths
from sealring.server.settings import Settings

__all__ = ["create_app"]

PRUNE_INTERVAL = 60.0
# The endpoints answered without Starlette's router (http/middleware.py): the ones every client
# and resource server calls at volume. Their handlers raise no HTTPException.
DIRECT = ("token", "jwks", DISCOVERY)
# Of those, the ones whose GET answer is a prebuilt response, by the function that gives it.
PREBUILT: Mapping[str, Callable[[ServerContext], Response]] = {
    "jwks": jwks_answer,
    DISCOVERY: discovery_answer,
}


def _routes(issuer: str) -> list[Route]:
    """Starlette routes for :data:`ROUTES`, at the root and under the issuer's path."""
    if set(HANDLERS) != {route.name for route in ROUTES} | {DISCOVERY}:
        raise RuntimeError("endpoints.HANDLERS and routes.ROUTES name different endpoints")
    routes = [
        Route(route.path, HANDLERS[route.name], methods=list(route.methods)) for route in ROUTES
    ]
    routes += [
        Route(path, HANDLERS[DISCOVERY], methods=["GET"]) for path in well_known_paths(issuer)
    ]
    issuer_path = urlsplit(issuer).path
    if issuer_path:
        # The advertised URLs (issuer + "/token", ...) work with or without a proxy that
        # strips the issuer's path; the root routes are matched first, so they cost nothing.
        routes += [
            Route(issuer_path + route.path, HANDLERS[route.name], methods=list(route.methods))
            for route in ROUTES
            if route.advertised_as is not None or route.browser
        ]
    return routes


def _direct_routes(routes: Sequence[BaseRoute]) -> DirectRoutes:
    """The :data:`DIRECT` endpoints' ``(method, path)`` pairs, each bound to its handler.

    Taken from the Starlette routes themselves, and only where Starlette's router would pick
    that same route for that method and path (the first full match in order), so a route added
    before them can never be bypassed. Only exact paths and methods are taken (``HEAD``, a
    trailing slash, any other method go on to Starlette, which answers them as before).
    """
    handlers = {HANDLERS[name]: direct_endpoint(HANDLERS[name]) for name in DIRECT}
    direct: dict[tuple[str, str], ASGIApp] = {}
    for route in routes:
        if not isinstance(route, Route):
            continue
        app = handlers.get(route.endpoint)
        if app is None:
            continue
        for method in route.methods or ():
            if method != "HEAD" and _first_match(routes, method, route.path) is route:
                direct[(method, route.path)] = app
    return direct


def _prebuilt_routes(
    direct: DirectRoutes, routes: Sequence[BaseRoute], context: Callable[[], ServerContext | None]
) -> PrebuiltRoutes:
    """The direct ``GET`` paths of the :data:`PREBUILT` endpoints, each bound to its answer."""
    answers = {HANDLERS[name]: answer for name, answer in PREBUILT.items()}
    prebuilt: dict[str, Callable[[], Response | None]] = {}
    for route in routes:
        if not isinstance(route, Route) or ("GET", route.path) not in direct:
            continue
        answer = answers.get(route.endpoint)
        if answer is not None and _first_match(routes, "GET", route.path) is route:
            prebuilt[route.path] = functools.partial(_answer_when_ready, answer, context)
    return prebuilt


def _posted_routes(
    direct: DirectRoutes, routes: Sequence[BaseRoute], context: Callable[[], ServerContext | None]
) -> PostedRoutes:
    """The direct ``POST`` paths of the token endpoint, each bound to its synchronous answer
    (:class:`~sealring.server.endpoints.token.DirectToken`)."""
    answer = DirectToken(context)
    return {
        route.path: answer
        for route in routes
        if isinstance(route, Route)
        and route.endpoint is HANDLERS["token"]
        and ("POST", route.path) in direct
    }


def _answer_when_ready(
    answer: Callable[[ServerContext], Response], context: Callable[[], ServerContext | None]
) -> Response | None:
    current = context()
    return answer(current) if current is not None else None


def _first_match(routes: Sequence[BaseRoute], method: str, path: str) -> BaseRoute | None:
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route
    return None


async def _prune_forever(context: ServerContext) -> None:
    while True:
        await asyncio.sleep(PRUNE_INTERVAL)
        try:
            now = context.clock()
            await anyio.to_thread.run_sync(context.jtis.prune, now)
            await anyio.to_thread.run_sync(context.revocations.prune, now)
            await anyio.to_thread.run_sync(context.login.prune, now)
        except Exception as exc:  # the next round retries
            logger.warning("pruning failed", extra={"error_type": type(exc).__name__})


def create_app(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
    key_poll_interval: float | None = None,
    direct: bool = True,
) -> Starlette:
    """The authorization server as a Starlette application; nothing starts until its lifespan.

    ``direct=False`` sends every request through Starlette's router (the tests compare the two).
    """
    holder: dict[str, ServerContext] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        context, km = await anyio.to_thread.run_sync(
            lambda: build_context(settings, environ=environ, clock=clock)
        )
        app.state.sealring = context
        holder["context"] = context
        tasks = [
            asyncio.create_task(km.run_forever(key_poll_interval)),
            asyncio.create_task(_prune_forever(context)),
        ]
        logger.info("authorization server ready", extra={"issuer": settings.issuer})
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if context.rate_limiter is not None:
                await context.rate_limiter.aclose()
            if context.address_limiter is not None:
                await context.address_limiter.aclose()
            await context.authenticator.jwks_fetcher.aclose()
            km.close()
            await context.database.aclose()
            context.engine.dispose()
            access_log.flush()

    issuer_path = urlsplit(settings.issuer).path
    routes = _routes(settings.issuer)
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )

    def metrics() -> Metrics | None:
        context = holder.get("context")
        return context.metrics if context is not None else None

    direct_routes = _direct_routes(routes) if direct else {}
    app.add_middleware(
        RequestContext,
        metrics=metrics,
        prefix=issuer_path,
        direct=direct_routes,
        prebuilt=_prebuilt_routes(direct_routes, routes, lambda: holder.get("context")),
        posted=_posted_routes(direct_routes, routes, lambda: holder.get("context")),
    )
    return app
