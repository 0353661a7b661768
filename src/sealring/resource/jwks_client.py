"""Fetch and cache an issuer's JWK Set (RFC 7517 §5) for token verification.

The policy lives in :class:`_KeySetCache`, which does no I/O and never reads the clock on its own:
a refresh is a generator that yields the HTTP requests it needs and receives their responses
(the flow style of httpx's ``Auth``). :class:`JWKSClient` and :class:`AsyncJWKSClient` only drive
that generator with an ``httpx.Client`` or ``httpx.AsyncClient`` and add single flight.

What the policy enforces, and why (see ``docs/resource-server.md``):

* ``Cache-Control: max-age`` is honoured within ``[min_max_age, max_max_age]``; without it a
  key set is fresh for ``default_max_age``. ``ETag`` is revalidated with ``If-None-Match``.
* A token whose ``kid`` is unknown may trigger a refetch, but at most one per ``cooldown``:
  a flood of random kids cannot turn the resource server into a JWKS amplifier.
* A failed refresh keeps the last good key set for ``stale_if_error`` after it went stale, then
  fails closed (:class:`KeySetUnavailable`).
* HTTPS only (plain HTTP for loopback), no redirects, a timeout, and a response size cap.
  Only configured URLs are fetched: the JWKS URI comes from configuration or from the metadata of
  the configured issuer (RFC 8414 §3, with the ``issuer`` equality check of §3.3), never from a
  token (``jku``, ``x5u``, ``iss``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import httpx

from sealring.jose import _json
from sealring.jose.errors import JoseError
from sealring.jose.jwks import KeySet
from sealring.resource.errors import (
    DiscoveryError,
    JWKSError,
    JWKSFetchError,
    KeySetUnavailable,
)

__all__ = ["AsyncJWKSClient", "JWKSClient", "JWKSSettings"]

_METADATA_SUFFIXES = ("oauth-authorization-server", "openid-configuration")
_MAX_METADATA_SIZE = 64 * 1024
# What we ask for and decode ourselves, so the size cap bounds the decoded bytes as they are
# produced (httpx would inflate a whole network chunk first: a 64 KiB gzip chunk can become
# 64 MiB). Fixed, not whatever decoders happen to be installed.
_ACCEPT_ENCODING = "gzip, deflate"
# RFC 9110 §8.8.3 entity-tag, visible ASCII only: the only kind sent back in If-None-Match.
_ENTITY_TAG = re.compile(r'(?:W/)?"[\x21\x23-\x7e]{0,1024}"')


@dataclass(frozen=True)
class JWKSSettings:
    """How a key set is fetched and cached. Checked on construction; every value in seconds/bytes."""

    min_max_age: float = 30.0
    max_max_age: float = 24 * 3600.0
    default_max_age: float = 600.0
    cooldown: float = 30.0
    stale_if_error: float = 3600.0
    timeout: float = 5.0
    max_size: int = 512 * 1024

    def __post_init__(self) -> None:
        for name in ("min_max_age", "max_max_age", "default_max_age", "cooldown", "stale_if_error"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(
                    f"JWKS setting {name!r} must be a finite number >= 0, not {value!r}"
                )
        if self.min_max_age > self.max_max_age:
            raise ValueError("JWKS setting 'min_max_age' must not exceed 'max_max_age'")
        if not self.min_max_age <= self.default_max_age <= self.max_max_age:
            raise ValueError(
                "JWKS setting 'default_max_age' must lie within [min_max_age, max_max_age]"
            )
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError(f"JWKS setting 'timeout' must be > 0, not {self.timeout!r}")
        if not (isinstance(self.max_size, int) and self.max_size > 0):
            raise ValueError(
                f"JWKS setting 'max_size' must be a positive int, not {self.max_size!r}"
            )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str) -> str:
    """Refuse anything but ``https://`` (``http://`` only for loopback hosts)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute https URL, not {url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            f"{what} must use https (plain http is allowed for loopback only): {url!r}"
        )
    if parts.fragment:
        raise ValueError(f"{what} must not have a fragment: {url!r}")
    return url


