"""The keys of ``private_key_jwt`` clients registered with a ``jwks_uri`` (RFC 7523 §2.2).

Here the authorization server is itself a relying party, so it reads a client's keys with the
resource-server toolkit's :class:`~sealring.resource.AsyncJWKSClient`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Sequence

import anyio
import httpcore
import httpx

from sealring.jose.jwks import KeySet
from sealring.resource import AsyncJWKSClient, JWKSError, JWKSSettings
from sealring.server.clients import Network, address_allowed
from sealring.server.errors import InvalidClient

__all__ = ["ClientJWKSFetcher", "PublicAddressBackend"]


class PublicAddressBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses :func:`~sealring.server.clients.address_allowed` accepts.

    The name is resolved here, every address it resolves to is checked, and the connection goes
    to a checked address, so a name that resolves to something else a moment later (DNS
    rebinding) is not asked again.  TLS still verifies the certificate against the URL's name:
    httpcore passes the origin host, not this address, as the server name.
    """

    def __init__(self, allowed: Sequence[Network] = ()) -> None:
        self._allowed = tuple(allowed)
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        refused = [a for a in addresses if not address_allowed(a, self._allowed)]
        if refused or not addresses:
            raise httpcore.ConnectError(f"{host} resolves to a non-public address")
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("no Unix sockets for a client's jwks_uri")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (TLS from the system trust store, no proxy from the environment:
    a proxy would connect on our behalf past the address check) over
    :class:`PublicAddressBackend`."""

    def __init__(self, allowed: Sequence[Network]) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=PublicAddressBackend(allowed),
        )


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
        allowed_networks: Sequence[Network] = (),
    ) -> None:
        # Unless a test gives its own, every connection passes the SSRF address check.
        self._transport = transport or _GuardedTransport(allowed_networks)
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
