"""The blocking JWKS client: :class:`JWKSClient`, thread-safe, one fetch at a time.

The hand-written twin of :mod:`._async` (as httpx keeps ``Client`` and ``AsyncClient``): the
drivers differ where it matters, since a blocking read has no ``asyncio.timeout`` and needs the
:class:`_Watchdog` thread to enforce one deadline over connect, headers and body.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from sealring.jose.jwks import KeySet
from sealring.resource.errors import JWKSError, JWKSFetchError
from sealring.resource.jwks._http import BodyReader, ClientBase, step, transport_error
from sealring.resource.jwks._policy import HTTPRequest, HTTPResponse, JWKSSettings, RefreshFlow

__all__ = ["JWKSClient"]

log = logging.getLogger("sealring.resource")


class _Watchdog:
    """Shuts the connection down at the deadline, for the sync client.

    httpx's timeouts are per read: a server that sends its status line and headers a byte at
    a time never trips them, and would hold the single-flight lock for hours. The socket is
    taken from httpcore's ``trace`` extension as the connection is made (the request asks for
    ``Connection: close``, so no pooled connection is reused without one); shutting it down
    wakes the blocked read, which then fails like any broken connection.
    """

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event not in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with self._lock:
                self._socket = sock  # the TLS socket replaces the plain one it wraps
                if self.fired:
                    _shutdown(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            if self._socket is not None:
                _shutdown(self._socket)

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class JWKSClient(ClientBase):
    """A JWK Set fetched over HTTPS and cached; thread-safe, one fetch at a time.

    Give either ``jwks_uri`` or ``issuer`` (the JWKS URI is then discovered from the issuer's
    metadata). ``transport`` and ``clock`` are for tests; ``http_client`` lets an application share
    its own ``httpx.Client`` (its redirect setting is overridden per request).
    """

    def __init__(
        self,
        jwks_uri: str | None = None,
        *,
        issuer: str | None = None,
        settings: JWKSSettings | None = None,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(jwks_uri, issuer, settings, clock)
        self._owns_client = http_client is None
        self._http = http_client or httpx.Client(transport=transport, timeout=self._timeout())
        # Held by whichever fetch is running, a request's or the background refresh's.
        self._lock = threading.Lock()
        self._refresher: threading.Thread | None = None
        self._closed = False

    def get_key_set(self, kid: str | None = None) -> KeySet:
        """The current key set; fetched when there is none usable or ``kid`` is unknown (once per
        cooldown). A usable stale set answers at once and is refreshed in the background."""
        keys = self._from_cache(kid, self._clock())
        if keys is not None:
            return keys
        with self._lock:
            # Single flight: whoever waited for the lock finds the key set another thread fetched.
            now = self._clock()
            keys = self._cache.lookup(kid, now)
            if keys is not None:
                return keys
            return self._drive(self._cache.refresh_flow(now))

    def refresh(self) -> KeySet:
        """Fetch now, ignoring freshness and cooldown (an operator's tool, not a hot path)."""
        with self._lock:
            return self._drive(self._cache.refresh_flow(self._clock()))

    def _revalidate(self) -> bool:
        if not self._lock.acquire(blocking=False):
            return True  # a fetch is running: it is the refresh
        try:
            now = self._clock()
            if self._closed or not self._cache.refresh_due(now):
                self._lock.release()
                return True
            # The thread owns the lock from here and releases it when its fetch ends.
            self._refresher = threading.Thread(
                target=self._refresh_holding_lock,
                args=(self._cache.refresh_flow(now),),
                name="sealring-jwks-refresh",
                daemon=True,
            )
            self._refresher.start()
        except BaseException:
            self._lock.release()
            raise
        return True

    def _refresh_holding_lock(self, flow: RefreshFlow) -> None:
        try:
            self._drive(flow)
        except JWKSError:
            pass  # recorded and logged by the policy; the stale set serves until its bound
        except Exception:
            log.exception("the background refresh of the JWK Set from %s failed", self.jwks_uri)
        finally:
            self._lock.release()

    def _drive(self, flow: RefreshFlow) -> KeySet:
        try:
            request = next(flow)
            while True:
                try:
                    request = step(flow, self._send(request))
                except StopIteration as stop:
                    result: KeySet = stop.value
                    return result
        finally:
            self._cache.attempt_ended(self._clock())

    def _send(self, request: HTTPRequest) -> HTTPResponse | JWKSError:
        timeout = self._cache.settings.timeout
        args = self._stream_args(request)
        args["headers"]["Connection"] = "close"
        watchdog = _Watchdog(timeout)
        try:
            with (
                watchdog,
                self._http.stream(**args, extensions={"trace": watchdog.trace}) as response,
            ):
                reader = BodyReader(request, response, time.monotonic() + timeout)
                for chunk in reader.chunks() or response.iter_raw():
                    reader.feed(chunk)
                return reader.result()
        except httpx.HTTPError as exc:
            if watchdog.fired:
                return JWKSFetchError(f"fetching {request.url} took longer than the timeout")
            return transport_error(request, exc)
        except JWKSError as exc:
            return exc

    def close(self) -> None:
        """Wait for a background refresh (bounded by the timeout), then close the client."""
        self._closed = True
        refresher = self._refresher
        if refresher is not None:
            refresher.join(self._cache.settings.timeout + 1)
        if self._owns_client:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
