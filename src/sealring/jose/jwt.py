"""JSON Web Tokens (RFC 7519) and JWT access tokens (RFC 9068) over :mod:`sealring.jose.jws`.

Nothing here reads the clock by itself: :func:`validate_claims` takes ``now`` and
:class:`JWTVerifier` takes a ``clock``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sealring.jose import _json
from sealring.jose.errors import (
    ExpiredToken,
    ImmatureToken,
    InvalidAudience,
    InvalidClaim,
    InvalidIssuer,
    InvalidTokenType,
    JoseError,
    MissingClaim,
)
from sealring.jose.jwk import JWK
from sealring.jose.jwks import KeySet
from sealring.jose.jws import (
    DEFAULT_MAX_HEADER_SIZE,
    DEFAULT_MAX_TOKEN_SIZE,
    CompactJWS,
    Signer,
    parse_compact,
    select_key,
    sign_compact,
    verify_signature,
)

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "JWTVerifier",
    "VerifiedJWT",
    "check_type",
    "decode_payload",
    "encode_jwt",
    "validate_claims",
]

ACCESS_TOKEN_TYPE: Final = "at+jwt"  # noqa: S105 - a media type, not a secret
_STRING_CLAIMS = ("iss", "sub", "jti")


def encode_jwt(
    claims: Mapping[str, object],
    signer: Signer,
    *,
    typ: str | None = "JWT",
    header: Mapping[str, object] | None = None,
) -> str:
    """Sign ``claims`` as a compact JWT; ``typ`` goes in the header unless ``header`` sets it."""
    extra: dict[str, object] = dict(header) if header else {}
    if typ is not None:
        extra.setdefault("typ", typ)
    try:
        payload = _json.dumps(claims).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise JoseError("claims are not JSON-serialisable") from exc
    return sign_compact(payload, signer, header=extra)


def decode_payload(jws: CompactJWS) -> dict[str, object]:
    """The JWT Claims Set: a strict JSON object (RFC 7519 §7.2 steps 9-10)."""
    return _json.loads_object(jws.payload, what="JWT claims")


def _numeric_date(claims: Mapping[str, object], name: str) -> float | int:
    """RFC 7519 §2 NumericDate: a JSON number; booleans, strings and non-finite values refused."""
    value = claims[name]
    kind = type(value)
    if kind is int:
        return value  # type: ignore[return-value]
    if kind is float and math.isfinite(value):  # type: ignore[arg-type]
        return value  # type: ignore[return-value]
    raise InvalidClaim(f"claim {name!r} is not a NumericDate", claim=name)


def validate_claims(
    claims: Mapping[str, object],
    *,
    now: float,
    leeway: float = 0,
    issuer: str | None = None,
    audience: str | Collection[str] | None = None,
    required: Collection[str] = ("exp",),
) -> None:
    """Check the registered claims (RFC 7519 §4.1) at time ``now`` (seconds since the epoch).

    ``aud`` is compared only when ``audience`` is given; pass it for access tokens.
    """
    for name in required:
        if name not in claims:
            raise MissingClaim(f"claim {name!r} is required", claim=name)
    if "exp" in claims and now - leeway >= _numeric_date(claims, "exp"):
        # RFC 7519 §4.1.4: the current time MUST be before exp.
        raise ExpiredToken("token has expired")
    if "nbf" in claims and now + leeway < _numeric_date(claims, "nbf"):
        raise ImmatureToken("token is not valid yet")
    if "iat" in claims and now + leeway < _numeric_date(claims, "iat"):
        raise ImmatureToken("token was issued in the future")
    for name in _STRING_CLAIMS:
        if name in claims and type(claims[name]) is not str:
            raise InvalidClaim(f"claim {name!r} is not a string", claim=name)
    if issuer is not None:
        if "iss" not in claims:
            raise MissingClaim("claim 'iss' is required", claim="iss")
        if claims["iss"] != issuer:
            raise InvalidIssuer("token issuer is not the expected issuer")
    if "aud" in claims:
        aud = claims["aud"]
        values: Collection[object] = (aud,) if type(aud) is str else aud  # type: ignore[assignment]
        if type(aud) is not str and (
            type(aud) is not list or not all(type(v) is str for v in values)
        ):
            raise InvalidClaim("claim 'aud' is not a string or list of strings", claim="aud")
    else:
        values = ()
    if audience is not None:
        if "aud" not in claims:
            raise MissingClaim("claim 'aud' is required", claim="aud")
        expected = (audience,) if isinstance(audience, str) else audience
        if not any(value in expected for value in values):
            raise InvalidAudience("token audience does not include this resource")


def _media_type(value: str) -> str:
    """RFC 7515 §4.1.9: "application/" may be omitted when no other "/" appears; case-insensitive."""
    lowered = value.lower()
    if lowered.startswith("application/") and "/" not in lowered[12:]:
        return lowered[12:]
    return lowered


def check_type(header: Mapping[str, object], expected: str | None) -> None:
    """RFC 9068 §4: the header ``typ`` must be the expected media type (e.g. ``at+jwt``)."""
    if expected is None:
        return
    typ = header.get("typ")
    if not isinstance(typ, str) or _media_type(typ) != _media_type(expected):
        raise InvalidTokenType("token type is not the expected one")


@dataclass(frozen=True, slots=True)
class VerifiedJWT:
    """A JWT whose signature, type and claims have been checked."""

    header: dict[str, object]
    claims: dict[str, object]
    key: JWK
    alg: str


class JWTVerifier:
    """The whole verification pipeline for a static :class:`KeySet`.

    Order: strict parse, key selection by the set and allow-list, signature, ``typ``, claims.
    When ``typ`` is ``at+jwt`` (RFC 9068), ``exp`` is required whatever ``required`` says.
    """

    __slots__ = (
        "_algorithms",
        "_audience",
        "_clock",
        "_issuer",
        "_keys",
        "_leeway",
        "_max_header_size",
        "_max_size",
        "_required",
        "_typ",
    )

    def __init__(
        self,
        keys: KeySet,
        *,
        algorithms: Collection[str] | None = None,
        issuer: str | None = None,
        audience: str | Collection[str] | None = None,
        typ: str | None = None,
        required: Collection[str] = ("exp",),
        leeway: float = 0,
        max_size: int = DEFAULT_MAX_TOKEN_SIZE,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(algorithms, str):
            raise TypeError("algorithms must be a collection of names, not a string")
        if leeway < 0:
            raise ValueError("leeway must not be negative")
        self._keys = keys
        self._algorithms = frozenset(algorithms) if algorithms is not None else None
        self._issuer = issuer
        self._audience: str | frozenset[str] | None = (
            audience if audience is None or isinstance(audience, str) else frozenset(audience)
        )
        self._typ = typ
        req = tuple(dict.fromkeys(required))
        if typ is not None and _media_type(typ) == ACCESS_TOKEN_TYPE and "exp" not in req:
            req = ("exp", *req)
        self._required = req
        self._leeway = leeway
        self._max_size = max_size
        self._max_header_size = max_header_size
        self._clock = clock

    @property
    def keys(self) -> KeySet:
        return self._keys

    def verify(self, token: str | bytes) -> VerifiedJWT:
        """Verify ``token`` completely or raise a :class:`JoseError`."""
        jws = parse_compact(token, max_size=self._max_size, max_header_size=self._max_header_size)
        key, alg = select_key(jws, self._keys, self._algorithms)
        verify_signature(jws, key, alg)
        check_type(jws.header, self._typ)
        claims: dict[str, Any] = decode_payload(jws)
        validate_claims(
            claims,
            now=self._clock(),
            leeway=self._leeway,
            issuer=self._issuer,
            audience=self._audience,
            required=self._required,
        )
        return VerifiedJWT(jws.header, claims, key, alg)
