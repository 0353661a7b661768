"""The keys of ``private_key_jwt`` clients registered with a ``jwks_uri`` (RFC 7523 §2.2).

Here the authorization server is itself a relying party, so it reads a client's keys with the
resource-server toolkit's :class:`~sealring.resource.AsyncJWKSClient`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from sealring.jose.jwks import KeySet
from sealring.resource import AsyncJWKSClient, JWKSError, JWKSSettings
from sealring.server.errors import InvalidClient

__all__ = ["ClientJWKSFetcher"]


class ClientJWKSFetcher:
    """The key sets of clients registered with a ``jwks_uri``, for ``private_key_jwt``.

    One :class:`~sealring.resource.AsyncJWKSClient` per URL, so the authorization server reads
    a client's keys exactly as a resource server reads an issuer's: a deadline for the whole
    response (5 s), no redirects, a 64 KiB cap on the decoded body, ``https`` except on loopback,
    one fetch shared by concurrent requests, ``Cache-Control`` within 30 s .. 1 h (5 min when
    absent), an unknown ``kid`` refetched at most once per 30 s, and the last good set kept for
    10 min when the client's server fails.
    """

    SETTINGS = JWKSSettings(
        min_max_age=30.0,
        max_max_age=3600.0,
        default_max_age=300.0,
        cooldown=30.0,
        stale_if_error=600.0,
        timeout=5.0,
        max_size=64 * 1024,
    )

    def __init__(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        settings: JWKSSettings = SETTINGS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._transport = transport
        self._settings = settings
        self._clock = clock
        self._clients: dict[str, AsyncJWKSClient] = {}

    async def get(self, url: str, kid: str | None) -> KeySet:
        client = self._clients.get(url)
        if client is None:
            try:
                client = AsyncJWKSClient(
                    url, settings=self._settings, transport=self._transport, clock=self._clock
                )
            except ValueError as exc:  # a URL the client rules refuse
                raise InvalidClient() from exc
            self._clients[url] = client
        try:
            return await client.get_key_set(kid)
        except JWKSError as exc:
            raise InvalidClient() from exc

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
