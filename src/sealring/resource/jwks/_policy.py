"""The JWKS cache policy (RFC 7517 §5 key sets, RFC 9111 freshness), without I/O.

:class:`KeySetCache` never does I/O and never reads the clock on its own: a refresh is a
generator that yields the :class:`HTTPRequest` it needs and receives the :class:`HTTPResponse`
(the flow style of httpx's ``Auth``). The sync and async clients only drive that generator.

What the policy enforces, and why (see ``docs/resource-server.md``):

* ``Cache-Control: max-age`` is honoured within ``[min_max_age, max_max_age]``; without it a
  key set is fresh for ``default_max_age``. ``ETag`` is revalidated with ``If-None-Match``.
* A token whose ``kid`` is unknown may trigger a refetch, but at most one per ``cooldown``:
  a flood of random kids cannot turn the resource server into a JWKS amplifier.
* A key set past its freshness stays usable for ``stale_if_error`` more seconds (RFC 5861's
  stale-while-revalidate and stale-if-error in one bound): a known ``kid`` is answered from it
  at once while the client refreshes it in the background (:meth:`KeySetCache.refresh_due`), so
  no request waits on a slow or hung source; past that bound it fails closed
  (:class:`KeySetUnavailable`). Only a cold cache, an unknown ``kid`` or a set past the bound
  waits for a fetch, and never longer than ``timeout``.
* HTTPS only (plain HTTP for loopback) and no redirects. Only configured URLs are fetched: the
  JWKS URI comes from configuration or from the metadata of the configured issuer (RFC 8414 §3,
  with the ``issuer`` equality check of §3.3), never from a token (``jku``, ``x5u``, ``iss``).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import Counter

from sealring.jose import _json
from sealring.jose.errors import JoseError
from sealring.jose.jwks import KeySet
from sealring.resource.errors import (
    DiscoveryError,
    IssuerMismatch,
    JWKSBadStatus,
    JWKSError,
    JWKSInvalid,
    JWKSRedirectRefused,
    KeySetUnavailable,
)
from sealring.urls import is_loopback_host

__all__ = [
    "KEY_SETS_REFUSED",
    "REFRESH_FAILURES",
    "STALE_SERVED",
    "HTTPRequest",
    "HTTPResponse",
    "JWKSSettings",
    "KeySetCache",
    "KeySetListener",
    "RefreshFlow",
    "check_url",
    "freshness_lifetime",
    "metadata_urls",
]

log = logging.getLogger("sealring.resource")

# In the default registry: an application's /metrics shows it (the example API's does).
KEY_SETS_REFUSED = Counter(
    "sealring_resource_jwks_refused",
    "JWK Sets fetched and refused (too many keys, too large, malformed), by error code",
    ["code"],
)
REFRESH_FAILURES = Counter(
    "sealring_resource_jwks_refresh_failures",
    "JWK Set fetches that failed (the last good set, if usable, stays in use), by error code",
    ["code"],
)
STALE_SERVED = Counter(
    "sealring_resource_jwks_stale_served",
    "Key-set lookups answered from a set past its freshness while it is refreshed",
)

_METADATA_SUFFIXES = ("oauth-authorization-server", "openid-configuration")
_MAX_METADATA_SIZE = 64 * 1024
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


def check_url(url: str, what: str) -> str:
    """Refuse anything but ``https://`` (``http://`` only for loopback hosts)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute https URL, not {url!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
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
    digits = value.lstrip("0")  # "0000000000120" is 120 s, not "more than ten digits"
    return 2**31 if len(digits) > 10 else min(int(digits or "0"), 2**31)


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


class KeySetCache:
    """The I/O-free policy shared by the sync and async clients: one per JWKS client."""

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
        """The key set if it can answer without I/O; ``None`` when the caller must fetch now.

        Raises :class:`JWKSError` when there is nothing to serve and a fetch is not allowed yet.
        A set past its freshness but within ``stale_if_error`` answers a known ``kid``: the
        caller then refreshes it in the background when :meth:`refresh_due` says so.
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
        if now < self.fresh_until:  # fresh, and the kid is unknown: refetch once per cooldown
            return keys if cooling else None
        if now < self.fresh_until + self.settings.stale_if_error:
            if kid is None or kid in keys:
                STALE_SERVED.inc()
                return keys
            # An unknown kid may wait for a fetch (a rotation's new key), unless the last one
            # failed within the cooldown. A successful fetch does not hold back the next one:
            # max-age may be shorter than the cooldown.
            return keys if cooling and self.last_error is not None else None
        # Too old to serve: only a fetch can answer, and after a failure not before the cooldown.
        if not cooling or self.last_error is None:
            return None
        raise _too_old() from self.last_error

    def refresh_due(self, now: float) -> bool:
        """Whether a set served past its freshness should be refreshed in the background now.

        Not while fresh, and after a failed attempt not before the cooldown has passed: a hung
        or failing source is asked once per cooldown, however many requests arrive.
        """
        if self.keys is None or now < self.fresh_until:
            return False
        return self.last_error is None or now - self.last_attempt >= self.settings.cooldown

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
            self._failed(exc, now)
            if self.keys is not None and now < self.fresh_until + self.settings.stale_if_error:
                return self.keys
            if self.keys is not None:
                raise _too_old() from exc
            raise
        if self.last_error is not None:
            log.warning("JWK Set from %s fetched again after a failure", self.jwks_uri)
        self.last_error = None
        return keys

    def attempt_ended(self, now: float) -> None:
        """The driver's word that the fetch begun by :meth:`refresh_flow` is over, at ``now``.

        The cooldown counts from here: a fetch that hung until the timeout must not leave the
        requests that waited for it free to start another one at once (with a timeout as long as
        the cooldown, an unknown kid would otherwise wait two timeouts).
        """
        self.last_attempt = max(self.last_attempt, now)

    def _failed(self, exc: JWKSError, now: float) -> None:
        """Record a failed fetch; one log line when an outage starts, not one per attempt."""
        REFRESH_FAILURES.labels(exc.code).inc()
        first = self.last_error is None
        self.last_error = exc
        source = self.jwks_uri or self.issuer
        if self.keys is None:
            log.error("no JWK Set from %s yet: %s", source, exc.message)
        elif now < self.fresh_until + self.settings.stale_if_error:
            if first:
                log.warning(
                    "JWK Set refresh from %s failed (%s); serving the cached set for up to "
                    "%.0f s past its freshness",
                    source,
                    exc.message,
                    self.fresh_until + self.settings.stale_if_error - now,
                )
        else:
            log.error(
                "JWK Set from %s could not be refreshed and the cached one is too old: "
                "failing closed (%s)",
                source,
                exc.message,
            )

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
                raise IssuerMismatch(f"metadata at {url} names another issuer")
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
            # Not quiet (issue 12): the last good set stays in use, so without this line a
            # refused set (say, more keys than the cap) shows only as 401s for new kids.
            log.error("JWK Set from %s refused, keeping the last good one: %s", self.jwks_uri, exc)
            KEY_SETS_REFUSED.labels(exc.code).inc()
            raise JWKSInvalid(f"the JWK Set is refused: {exc}") from exc
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
        raise JWKSRedirectRefused(f"{url} answered a redirect; refused")
    if response.status != 200:
        raise JWKSBadStatus(f"{url} answered HTTP {response.status}")
