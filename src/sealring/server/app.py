"""The ASGI application: ``create_app(settings)``.

Start-up (the lifespan) migrates the database, loads the client-secret HMAC key, makes sure the
signing keys are ready, and starts two background tasks: the key manager's schedule and the
pruning of expired assertion jtis and revocation records.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from urllib.parse import urlsplit

import anyio.to_thread
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sealring.db import make_engine, upgrade
from sealring.keys import KeyManager, load_key_config
from sealring.server.client_auth import ClientAuthenticator, ClientJWKSFetcher, JtiStore
from sealring.server.clients import ClientCache, ClientRepository, SecretHasher, load_server_secret
from sealring.server.discovery import discovery_endpoint, well_known_paths
from sealring.server.errors import NO_STORE_HEADERS
from sealring.server.introspection import introspection_endpoint
from sealring.server.jwks import jwks_endpoint
from sealring.server.logging import logger, new_request_id, request_id
from sealring.server.metrics import Metrics
from sealring.server.operations import healthz, metrics_endpoint, openapi_endpoint, readyz
from sealring.server.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from sealring.server.revocation import RevocationStore, revocation_endpoint
from sealring.server.settings import RESOLVED_ENV, Settings
from sealring.server.state import ServerState
from sealring.server.token import OwnTokenVerifier, token_endpoint

__all__ = ["app_from_env", "create_app"]

PRUNE_INTERVAL = 60.0
MAX_HEADER_BYTES = 16 * 1024
_ENDPOINT_NAMES = {
    "/token": "token",
    "/introspect": "introspection",
    "/revoke": "revocation",
    "/jwks.json": "jwks",
    "/healthz": "healthz",
    "/readyz": "readyz",
    "/metrics": "metrics",
    "/openapi.json": "openapi",
}


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"pragma", b"no-cache"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


_HEADERS_TOO_LARGE = json.dumps(
    {
        "error": "invalid_request",
        "error_description": f"the request headers exceed {MAX_HEADER_BYTES} bytes",
    }
).encode()


class RequestContext:
    """Request id, access log line, latency histogram, and a JSON 500 that leaks nothing."""

    def __init__(
        self, app: ASGIApp, metrics: Callable[[], Metrics | None], prefix: str = ""
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.prefix = prefix  # the issuer's path, under which the endpoints are served too

    def endpoint_name(self, path: str) -> str:
        if self.prefix and path.startswith(self.prefix + "/"):
            return _ENDPOINT_NAMES.get(path[len(self.prefix) :], "other")
        return "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        header_bytes = 0
        for name, value in scope.get("headers", ()):
            header_bytes += len(name) + len(value)
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
        rid = new_request_id(incoming)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            if header_bytes > MAX_HEADER_BYTES:
                # Some HTTP servers (uvicorn with httptools) set no limit of their own. Refused
                # here, inside the try, so the refusal is access-logged like any response.
                await _send_json(send_wrapper, 431, _HEADERS_TOO_LARGE)
            else:
                await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            tb = exc.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
            logger.error(
                "unhandled error", extra={"error_type": type(exc).__name__, "where": where}
            )
            if not response_started:
                await _send_json(send_wrapper, 500, b'{"error":"server_error"}')
        finally:
            elapsed = time.perf_counter() - started
            path = scope.get("path", "")
            endpoint = _ENDPOINT_NAMES.get(
                path, "discovery" if "/.well-known/" in path else self.endpoint_name(path)
            )
            metrics = self.metrics()
            if metrics is not None:
                metrics.latency.labels(endpoint).observe(elapsed)
            logger.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": path[:200],
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "client_id": scope.get("sealring.client_id"),
                },
            )
            request_id.reset(token)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
    return Response(
        json.dumps({"error": code}),
        status_code=exc.status_code,
        headers={**NO_STORE_HEADERS, **(exc.headers or {})},
        media_type="application/json",
    )


def _rate_limiter(settings: Settings) -> RateLimiter | None:
    if settings.rate_limit <= 0:
        return None
    if settings.redis_url:
        return RedisRateLimiter(settings.redis_url, settings.rate_limit, settings.rate_burst)
    return MemoryRateLimiter(settings.rate_limit, settings.rate_burst)


def key_manager(
    settings: Settings, engine: Engine, environ: Mapping[str, str] | None = None
) -> KeyManager:
    kek, hsm = load_key_config(settings.database_url, environ)
    return KeyManager(engine, kek=kek, policy=settings.rotation_policy(), hsm=hsm)


def _key_states(km: KeyManager) -> Callable[[], dict[tuple[str, str], int]]:
    def collect() -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for info in km.keys():  # noqa: SIM118 - KeyManager.keys(), not a dict
            counts[(info.alg, info.state)] = counts.get((info.alg, info.state), 0) + 1
        return counts

    return collect


def build_state(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> tuple[ServerState, KeyManager]:
    """Everything the endpoints share, ready to serve (migrates, creates keys if needed)."""
    engine = make_engine(settings.database_url, hide_parameters=True)
    try:
        upgrade(engine)
        km = key_manager(settings, engine, environ)
        km.ensure_ready()
        secret = load_server_secret(engine, settings.server_secret, clock=clock)
    except BaseException:
        engine.dispose()
        raise
    repository = ClientRepository(engine, clock=clock)
    clients = ClientCache(repository, ttl=settings.client_cache_ttl)
    authenticator = ClientAuthenticator(
        clients=clients,
        hasher=SecretHasher(secret),
        jtis=JtiStore(engine),
        jwks_fetcher=ClientJWKSFetcher(),
        issuer=settings.issuer,
        token_endpoint=settings.token_endpoint,
        assertion_max_lifetime=settings.assertion_max_lifetime,
        clock=clock,
    )
    state = ServerState(
        settings=settings,
        engine=engine,
        keys=km,
        repository=repository,
        clients=clients,
        authenticator=authenticator,
        rate_limiter=_rate_limiter(settings),
        metrics=Metrics(_key_states(km)),
        revocations=RevocationStore(engine),
        verifier=OwnTokenVerifier(km, settings.issuer, clock=clock),
        clock=clock,
    )
    return state, km


async def _prune_forever(state: ServerState) -> None:
    jtis = JtiStore(state.engine)
    while True:
        await asyncio.sleep(PRUNE_INTERVAL)
        try:
            now = state.clock()
            await anyio.to_thread.run_sync(jtis.prune, now)
            await anyio.to_thread.run_sync(state.revocations.prune, now)
        except Exception as exc:  # the next round retries
            logger.warning("pruning failed", extra={"error_type": type(exc).__name__})


def create_app(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
    key_poll_interval: float | None = None,
) -> Starlette:
    """The authorization server as a Starlette application; nothing starts until its lifespan."""
    holder: dict[str, ServerState] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state, km = await anyio.to_thread.run_sync(
            lambda: build_state(settings, environ=environ, clock=clock)
        )
        app.state.sealring = state
        holder["state"] = state
        tasks = [
            asyncio.create_task(km.run_forever(key_poll_interval)),
            asyncio.create_task(_prune_forever(state)),
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
            if state.rate_limiter is not None:
                await state.rate_limiter.aclose()
            await state.authenticator.jwks_fetcher.aclose()
            km.close()
            state.engine.dispose()

    endpoints = [
        Route("/token", token_endpoint, methods=["POST"]),
        Route("/introspect", introspection_endpoint, methods=["POST"]),
        Route("/revoke", revocation_endpoint, methods=["POST"]),
        Route("/jwks.json", jwks_endpoint, methods=["GET"]),
    ]
    routes = [
        *endpoints,
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi_endpoint, methods=["GET"]),
    ]
    routes += [
        Route(path, discovery_endpoint, methods=["GET"])
        for path in well_known_paths(settings.issuer)
    ]
    issuer_path = urlsplit(settings.issuer).path
    if issuer_path:
        # The advertised URLs (issuer + "/token", ...) work with or without a proxy that
        # strips the issuer's path; the root routes are matched first, so they cost nothing.
        routes += [
            Route(issuer_path + r.path, r.endpoint, methods=sorted(r.methods or ()))
            for r in endpoints
        ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},
    )

    def metrics() -> Metrics | None:
        state = holder.get("state")
        return state.metrics if state is not None else None

    app.add_middleware(RequestContext, metrics=metrics, prefix=issuer_path)
    return app


def app_from_env() -> Starlette:
    """Factory for worker processes: the settings `sealring serve` resolved, from the environment."""
    from sealring.server.logging import configure_logging

    settings = Settings.from_json(os.environ[RESOLVED_ENV])
    configure_logging(settings.log_level)
    return create_app(settings)
