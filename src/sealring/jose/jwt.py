"""JSON Web Tokens (RFC 7519) and JWT access tokens (RFC 9068) over :mod:`sealring.jose.jws`.

Nothing here reads the clock by itself: :func:`validate_claims` takes ``now`` and
:class:`JWTVerifier` takes a ``clock``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Container, Iterable, Mapping
from typing import Any, Final, NamedTuple

from sealring.jose import _json
from sealring.jose.algorithms import check_allow_list
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
    _parse,
    select_key,
    selection_table,
    sign_compact,
)

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "ClaimRules",
    "JWTVerifier",
    "VerifiedJWT",
    "check_type",
    "decode_payload",
    "encode_jwt",
    "validate_claims",
]

ACCESS_TOKEN_TYPE: Final = "at+jwt"  # noqa: S105 - a media type, not a secret
_ABSENT: Final = object()
#: NumericDate values must lie strictly within +-2**53 (RFC 7493 §2.2: the range of integers
#: that IEEE 754 doubles represent exactly). Beyond it a value does not convert to ``float``
#: (``10**400``) or means nothing as a time; NaN fails the comparison, so this also refuses it.
_NUMERIC_DATE_LIMIT: Final = 2**53


def encode_jwt(
    claims: Mapping[str, object],
    signer: Signer,
    *,
    typ: str | None = "JWT",
    header: Mapping[str, object] | None = None,
) -> str:
    """Sign ``claims`` as a compact JWT; ``typ`` goes in the header unless ``header`` sets it."""
    extra: Mapping[str, object] | None = header
    if typ is not None and (header is None or "typ" not in header):
        extra = {"typ": typ, **header} if header else {"typ": typ}
    try:
        payload = _json.dumps(claims).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise JoseError("claims are not JSON-serialisable") from exc
    return sign_compact(payload, signer, header=extra)


def decode_payload(jws: CompactJWS) -> dict[str, object]:
    """The JWT Claims Set: a strict JSON object (RFC 7519 §7.2 steps 9-10)."""
    return _json.loads_object(jws.payload, what="JWT claims")


def _numeric_date(claims: Mapping[str, object], name: str) -> float | int:
    """RFC 7519 §2 NumericDate: a JSON number within +-2**53; booleans and strings refused."""
    value = claims[name]
    kind = type(value)
    if (kind is int or kind is float) and -_NUMERIC_DATE_LIMIT < value < _NUMERIC_DATE_LIMIT:  # type: ignore[operator]
        return value  # type: ignore[return-value]
    raise InvalidClaim(f"claim {name!r} is not a NumericDate", claim=name)


def _check_claims(
    claims: Mapping[str, object],
    now: float,
    leeway: float,
    issuer: str | None,
    audience: Container[str] | None,
    required: Iterable[str],
    exp_required: bool,
) -> None:
    """The checks behind :func:`validate_claims` and :class:`ClaimRules`.

    ``audience`` is None or a container of whole audience strings (never a bare ``str``);
    ``required`` need not repeat ``exp`` (``exp_required``) nor ``iss`` when ``issuer`` is set.
    """
    for name in required:
        if name not in claims:
            raise MissingClaim(f"claim {name!r} is required", claim=name)
    # exp and iat are checked inline rather than through _numeric_date: one type test and one
    # chained comparison each, and the range check only runs once the comparison has failed.
    exp = claims.get("exp", _ABSENT)
    if exp is _ABSENT:
        if exp_required:
            raise MissingClaim("claim 'exp' is required", claim="exp")
    else:
        if type(exp) is not int and type(exp) is not float:
            raise InvalidClaim("claim 'exp' is not a NumericDate", claim="exp")
        # RFC 7519 §4.1.4: the current time MUST be before exp. False for a NaN ``now``,
        # ``leeway`` or ``exp``, so those refuse the token too.
        if not now - leeway < exp < _NUMERIC_DATE_LIMIT:
            if not -_NUMERIC_DATE_LIMIT < exp < _NUMERIC_DATE_LIMIT:
                raise InvalidClaim("claim 'exp' is not a NumericDate", claim="exp")
            raise ExpiredToken("token has expired")
    if "nbf" in claims and not now + leeway >= _numeric_date(claims, "nbf"):
        raise ImmatureToken("token is not valid yet")
    iat = claims.get("iat", _ABSENT)
    if iat is not _ABSENT:
        if type(iat) is not int and type(iat) is not float:
            raise InvalidClaim("claim 'iat' is not a NumericDate", claim="iat")
        if not -_NUMERIC_DATE_LIMIT < iat <= now + leeway:
            if not -_NUMERIC_DATE_LIMIT < iat < _NUMERIC_DATE_LIMIT:
                raise InvalidClaim("claim 'iat' is not a NumericDate", claim="iat")
            raise ImmatureToken("token was issued in the future")
    iss = claims.get("iss", _ABSENT)
    if iss is not _ABSENT and type(iss) is not str:
        raise InvalidClaim("claim 'iss' is not a string", claim="iss")
    if type(claims.get("sub", "")) is not str:
        raise InvalidClaim("claim 'sub' is not a string", claim="sub")
    if type(claims.get("jti", "")) is not str:
        raise InvalidClaim("claim 'jti' is not a string", claim="jti")
    if issuer is not None:
        if iss is _ABSENT:
            raise MissingClaim("claim 'iss' is required", claim="iss")
        if iss != issuer:
            raise InvalidIssuer("token issuer is not the expected issuer")
    aud = claims.get("aud", _ABSENT)
    if aud is _ABSENT:
        if audience is not None:
            raise MissingClaim("claim 'aud' is required", claim="aud")
        return
    if type(aud) is str:
        matched = audience is None or aud in audience
    elif type(aud) is list:
        matched = audience is None
        for value in aud:
            if type(value) is not str:
                raise InvalidClaim("claim 'aud' is not a string or list of strings", claim="aud")
            if not matched and value in audience:  # type: ignore[operator]
                matched = True
    else:
        raise InvalidClaim("claim 'aud' is not a string or list of strings", claim="aud")
    # RFC 7519 §4.1.3: one of the audiences must be ours (checked when ours is given).
    if not matched:
        raise InvalidAudience("token audience does not include this resource")


def _check_leeway(leeway: float) -> None:
    # NaN would make every expiry comparison false and infinity would switch expiry off.
    if not 0 <= leeway < float("inf"):
        raise ValueError(f"leeway must be a finite number >= 0, not {leeway!r}")


class ClaimRules:
    """Registered-claim checks (RFC 7519 §4.1), normalised once and applied at a given time."""

    __slots__ = ("_audience", "_exp_required", "_issuer", "_leeway", "_required")

    def __init__(
        self,
        *,
        leeway: float = 0,
        issuer: str | None = None,
        audience: str | Collection[str] | None = None,
        required: Collection[str] = ("exp",),
    ) -> None:
        if isinstance(required, str):
            raise TypeError("required must be a collection of claim names, not a string")
        _check_leeway(leeway)
        self._leeway = leeway
        self._issuer = issuer
        self._audience: frozenset[str] | None = (
            None
            if audience is None
            else frozenset((audience,) if isinstance(audience, str) else audience)
        )
        # exp, and iss when an issuer is expected, are checked for presence where they are read.
        self._exp_required = "exp" in required
        self._required = tuple(
            name
            for name in dict.fromkeys(required)
            if name != "exp" and not (name == "iss" and issuer is not None)
        )

    @property
    def arguments(self) -> tuple[float, str | None, frozenset[str] | None, tuple[str, ...], bool]:
        """The normalised rules, in the order :func:`_check_claims` takes them after ``now``."""
        return self._leeway, self._issuer, self._audience, self._required, self._exp_required

    def check(self, claims: Mapping[str, object], now: float) -> None:
        """Raise the first failing check's :class:`JoseError`; ``now`` in epoch seconds."""
        _check_claims(claims, now, *self.arguments)


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

    ``exp``/``nbf``/``iat`` must be JSON numbers; ``iss`` must equal ``issuer`` exactly; ``aud``
    is compared only when ``audience`` is given (pass it for access tokens).
    """
    if isinstance(required, str):
        raise TypeError("required must be a collection of claim names, not a string")
    _check_leeway(leeway)
    if isinstance(audience, str):
        audience = (audience,)
    _check_claims(claims, now, leeway, issuer, audience, required, False)


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


class VerifiedJWT(NamedTuple):
    """A JWT whose signature, type and claims have been checked."""

    header: dict[str, object]
    claims: dict[str, object]
    key: JWK
    alg: str


class JWTVerifier:
    """The whole verification pipeline for a static :class:`KeySet`.

    Order: strict parse, key selection by the set and allow-list, signature, ``typ``, claims.
    When ``typ`` is ``at+jwt`` (RFC 9068), ``exp`` is required whatever ``required`` says.
    Key selection is precomputed per (kid, alg), so verifying costs one lookup beyond the
    signature itself.
    """

    __slots__ = (
        "_algorithms",
        "_claim_args",
        "_clock",
        "_keys",
        "_max_header_size",
        "_max_size",
        "_table",
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
        if algorithms is not None:
            check_allow_list(algorithms)
        _check_leeway(leeway)
        if isinstance(required, str):
            raise TypeError("required must be a collection of claim names, not a string")
        self._keys = keys
        self._algorithms = frozenset(algorithms) if algorithms is not None else None
        self._table = selection_table(keys, self._algorithms)
        self._typ = typ
        req = tuple(required)
        if typ is not None and _media_type(typ) == ACCESS_TOKEN_TYPE and "exp" not in req:
            req = ("exp", *req)
        rules = ClaimRules(leeway=leeway, issuer=issuer, audience=audience, required=req)
        self._claim_args = rules.arguments
        self._max_size = max_size
        self._max_header_size = max_header_size
        self._clock = clock

    @property
    def keys(self) -> KeySet:
        return self._keys

    def verify(self, token: str | bytes) -> VerifiedJWT:
        """Verify ``token`` completely or raise a :class:`JoseError`."""
        header, payload, signing_input, signature = _parse(
            token, self._max_size, self._max_header_size
        )
        alg: str = header["alg"]
        entry = self._table.get((header.get("kid"), alg))
        if entry is None:
            # Not a pair the key set accepts: let select_key name the reason.
            jws = CompactJWS(header, payload, signing_input, signature)
            key, alg = select_key(jws, self._keys, self._algorithms)
            entry = (key, key.verifier(alg))
        key, verify = entry
        verify(signature, signing_input)
        if self._typ is not None:
            check_type(header, self._typ)
        claims: dict[str, Any] = _json.loads_object(payload, what="JWT claims")
        _check_claims(claims, self._clock(), *self._claim_args)
        return VerifiedJWT(header, claims, key, alg)
