"""What every endpoint shares: the settings and the long-lived objects built at start."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response

from sealring.jose.jws import Signer
from sealring.server.client_auth import ClientAuthenticator
from sealring.server.clients import ClientCache, ClientRepository
from sealring.server.errors import OAuthError, error_response
from sealring.server.logging import logger
from sealring.server.metrics import Metrics
from sealring.server.ratelimit import RateLimiter
from sealring.server.settings import Settings

if TYPE_CHECKING:
    from sealring.server.revocation import RevocationStore
    from sealring.server.token import OwnTokenVerifier

__all__ = ["JWKSLike", "KeySource", "ServerState", "oauth_endpoint", "state_of"]


class JWKSLike(Protocol):
    @property
    def body(self) -> bytes: ...
    @property
    def etag(self) -> str: ...
    @property
    def max_age(self) -> int: ...


class KeySource(Protocol):
    """The part of :class:`sealring.keys.KeyManager` the endpoints use."""

    def signer(self, alg: str) -> Signer: ...
    def jwks(self) -> JWKSLike: ...


@dataclass
class ServerState:
    settings: Settings
    engine: Engine
    keys: KeySource
    repository: ClientRepository
    clients: ClientCache
    authenticator: ClientAuthenticator
    rate_limiter: RateLimiter | None
    metrics: Metrics
    revocations: RevocationStore
    verifier: OwnTokenVerifier
    clock: Callable[[], float] = time.time
    extra: dict[str, object] = field(default_factory=dict)


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.sealring
    return state


def oauth_endpoint(
    name: str,
) -> Callable[[Callable[[Request], Awaitable[Response]]], Callable[[Request], Awaitable[Response]]]:
    """Render :class:`OAuthError` as RFC 6749 §5.2 JSON and count it by ``error`` code."""

    def wrap(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except OAuthError as exc:
                state_of(request).metrics.errors.labels(name, exc.code).inc()
                logger.info(
                    "oauth error",
                    extra={"endpoint": name, "error": exc.code, "status": exc.status_code},
                )
                return error_response(exc)

        return endpoint

    return wrap