def metadata_urls(issuer: str) -> tuple[str, ...]:
    """Where the metadata of ``issuer`` lives: RFC 8414 §3 first, then OpenID Discovery §4."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    rfc8414 = urlunsplit(
        (parts.scheme, parts.netloc, f"/.well-known/{_METADATA_SUFFIXES[0]}{path}", "", "")
    )
    oidc = urlunsplit(
        (parts.scheme, parts.netloc, f"{path}/.well-known/{_METADATA_SUFFIXES[1]}", "", "")
    )
    return (rfc8414, oidc)


def _delta_seconds(value: str) -> int | None:
    """RFC 9111 §1.2.2 delta-seconds: ASCII digits only; past 2**31 it is read as 2**31.

    Never converts more digits than that needs, so a 400-digit value cannot overflow float
    arithmetic (or hit the int parsing limit).
    """
    value = value.strip().strip('"')
    if not (value.isascii() and value.isdigit()):
        # A negative number is not delta-seconds, but its intent is plain: not fresh at all.
        return 0 if value[:1] == "-" and value[1:].isascii() and value[1:].isdigit() else None
    return 2**31 if len(value) > 10 else min(int(value), 2**31)


def freshness_lifetime(headers: Mapping[str, str], settings: JWKSSettings) -> float:
    """Seconds a response stays fresh: ``max-age`` minus ``Age``, clamped to the bounds."""
    max_age: float | None = None
    for directive in headers.get("cache-control", "").split(","):
        name, _, value = directive.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-cache", "no-store"):
            max_age = 0.0
            break
        if name == "max-age":
            max_age = _delta_seconds(value)
    if max_age is None:
        return settings.default_max_age
    max_age -= _delta_seconds(headers.get("age", "0")) or 0
    return min(max(max_age, settings.min_max_age), settings.max_max_age)


@dataclass(frozen=True)
class HTTPRequest:
    """A GET the policy wants sent. Only URLs from configuration or checked metadata."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    max_size: int = 512 * 1024


@dataclass(frozen=True)
class HTTPResponse:
    status: int
    headers: Mapping[str, str]  # lower-cased names
    body: bytes


KeySetListener = Callable[[KeySet], None]
RefreshFlow = Generator[HTTPRequest, HTTPResponse, KeySet]


