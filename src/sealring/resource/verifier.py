"""Verify JWT access tokens (RFC 9068) for a resource server.

The pipeline for one token, in order (each step raises, none returns a bool):

1. parse the compact JWS (``sealring.jose.parse_compact``) and decode its payload;
2. read the *unverified* ``iss`` only to choose among the **configured** issuers; an issuer that
   is not configured is refused without any I/O (nothing from a token is ever fetched);
3. take that issuer's key set (refetched on an unknown ``kid``, subject to the JWKS cooldown) and
   select the key with the configured algorithm allow-list; a key serves only its own issuer;
4. verify the signature, then the header ``typ`` (RFC 9068 §4: ``at+jwt``) and the claims
   (RFC 9068 §4: ``iss`` exact, ``aud`` contains ours, ``exp``/``nbf``/``iat`` with leeway).

A verified token goes into the :class:`~sealring.resource.cache.VerifiedTokenCache`; a cache hit
still checks that its key is in its issuer's current key set and not revoked.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeAlias

import anyio.to_thread

from sealring.jose.algorithms import check_allow_list
from sealring.jose.errors import JoseError
from sealring.jose.jwk import JWK
from sealring.jose.jwks import KeySet
from sealring.jose.jws import CompactJWS, parse_compact, select_key, verify_signature
from sealring.jose.jwt import ACCESS_TOKEN_TYPE, check_type, decode_payload, validate_claims
from sealring.resource.cache import DEFAULT_CACHE_BYTES, DEFAULT_CACHE_SIZE, VerifiedTokenCache
from sealring.resource.errors import InsufficientScope, InvalidToken
from sealring.resource.jwks import AsyncJWKSClient, JWKSClient, JWKSSettings

__all__ = [
    "DEFAULT_LEEWAY",
    "RFC9068_REQUIRED_CLAIMS",
    "AccessTokenClaims",
    "AccessTokenVerifier",
    "TrustedIssuer",
    "VerificationKeys",
]

#: RFC 9068 §2.2: the claims every JWT access token carries.
RFC9068_REQUIRED_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")
DEFAULT_LEEWAY = 30.0

#: Where an issuer's verification keys come from: a JWKS client or a fixed key set.
VerificationKeys: TypeAlias = JWKSClient | AsyncJWKSClient | KeySet


@dataclass(frozen=True)
class AccessTokenClaims:
    """The verified claims of an access token."""

    iss: str
    sub: str
    aud: tuple[str, ...]
    exp: float
    client_id: str | None
    scopes: frozenset[str]
    iat: float | None
    jti: str | None
    #: The ``kid`` of the key that verified the token.
    kid: str
    #: Every claim, read-only, as it was in the token.
    raw: Mapping[str, object] = field(repr=False)

    def has_scopes(self, required: Iterable[str]) -> bool:
        return self.scopes.issuperset(required)

    def require_scopes(self, required: Collection[str]) -> None:
        """Raise :class:`InsufficientScope` (403) unless every scope in ``required`` is granted."""
        if not self.scopes.issuperset(required):
            raise InsufficientScope(required)


@dataclass(frozen=True)
class TrustedIssuer:
    """One issuer this resource server accepts, with its own keys.

    ``keys`` is a :class:`JWKSClient`, an :class:`AsyncJWKSClient` or a static ``KeySet``; when
    omitted a :class:`JWKSClient` is made from ``jwks_uri`` or by discovery from ``issuer``.
    ``audience`` overrides the verifier's audience for this issuer.
    """

    issuer: str
    keys: VerificationKeys | None = None
    jwks_uri: str | None = None
    audience: str | Collection[str] | None = None


@dataclass
class _Issuer:
    issuer: str
    keys: VerificationKeys
    audience: str | Collection[str]
    owned: bool
    #: What a cache hit may trust without asking ``keys``: the kids of the last fresh key set
    #: seen and the instant (the verifier's clock) it stops being fresh. One tuple, so that a
    #: reader never sees the kids of one key set with the deadline of another.
    trusted: tuple[frozenset[str], float] = (frozenset(), -math.inf)
    #: The key each kid named when it last verified a token that went into the cache: a key
    #: set that binds the kid to another key evicts those tokens like a removed kid's.
    signers: dict[str, JWK] = field(default_factory=dict)


@dataclass
class _Pending:
    token: bytes  # the ASCII token, as parsed and as cached
    jws: CompactJWS
    claims: dict[str, object]
    issuer: _Issuer
    now: float


def _opt_number(claims: Mapping[str, object], name: str) -> float | None:
    value = claims.get(name)
    return float(value) if isinstance(value, int | float) else None


def _claims_object(
    claims: dict[str, object], kid: str, required: Collection[str]
) -> AccessTokenClaims:
    def text(name: str) -> str | None:
        value = claims.get(name)
        if value is None:
            if name in required:
                raise InvalidToken(f"claim {name!r} is required", reason="missing_claim")
            return None
        if not isinstance(value, str):
            raise InvalidToken(f"claim {name!r} must be a string", reason="invalid_claim")
        return value

    scope = text("scope")
    aud = claims.get("aud")
    if isinstance(aud, str):
        audience: tuple[str, ...] = (aud,)
    elif isinstance(aud, list):
        audience = tuple(a for a in aud if isinstance(a, str))
    else:
        audience = ()
    exp = claims.get("exp")
    if not isinstance(exp, int | float):
        raise InvalidToken("claim 'exp' is required", reason="missing_claim")
    return AccessTokenClaims(
        iss=text("iss") or "",
        sub=text("sub") or "",
        aud=audience,
        exp=float(exp),
        client_id=text("client_id"),
        # RFC 6749 §3.3: scope tokens are delimited by spaces (%x20) only; a tab or a Unicode
        # space is not a delimiter, so "a\tb" is one (unusable) token, not two granted scopes.
        scopes=frozenset(scope.split(" ")) - {""} if scope else frozenset(),
        iat=_opt_number(claims, "iat"),
        jti=text("jti"),
        kid=kid,
        raw=MappingProxyType(claims),
    )


class AccessTokenVerifier:
    """Verifies bearer access tokens from one or more trusted issuers.

    The common case is one issuer whose JWKS URI is discovered::

        verifier = AccessTokenVerifier("https://as.example", audience="https://api.example")
        claims = verifier.verify(token)          # or: await verifier.averify(token)

    Defaults follow RFC 9068: ``typ`` must be ``at+jwt``; ``iss``, ``exp``, ``aud``, ``sub``,
    ``client_id``, ``iat`` and ``jti`` are required; leeway 30 s. See ``docs/resource-server.md``
    for every option.
    """

    def __init__(
        self,
        issuer: str | None = None,
        *,
        audience: str | Collection[str],
        jwks_uri: str | None = None,
        keys: VerificationKeys | None = None,
        trusted_issuers: Sequence[TrustedIssuer] = (),
        algorithms: Collection[str] | None = None,
        typ: str | None = ACCESS_TOKEN_TYPE,
        leeway: float = DEFAULT_LEEWAY,
        required_claims: Collection[str] = RFC9068_REQUIRED_CLAIMS,
        cache_size: int | None = DEFAULT_CACHE_SIZE,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        max_token_size: int = 16 * 1024,
        jwks_settings: JWKSSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        configs = list(trusted_issuers)
        if issuer is not None:
            configs.insert(0, TrustedIssuer(issuer, keys=keys, jwks_uri=jwks_uri))
        elif keys is not None or jwks_uri is not None:
            raise ValueError("keys/jwks_uri need an issuer: tokens are only trusted per issuer")
        if not configs:
            raise ValueError("an AccessTokenVerifier needs at least one trusted issuer")
        if isinstance(audience, str) and not audience:
            raise ValueError("audience must not be empty")
        if not (math.isfinite(leeway) and leeway >= 0):
            raise ValueError(f"leeway must be a finite number >= 0, not {leeway!r}")
        if algorithms is not None:
            if isinstance(algorithms, str):
                raise ValueError(
                    f"algorithms must be a list of names, not the string {algorithms!r}"
                )
            check_allow_list(algorithms)
        self.audience = audience
        # None: each key verifies only its declared alg, else its natural one (RS256 for an
        # RSA key without alg, RFC 8725 §3.1). An explicit list also lets an RSA key without
        # alg serve the RS*/PS* algorithms in it.
        self.algorithms = tuple(algorithms) if algorithms is not None else None
        self.typ = typ
        self.leeway = float(leeway)
        self.required_claims = tuple(required_claims)
        self.max_token_size = max_token_size
        self._clock = clock
        self._cache: VerifiedTokenCache[AccessTokenClaims] | None = (
            VerifiedTokenCache(cache_size, cache_bytes) if cache_size else None
        )
        self._revoked: set[tuple[str, str]] = set()
        self._issuers: dict[str, _Issuer] = {}
        for config in configs:
            if config.issuer in self._issuers:
                raise ValueError(f"issuer {config.issuer!r} is configured twice")
            source = config.keys
            owned = source is None
            if source is None:
                source = JWKSClient(
                    config.jwks_uri, issuer=config.issuer, settings=jwks_settings, clock=clock
                )
            elif isinstance(source, JWKSClient | AsyncJWKSClient) and source.issuer not in (
                None,
                config.issuer,
            ):
                raise ValueError(f"the JWKS client of {config.issuer!r} belongs to another issuer")
            entry = _Issuer(config.issuer, source, config.audience or audience, owned)
            if isinstance(source, KeySet):
                entry.trusted = (source.kids, math.inf)
            self._issuers[config.issuer] = entry
            if isinstance(source, JWKSClient | AsyncJWKSClient) and self._cache is not None:
                source.add_listener(self._on_new_keys(config.issuer))

    @property
    def issuers(self) -> tuple[str, ...]:
        return tuple(self._issuers)

    @property
    def cache(self) -> VerifiedTokenCache[AccessTokenClaims] | None:
        return self._cache

    def _on_new_keys(self, issuer: str) -> Callable[[KeySet], None]:
        def evict_removed(keys: KeySet) -> None:
            entry = self._issuers[issuer]
            entry.trusted = (frozenset(), -math.inf)
            if self._cache is not None:
                # A kid that now names another key is gone as well: the tokens its former key
                # signed fail a full verification.
                signers = entry.signers
                kept = {
                    kid for kid in keys.kids if kid not in signers or signers[kid] == keys.get(kid)
                }
                entry.signers = {kid: signers[kid] for kid in kept if kid in signers}
                self._cache.retain_kids(issuer, kept)

        return evict_removed

    def revoke_kid(self, issuer: str, kid: str) -> None:
        """Stop accepting tokens signed by ``kid`` of ``issuer``, cached ones included."""
        self._revoked.add((issuer, kid))
        if self._cache is not None:
            self._cache.evict_kid(issuer, kid)

    # -- verification ----------------------------------------------------------------------

    def verify(self, token: str) -> AccessTokenClaims:
        """Verify ``token``; returns its claims or raises :class:`InvalidToken`.

        Raises :class:`~sealring.resource.errors.JWKSError` when the issuer's keys cannot be had.
        """
        step = self._begin(token)
        if isinstance(step, AccessTokenClaims):
            return step
        source = step.issuer.keys
        if isinstance(source, KeySet):
            keys = source
        elif isinstance(source, JWKSClient):
            keys = source.get_key_set(step.jws.kid)
        else:
            cached = source.cached_key_set(step.jws.kid)
            if cached is None:
                raise TypeError("the key set needs an async fetch: call averify()")
            keys = cached
        return self._complete(step, keys)

    async def averify(self, token: str) -> AccessTokenClaims:
        """:meth:`verify` for async code: never blocks the event loop on a JWKS fetch."""
        step = self._begin(token)
        if isinstance(step, AccessTokenClaims):
            return step
        source = step.issuer.keys
        if isinstance(source, KeySet):
            keys = source
        elif isinstance(source, AsyncJWKSClient):
            keys = await source.get_key_set(step.jws.kid)
        else:
            cached = source.cached_key_set(step.jws.kid)
            if cached is None:
                cached = await anyio.to_thread.run_sync(source.get_key_set, step.jws.kid)
            keys = cached
        return self._complete(step, keys)

    def cached(self, token: str) -> AccessTokenClaims | None:
        """The claims of ``token`` if the cache holds it and its key is still trusted; no I/O.

        The cheap first step of :meth:`verify`, for adapters that want to skip a coroutine.
        """
        if type(token) is not str:
            # Before the cache lookup, which would raise TypeError on an unhashable value.
            raise InvalidToken("the token must be a string", reason="malformed")
        # Too large or not ASCII (a valid token is base64url and dots): never cached.
        cache = self._cache
        if cache is None or len(token) > self.max_token_size or not token.isascii():
            return None
        now = self._clock()
        hit = cache.get(token.encode(), now)
        return self._still_trusted(hit, now) if hit is not None else None

    def cached_header(self, authorization: bytes) -> AccessTokenClaims | None:
        """:meth:`cached` for a raw ``Authorization`` header value, ``b"Bearer <token>"``.

        For ASGI adapters, which get header values as bytes: the lookup neither decodes nor
        copies the token. ``None`` for anything else, including a header with more spaces.
        """
        cache = self._cache
        if cache is None or not (
            authorization.startswith(b"Bearer ") or authorization[:7].lower() == b"bearer "
        ):
            return None
        now = self._clock()
        hit = cache.get(authorization, now, 7)
        if hit is None:
            return None
        # _still_trusted's common case inline: it runs on every request of an ASGI app, where
        # each call frame counts (docs/benchmarks.md, "Under load").
        kids, until = self._issuers[hit.iss].trusted
        if now < until and hit.kid in kids and not self._revoked:
            return hit
        return self._still_trusted(hit, now)

    def _still_trusted(self, hit: AccessTokenClaims, now: float) -> AccessTokenClaims | None:
        """``hit`` if its key is neither revoked nor gone from its issuer's current key set.

        Revocation is re-checked because a put can race it. The key set is asked through the
        issuer's snapshot while that is fresh; a key set due for refresh sends the request down
        the full path, whose fetch evicts the tokens of keys that left the set.
        """
        revoked = self._revoked
        if revoked and (hit.iss, hit.kid) in revoked:
            return None
        issuer = self._issuers[hit.iss]
        kids, until = issuer.trusted
        if now < until and hit.kid in kids:
            return hit
        source = issuer.keys
        if isinstance(source, KeySet) or not source.has_usable_key(hit.kid):
            return None
        if source.clock is self._clock:  # deadlines comparable with ours
            snapshot = source.fresh_kids()
            if snapshot is not None:
                issuer.trusted = snapshot
                # A fetch that landed since the snapshot was read has already reset
                # ``trusted`` (its listener ran): the older set must not be trusted past it.
                again = source.fresh_kids()
                if again is None or again[0] is not snapshot[0] or again[1] != snapshot[1]:
                    issuer.trusted = (frozenset(), -math.inf)
        return hit

    def _begin(self, token: str) -> AccessTokenClaims | _Pending:
        hit = self.cached(token)
        if hit is not None:
            return hit
        # One encoding serves the parse and the put; a token too large or not ASCII is left to
        # the parse, which names its fault.
        raw = token.encode() if len(token) <= self.max_token_size and token.isascii() else None
        now = self._clock()
        try:
            jws = parse_compact(token if raw is None else raw, max_size=self.max_token_size)
            claims = decode_payload(jws)
        except JoseError as exc:
            raise InvalidToken(exc.message, reason=exc.code) from exc
        assert raw is not None  # parse_compact refuses a token too large or not ASCII
        iss = claims.get("iss")
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise InvalidToken("the token's issuer is not trusted", reason="invalid_issuer")
        return _Pending(raw, jws, claims, issuer, now)

    def _complete(self, step: _Pending, keys: KeySet) -> AccessTokenClaims:
        issuer = step.issuer
        try:
            key, alg = select_key(step.jws, keys, self.algorithms)
            if (issuer.issuer, key.kid) in self._revoked:
                raise InvalidToken("the token's signing key is revoked", reason="key_revoked")
            verify_signature(step.jws, key, alg)
            check_type(step.jws.header, self.typ)
            validate_claims(
                step.claims,
                now=step.now,
                leeway=self.leeway,
                issuer=issuer.issuer,
                audience=issuer.audience,
                required=self.required_claims,
            )
        except JoseError as exc:
            raise InvalidToken(exc.message, reason=exc.code) from exc
        result = _claims_object(step.claims, key.kid, self.required_claims)
        if self._cache is not None:
            raw = step.token
            issuer.signers[key.kid] = key
            self._cache.put(
                raw, result, expires_at=result.exp, issuer=issuer.issuer, kid=key.kid, now=step.now
            )
            # A fetch that replaced the key set while this token was being verified ran its
            # listener either after the put (which then evicts a removed or re-keyed kid) or
            # before it, in which case the entry is taken back here: a key set that is no longer
            # current never vouches for a cached token.
            source = issuer.keys
            if not isinstance(source, KeySet) and source.key_set is not keys:
                self._cache.discard(raw)
        return result

    def close(self) -> None:
        """Close the JWKS clients this verifier made itself."""
        for issuer in self._issuers.values():
            if issuer.owned and isinstance(issuer.keys, JWKSClient):
                issuer.keys.close()

    def __enter__(self) -> AccessTokenVerifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
