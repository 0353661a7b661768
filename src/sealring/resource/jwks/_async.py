"""The asyncio JWKS client: :class:`AsyncJWKSClient`, one fetch shared by all tasks.

The hand-written twin of :mod:`._sync`; here ``asyncio.timeout`` bounds connect, headers and body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

import httpx

from sealring.jose.jwks import KeySet
from sealring.resource.errors import JWKSError, JWKSFetchError
from sealring.resource.jwks._http import BodyReader, ClientBase, step, transport_error
from sealring.resource.jwks._policy import HTTPRequest, HTTPResponse, JWKSSettings, RefreshFlow

__all__ = ["AsyncJWKSClient"]

log = logging.getLogger("sealring.resource")


class AsyncJWKSClient(ClientBase):
    """The asyncio twin of :class:`JWKSClient`: same policy, one fetch shared by all tasks."""

    def __init__(
        self,
        jwks_uri: str | None = None,
        *,
        issuer: str | None = None,
        settings: JWKSSettings | None = None,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(jwks_uri, issuer, settings, clock)
        self._owns_client = http_client is None
        self._http = http_client or httpx.AsyncClient(transport=transport, timeout=self._timeout())
        self._lock = asyncio.Lock()
        self._refresher: asyncio.Task[None] | None = None

    async def get_key_set(self, kid: str | None = None) -> KeySet:
        """The current key set; fetched when there is none usable or ``kid`` is unknown (once per
        cooldown). A usable stale set answers at once and is refreshed in a background task."""
        keys = self._from_cache(kid, self._clock())
        if keys is not None:
            return keys
        async with self._lock:
            now = self._clock()
            keys = self._cache.lookup(kid, now)
            if keys is not None:
                return keys
            return await self._drive(self._cache.refresh_flow(now))

    async def refresh(self) -> KeySet:
        """Fetch now, ignoring freshness and cooldown."""
        async with self._lock:
            return await self._drive(self._cache.refresh_flow(self._clock()))

    def _revalidate(self) -> bool:
        refresher = self._refresher
        if self._lock.locked() or (refresher is not None and not refresher.done()):
            return True  # a fetch is running: it is the refresh
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False  # no event loop to refresh on (a sync caller): the caller must fetch
        self._refresher = loop.create_task(self._refresh_in_background())
        return True

    async def _refresh_in_background(self) -> None:
        async with self._lock:
            now = self._clock()
            if not self._cache.refresh_due(now):
                return  # another task's fetch got there first
            try:
                await self._drive(self._cache.refresh_flow(now))
            except JWKSError:
                pass  # recorded and logged by the policy; the stale set serves until its bound
            except Exception:
                log.exception("the background refresh of the JWK Set from %s failed", self.jwks_uri)

    async def _drive(self, flow: RefreshFlow) -> KeySet:
        try:
            request = next(flow)
            while True:
                try:
                    request = step(flow, await self._send(request))
                except StopIteration as stop:
                    result: KeySet = stop.value
                    return result
        finally:
            self._cache.attempt_ended(self._clock())

    async def _send(self, request: HTTPRequest) -> HTTPResponse | JWKSError:
        timeout = self._cache.settings.timeout
        try:
            # One deadline for connect, headers and body together.
            async with asyncio.timeout(timeout):
                async with self._http.stream(**self._stream_args(request)) as response:
                    reader = BodyReader(request, response, time.monotonic() + timeout)
                    read = reader.chunks()
                    if read is not None:
                        for chunk in read:
                            reader.feed(chunk)
                    else:
                        async for chunk in response.aiter_raw():
                            reader.feed(chunk)
                    return reader.result()
        except TimeoutError:
            return JWKSFetchError(f"fetching {request.url} took longer than the timeout")
        except httpx.HTTPError as exc:
            return transport_error(request, exc)
        except JWKSError as exc:
            return exc

    async def aclose(self) -> None:
        """Cancel a background refresh, then close the client."""
        refresher = self._refresher
        if refresher is not None and not refresher.done():
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
        if self._owns_client:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