class _KeySetCache:
    """The I/O-free policy shared by the sync and async clients."""

    def __init__(self, jwks_uri: str | None, issuer: str | None, settings: JWKSSettings) -> None:
        if jwks_uri is None and issuer is None:
            raise ValueError("a JWKS client needs a jwks_uri or an issuer to discover it from")
        self.settings = settings
        self.issuer = check_url(issuer, "issuer") if issuer is not None else None
        self.jwks_uri = check_url(jwks_uri, "jwks_uri") if jwks_uri is not None else None
        self.keys: KeySet | None = None
        self.etag: str | None = None
        self.fresh_until = -math.inf
        self.last_attempt = -math.inf
        self.last_error: JWKSError | None = None
        self.listeners: list[KeySetListener] = []

    # -- deciding --------------------------------------------------------------------------

    def lookup(self, kid: str | None, now: float) -> KeySet | None:
        """The key set if it can answer without I/O; ``None`` when a fetch is due now.

        Raises :class:`JWKSError` when there is nothing to serve and a fetch is not allowed yet.
        """
        keys = self.keys
        if keys is not None and now < self.fresh_until and (kid is None or kid in keys):
            return keys  # the common case, first: every cache hit of the verifier asks it
        cooling = now - self.last_attempt < self.settings.cooldown
        if keys is None:
            if cooling and self.last_error is not None:
                raise KeySetUnavailable(
                    f"no key set yet; the last fetch failed: {self.last_error.message}"
                ) from self.last_error
            return None
        if now < self.fresh_until:
            if kid is None or kid in keys or cooling:
                return keys
            return None
        # Expired: refetch, unless the last attempt failed within the cooldown. A successful
        # fetch does not hold back the next one: max-age may be shorter than the cooldown.
        if not cooling or self.last_error is None:
            return None
        if now < self.fresh_until + self.settings.stale_if_error:
            return keys
        raise _too_old() from self.last_error

    def fresh_kids(self, now: float) -> tuple[frozenset[str], float] | None:
        """The kids of a fresh key set and the instant it stops being fresh; else ``None``."""
        # The deadline first, then the keys (a fetch writes them in the other order): a fetch
        # landing between the two reads pairs its new keys with the old deadline, never the
        # old keys with its new deadline.
        fresh_until = self.fresh_until
        keys = self.keys
        if keys is not None and now < fresh_until:
            return keys.kids, fresh_until
        return None

    def serves(self, kid: str, now: float) -> bool:
        """Whether ``kid`` is in a key set usable now without I/O (checked on every cache hit).

        ``False``, never an exception, when no key set is usable now: the caller's full path
        then fetches or answers the outage (503); a cache hit must not turn it into a 500.
        """
        fresh_until = self.fresh_until  # before the keys, as in fresh_kids
        keys = self.keys
        if keys is not None and now < fresh_until:
            return kid in keys.kids
        try:
            keys = self.lookup(kid, now)
        except JWKSError:
            return False
        return keys is not None and kid in keys.kids

    # -- fetching --------------------------------------------------------------------------

    def refresh_flow(self, now: float) -> RefreshFlow:
        """Refresh the key set; yields requests, receives responses, returns the key set to use.

        Failures (the driver throws transport errors in as :class:`JWKSFetchError`) fall back to
        the last good key set while it is within the stale-if-error window.
        """
        self.last_attempt = now
        try:
            if self.jwks_uri is None:
                self.jwks_uri = yield from self._discover()
            keys = yield from self._fetch_jwks(now)
        except JWKSError as exc:
            self.last_error = exc
            if self.keys is not None and now < self.fresh_until + self.settings.stale_if_error:
                return self.keys
            if self.keys is not None:
                raise _too_old() from exc
            raise
        self.last_error = None
        return keys

    def _discover(self) -> Generator[HTTPRequest, HTTPResponse, str]:
        assert self.issuer is not None
        for url in metadata_urls(self.issuer):
            response = yield HTTPRequest(
                url, {"Accept": "application/json"}, max_size=_MAX_METADATA_SIZE
            )
            if response.status == 404:
                continue
            _check_status(response, url)
            try:
                # Strict JSON: a duplicated "issuer" or "jwks_uri" is refused, not last-wins,
                # and deep nesting is a refusal rather than a RecursionError.
                metadata = _json.loads_object(response.body, what="metadata")
            except JoseError as exc:
                raise DiscoveryError(f"metadata at {url} is not a JSON object") from exc
            # RFC 8414 §3.3: the issuer in the document MUST be identical to the one configured.
            if metadata.get("issuer") != self.issuer:
                raise DiscoveryError(
                    f"metadata at {url} names another issuer", code="issuer_mismatch"
                )
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise DiscoveryError(f"metadata at {url} has no jwks_uri")
            try:
                return check_url(jwks_uri, "jwks_uri")
            except ValueError as exc:
                raise DiscoveryError(str(exc)) from exc
        raise DiscoveryError(f"no authorization-server metadata found for {self.issuer}")

    def _fetch_jwks(self, now: float) -> Generator[HTTPRequest, HTTPResponse, KeySet]:
        assert self.jwks_uri is not None
        headers = {"Accept": "application/jwk-set+json, application/json"}
        if self.etag is not None and self.keys is not None:
            headers["If-None-Match"] = self.etag
        response = yield HTTPRequest(self.jwks_uri, headers, max_size=self.settings.max_size)
        if response.status == 304 and self.keys is not None:
            self.fresh_until = now + freshness_lifetime(response.headers, self.settings)
            return self.keys
        _check_status(response, self.jwks_uri)
        try:
            keys = KeySet.from_json(response.body, max_size=self.settings.max_size)
        except JoseError as exc:
            raise JWKSFetchError(f"the JWK Set is refused: {exc}", code="jwks_invalid") from exc
        etag = response.headers.get("etag")
        # A malformed tag (control or non-ASCII characters) is not revalidated: sent back, it
        # would make every later request fail to encode.
        self.etag = etag if etag is not None and _ENTITY_TAG.fullmatch(etag) else None
        # Keys first, then the deadline: a reader between the two pairs the new keys with the
        # old deadline (at worst a needless refetch), never the old keys with the new one.
        previous, self.keys = self.keys, keys
        self.fresh_until = now + freshness_lifetime(response.headers, self.settings)
        if previous is None or previous.to_dict() != keys.to_dict():
            for listener in tuple(self.listeners):
                listener(keys)
        return keys


def _too_old() -> KeySetUnavailable:
    # Fail closed: past the stale-if-error window no token is accepted against unrefreshable keys.
    return KeySetUnavailable("the key set could not be refreshed and the last good one is too old")


