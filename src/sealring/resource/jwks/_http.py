"""The HTTP plumbing both JWKS clients share: request arguments, bounded body reading, errors.

Nothing here decides what to fetch or whether to trust it (that is :mod:`._policy`); it turns
one :class:`HTTPRequest` into one :class:`HTTPResponse` or a :class:`JWKSFetchError`.
"""

from __future__ import annotations

import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from sealring.jose.jwks import KeySet
from sealring.resource.errors import JWKSError, JWKSFetchError, JWKSTooLarge
from sealring.resource.jwks._policy import (
    HTTPRequest,
    HTTPResponse,
    JWKSSettings,
    KeySetCache,
    KeySetListener,
    RefreshFlow,
)

__all__ = ["BodyReader", "ClientBase", "step", "transport_error"]

# What we ask for and decode ourselves, so the size cap bounds the decoded bytes as they are
# produced (httpx would inflate a whole network chunk first: a 64 KiB gzip chunk can become
# 64 MiB). Fixed, not whatever decoders happen to be installed.
_ACCEPT_ENCODING = "gzip, deflate"


class BodyReader:
    """Collects a response body within the size cap (declared, raw and decoded) and deadline.

    The body is read raw and decoded here with a bound on the output of every step, so a
    compression bomb costs at most ``max_size`` bytes; ``deadline`` (``time.monotonic``) bounds
    the whole body, which per-read timeouts alone do not (a server sending one byte per second
    never trips them).
    """

    def __init__(self, request: HTTPRequest, response: httpx.Response, deadline: float) -> None:
        self.request = request
        self.response = response
        self.deadline = deadline
        self.body = bytearray()
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > request.max_size:
            raise self._too_large()
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        self._inflate: Any = None
        if encoding in ("gzip", "x-gzip", "deflate"):
            # wbits 47 = 32 + 15: zlib or gzip framing, detected from the header.
            self._inflate = zlib.decompressobj(47)
        elif encoding not in ("identity", ""):
            raise JWKSFetchError(f"{request.url} sent an unsupported Content-Encoding")

    def _too_large(self) -> JWKSFetchError:
        return JWKSTooLarge(f"{self.request.url} sent more than the size cap")

    def feed(self, chunk: bytes) -> None:
        if time.monotonic() > self.deadline:
            raise JWKSFetchError(f"fetching {self.request.url} took longer than the timeout")
        if self._inflate is not None:
            try:
                # At most one byte more than still fits: enough to tell "too large".
                chunk = self._inflate.decompress(chunk, self.request.max_size - len(self.body) + 1)
            except zlib.error as exc:
                raise JWKSFetchError(f"{self.request.url} sent a corrupt encoding") from exc
        self.body += chunk
        if len(self.body) > self.request.max_size:
            raise self._too_large()

    def chunks(self) -> Iterator[bytes] | None:
        """None to read raw; else the body an in-process transport already read and decoded."""
        if self.response.is_stream_consumed:
            self._inflate = None
            return iter((self.response.content,))
        return None

    def result(self) -> HTTPResponse:
        if self._inflate is not None and not self._inflate.eof:
            raise JWKSFetchError(f"{self.request.url} sent a truncated encoded body")
        headers = {k.lower(): v for k, v in self.response.headers.items()}
        return HTTPResponse(self.response.status_code, headers, bytes(self.body))


def transport_error(request: HTTPRequest, exc: httpx.HTTPError) -> JWKSFetchError:
    error = JWKSFetchError(f"fetching {request.url} failed: {type(exc).__name__}")
    error.__cause__ = exc
    return error


def step(flow: RefreshFlow, outcome: HTTPResponse | JWKSError) -> HTTPRequest:
    """Feed one outcome to the flow; its next request, or ``StopIteration`` with the key set."""
    if isinstance(outcome, JWKSError):
        return flow.throw(outcome)
    return flow.send(outcome)


class ClientBase(ABC):
    """What the sync and async clients share: the policy, the clock, the request arguments."""

    def __init__(
        self,
        jwks_uri: str | None,
        issuer: str | None,
        settings: JWKSSettings | None,
        clock: Callable[[], float],
    ) -> None:
        self._cache = KeySetCache(jwks_uri, issuer, settings or JWKSSettings())
        self._clock = clock

    @property
    def issuer(self) -> str | None:
        return self._cache.issuer

    @property
    def jwks_uri(self) -> str | None:
        """The configured or discovered JWKS URI (``None`` until discovery has run)."""
        return self._cache.jwks_uri

    @property
    def settings(self) -> JWKSSettings:
        return self._cache.settings

    def add_listener(self, listener: KeySetListener) -> None:
        """Call ``listener(key_set)`` whenever a fetch brings a different key set."""
        self._cache.listeners.append(listener)

    def cached_key_set(self, kid: str | None = None) -> KeySet | None:
        """The key set when it can serve ``kid`` without I/O now, else ``None``.

        A set past its freshness but still usable answers, and its refresh starts in the
        background.
        """
        return self._from_cache(kid, self._clock())

    def _from_cache(self, kid: str | None, now: float) -> KeySet | None:
        keys = self._cache.lookup(kid, now)
        if keys is not None and self._cache.refresh_due(now) and not self._revalidate():
            return None
        return keys

    @abstractmethod
    def _revalidate(self) -> bool:
        """Start refreshing a stale set in the background, unless a fetch is already running.

        ``False`` when this client cannot refresh without the caller (the async client outside
        an event loop): the caller then takes the path that fetches.
        """

    @property
    def key_set(self) -> KeySet | None:
        """The last key set fetched, fresh or not (``None`` before the first fetch); no I/O."""
        return self._cache.keys

    @property
    def clock(self) -> Callable[[], float]:
        """The clock this client reads its deadlines with."""
        return self._clock

    def fresh_kids(self) -> tuple[frozenset[str], float] | None:
        """The key ids of the key set while it is fresh, with the instant (by :attr:`clock`) it
        stops being fresh; ``None`` when there is no fresh key set."""
        return self._cache.fresh_kids(self._clock())

    def has_usable_key(self, kid: str) -> bool:
        """Whether ``kid`` is in the key set and that set can be used now without a fetch.

        A set past its freshness but still usable serves, and its refresh starts in the
        background; ``False`` when the caller must take the path that fetches.
        """
        now = self._clock()
        if not self._cache.serves(kid, now):
            return False
        return not self._cache.refresh_due(now) or self._revalidate()

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self._cache.settings.timeout)

    def _stream_args(self, request: HTTPRequest) -> dict[str, Any]:
        return {
            "method": "GET",
            "url": request.url,
            "headers": {"Accept-Encoding": _ACCEPT_ENCODING, **request.headers},
            "follow_redirects": False,  # a JWKS URI that moves is a configuration to fix
            "timeout": self._timeout(),
        }