def _check_status(response: HTTPResponse, url: str) -> None:
    if 300 <= response.status < 400:
        raise JWKSFetchError(f"{url} answered a redirect; refused", code="jwks_redirect_refused")
    if response.status != 200:
        raise JWKSFetchError(f"{url} answered HTTP {response.status}", code="jwks_bad_status")


class _BodyReader:
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
            raise JWKSFetchError(
                f"{request.url} sent an unsupported Content-Encoding", code="jwks_fetch_failed"
            )

    def _too_large(self) -> JWKSFetchError:
        return JWKSFetchError(
            f"{self.request.url} sent more than the size cap", code="jwks_too_large"
        )

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
        """None to read raw; else the body a transport already read and decoded (MockTransport)."""
        if self.response.is_stream_consumed:
            self._inflate = None
            return iter((self.response.content,))
        return None

    def result(self) -> HTTPResponse:
        if self._inflate is not None and not self._inflate.eof:
            raise JWKSFetchError(f"{self.request.url} sent a truncated encoded body")
        headers = {k.lower(): v for k, v in self.response.headers.items()}
        return HTTPResponse(self.response.status_code, headers, bytes(self.body))


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


def _transport_error(request: HTTPRequest, exc: httpx.HTTPError) -> JWKSFetchError:
    error = JWKSFetchError(f"fetching {request.url} failed: {type(exc).__name__}")
    error.__cause__ = exc
    return error


def _step(flow: RefreshFlow, outcome: HTTPResponse | JWKSError) -> HTTPRequest:
    """Feed one outcome to the flow; its next request, or ``StopIteration`` with the key set."""
    if isinstance(outcome, JWKSError):
        return flow.throw(outcome)
    return flow.send(outcome)


class _ClientBase:
    def __init__(
        self,
        jwks_uri: str | None,
        issuer: str | None,
        settings: JWKSSettings | None,
        clock: Callable[[], float],
    ) -> None:
        self._cache = _KeySetCache(jwks_uri, issuer, settings or JWKSSettings())
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
        """The key set when it can serve ``kid`` without I/O now, else ``None``."""
        return self._cache.lookup(kid, self._clock())

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

        ``False`` when the set is due for refresh: the caller then takes the path that fetches.
        """
        return self._cache.serves(kid, self._clock())

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


class JWKSClient(_ClientBase):
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
        self._lock = threading.Lock()

    def get_key_set(self, kid: str | None = None) -> KeySet:
        """The current key set; refetched when stale, or when ``kid`` is unknown (cooldown)."""
        keys = self._cache.lookup(kid, self._clock())
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

    def _drive(self, flow: RefreshFlow) -> KeySet:
        request = next(flow)
        while True:
            try:
                request = _step(flow, self._send(request))
            except StopIteration as stop:
                result: KeySet = stop.value
                return result

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
                reader = _BodyReader(request, response, time.monotonic() + timeout)
                for chunk in reader.chunks() or response.iter_raw():
                    reader.feed(chunk)
                return reader.result()
        except httpx.HTTPError as exc:
            if watchdog.fired:
                return JWKSFetchError(f"fetching {request.url} took longer than the timeout")
            return _transport_error(request, exc)
        except JWKSError as exc:
            return exc

    def close(self) -> None:
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


class AsyncJWKSClient(_ClientBase):
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

    async def get_key_set(self, kid: str | None = None) -> KeySet:
        """The current key set; refetched when stale, or when ``kid`` is unknown (cooldown)."""
        keys = self._cache.lookup(kid, self._clock())
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

    async def _drive(self, flow: RefreshFlow) -> KeySet:
        request = next(flow)
        while True:
            try:
                request = _step(flow, await self._send(request))
            except StopIteration as stop:
                result: KeySet = stop.value
                return result

    async def _send(self, request: HTTPRequest) -> HTTPResponse | JWKSError:
        timeout = self._cache.settings.timeout
        try:
            # One deadline for connect, headers and body together.
            async with asyncio.timeout(timeout):
                async with self._http.stream(**self._stream_args(request)) as response:
                    reader = _BodyReader(request, response, time.monotonic() + timeout)
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
            return _transport_error(request, exc)
        except JWKSError as exc:
            return exc

    async def aclose(self) -> None:
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
