"""JWS Compact Serialization (RFC 7515 §3.1, §5, §7.1) with asymmetric keys only.

Verification is three steps, each usable alone: :func:`parse_compact` (strict syntax and size
caps), :func:`select_key` (the configured key set and allow-list choose the key and algorithm; the
header only has to agree) and :func:`verify_signature`. :func:`verify_compact` runs all three.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol, runtime_checkable

from sealring.jose import _json
from sealring.jose._b64 import TO_STANDARD, b64url_encode_bytes, decode_translated
from sealring.jose.algorithms import ALGORITHMS, RSA_ALGORITHMS, PrivateKey, Verifier
from sealring.jose.errors import (
    AlgorithmNotAllowed,
    AmbiguousKey,
    InvalidKey,
    JoseError,
    KeyNotFound,
    MalformedToken,
    UnsupportedCritical,
)
from sealring.jose.jwk import JWK
from sealring.jose.jwks import KeySet

__all__ = [
    "DEFAULT_MAX_HEADER_SIZE",
    "DEFAULT_MAX_TOKEN_SIZE",
    "CompactJWS",
    "LocalSigner",
    "Signer",
    "key_allows",
    "parse_compact",
    "select_key",
    "selection_table",
    "sign_compact",
    "verify_compact",
    "verify_signature",
]

DEFAULT_MAX_TOKEN_SIZE: Final = 16 * 1024
DEFAULT_MAX_HEADER_SIZE: Final = 4096

# Registered header parameters may not be listed in "crit" (RFC 7515 §4.1.11).
_REGISTERED = frozenset(
    {"alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit"}
)
# This implementation understands no critical extension; RFC 7797 "b64" in particular is refused.
_UNDERSTOOD_CRIT: frozenset[str] = frozenset()
_HEADER_CACHE_SIZE = 256
# Parsed, checked headers by their (translated) encoded segment: an issuer sends the same few
# headers again and again. Bounded; callers get a copy, so the cached dict cannot be changed.
_parsed_headers: dict[bytes, dict[str, Any]] = {}
_SCALARS = frozenset({str, int, float, bool, type(None)})


@runtime_checkable
class Signer(Protocol):
    """What signs JWS: private key bytes stay behind it (in memory, database or HSM)."""

    @property
    def alg(self) -> str: ...

    @property
    def kid(self) -> str: ...

    def sign(self, signing_input: bytes) -> bytes:
        """The raw JWS signature (ECDSA: r || s, RFC 7518 §3.4)."""
        ...

    def public_jwk(self) -> JWK: ...


class LocalSigner:
    """An in-memory :class:`Signer` over a private :class:`JWK`, bound to one algorithm."""

    __slots__ = ("_alg", "_jwk", "_private", "_sign")

    def __init__(self, key: JWK, alg: str | None = None) -> None:
        if not key.is_private:
            raise InvalidKey("a signer needs a private key")
        chosen = alg if alg is not None else key.signing_algorithm()
        algorithm = ALGORITHMS.get(chosen)
        if algorithm is None or not algorithm.fits(key.kty, key.crv):
            raise AlgorithmNotAllowed("the algorithm does not fit the key")
        if key.alg is not None and key.alg != chosen:
            raise AlgorithmNotAllowed("the key is bound to another algorithm")
        self._jwk = key
        self._alg = chosen
        self._private: PrivateKey = key.private_key()
        self._sign = algorithm.sign

    @property
    def alg(self) -> str:
        return self._alg

    @property
    def kid(self) -> str:
        return self._jwk.kid

    def sign(self, signing_input: bytes) -> bytes:
        return self._sign(self._private, signing_input)

    def public_jwk(self) -> JWK:
        return self._jwk.public()

    def __repr__(self) -> str:
        return f"LocalSigner(alg={self._alg!r}, kid={self._jwk.kid!r})"


_header_cache: dict[tuple[str, str, tuple[tuple[str, object], ...]], bytes] = {}


def _encoded_header(alg: str, kid: str, extra: Mapping[str, object] | None) -> bytes:
    items: tuple[tuple[str, object], ...] = ()
    cacheable = True
    if extra:
        if "alg" in extra or "kid" in extra:
            if extra.get("alg", alg) != alg or extra.get("kid", kid) != kid:
                raise JoseError("the header may not override the signer's alg or kid")
            extra = {k: v for k, v in extra.items() if k not in ("alg", "kid")}
        items = tuple(extra.items())
        for _, value in items:
            if type(value) is not str:
                cacheable = False
                break
    # Signers send the same few headers (alg, kid, typ) again and again: encode each once.
    cache_key = (alg, kid, items)
    if cacheable and (cached := _header_cache.get(cache_key)) is not None:
        return cached
    header: dict[str, object] = {"alg": alg, "kid": kid}
    header.update(items)
    try:
        text = _json.dumps(header)
    except (TypeError, ValueError) as exc:
        raise JoseError("the header is not JSON-serialisable") from exc
    encoded = b64url_encode_bytes(text.encode())
    if cacheable:
        if len(_header_cache) >= 256:
            _header_cache.clear()
        _header_cache[cache_key] = encoded
    return encoded


def sign_compact(
    payload: bytes, signer: Signer, *, header: Mapping[str, object] | None = None
) -> str:
    """Sign ``payload``; ``alg`` and ``kid`` come from the signer, other members from ``header``."""
    signing_input = (
        _encoded_header(signer.alg, signer.kid, header) + b"." + b64url_encode_bytes(payload)
    )
    signature = signer.sign(signing_input)
    return (signing_input + b"." + b64url_encode_bytes(signature)).decode("ascii")


@dataclass(frozen=True, slots=True)
class CompactJWS:
    """A parsed, not yet verified, JWS."""

    header: dict[str, object]
    payload: bytes
    signing_input: bytes
    signature: bytes

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None

    @property
    def alg(self) -> str:
        alg = self.header["alg"]
        assert isinstance(alg, str)
        return alg


def _check_header(header: dict[str, Any]) -> None:
    """RFC 7515 §4.1: the members the verifier depends on have the right shape."""
    if type(header.get("alg")) is not str:
        raise MalformedToken("JWS header: 'alg' is missing or not a string")
    if "kid" in header and type(header["kid"]) is not str:
        raise MalformedToken("JWS header: 'kid' is not a string")
    if "crit" in header:
        crit = header["crit"]
        if (
            type(crit) is not list
            or not crit
            or not all(type(name) is str for name in crit)
            or len(set(crit)) != len(crit)
        ):
            raise MalformedToken("JWS header: 'crit' is not a non-empty list of names")
        for name in crit:
            if name in _REGISTERED or name not in header:
                raise MalformedToken("JWS header: 'crit' names a registered or absent member")
            if name not in _UNDERSTOOD_CRIT:
                raise UnsupportedCritical(
                    f"JWS header: critical extension {name[:64]!r} not supported"
                )
    if "b64" in header and header["b64"] is not True:
        # RFC 7797 unencoded payloads change what is signed; they are never accepted here.
        raise UnsupportedCritical("JWS header: unencoded payload ('b64') not supported")


def _to_bytes(token: object, max_size: int) -> bytes:
    """The token as ASCII bytes, within the size cap."""
    if isinstance(token, str):
        if len(token) > max_size:
            raise MalformedToken("token larger than the size cap")
        try:
            return str(token).encode("ascii")
        except UnicodeEncodeError as exc:
            raise MalformedToken("token contains non-ASCII characters") from exc
    if isinstance(token, bytes):
        if len(token) > max_size:
            raise MalformedToken("token larger than the size cap")
        return bytes(token)
    raise MalformedToken("token must be str or bytes")


def _parse(
    token: str | bytes, max_size: int, max_header_size: int
) -> tuple[dict[str, Any], bytes, bytes, bytes]:
    """header, payload, signing input, signature; see :func:`parse_compact`."""
    if type(token) is str and len(token) <= max_size and token.isascii():
        raw = token.encode("ascii")
    else:
        raw = _to_bytes(token, max_size)
    # One translation for all three segments; strict decoding then refuses anything else.
    parts = raw.translate(TO_STANDARD).split(b".")
    if len(parts) != 3:
        raise MalformedToken("a compact JWS has exactly three segments")
    head, body, sig = parts
    if len(head) > (max_header_size * 4 + 2) // 3:
        raise MalformedToken("JWS header larger than the size cap")
    header = _parsed_headers.get(head)
    if header is None:
        header = _json.loads_object(decode_translated(head), what="JWS header")
        _check_header(header)
        # Callers get a shallow copy, so only headers of immutable values are shared: a
        # caller appending to one token's "x5c" list must not change what the next parse of
        # the same segment returns.
        if all(type(value) in _SCALARS for value in header.values()):
            if len(_parsed_headers) >= _HEADER_CACHE_SIZE:
                _parsed_headers.clear()
            _parsed_headers[head] = header
    signing_input = raw[: len(head) + 1 + len(body)]
    return header.copy(), decode_translated(body), signing_input, decode_translated(sig)


def parse_compact(
    token: str | bytes,
    *,
    max_size: int = DEFAULT_MAX_TOKEN_SIZE,
    max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
) -> CompactJWS:
    """Parse a compact JWS strictly (RFC 7515 §7.1, §5.2); raises :class:`MalformedToken`.

    Exactly three segments of canonical unpadded base64url; the header a duplicate-free JSON
    object with a string ``alg``; ``crit`` and ``b64`` as :func:`_check_header` allows.
    """
    return CompactJWS(*_parse(token, max_size, max_header_size))


def key_allows(key: JWK, alg: str, algorithms: Collection[str] | None = None) -> bool:
    """Whether ``key`` may verify ``alg``: its declared ``alg``, else its natural one.

    An RSA key without ``alg`` may also serve the RS*/PS* algorithms of an explicit allow-list.
    """
    if key.alg is not None:
        return key.alg == alg
    if algorithms is not None and key.kty == "RSA":
        return alg in RSA_ALGORITHMS and alg in algorithms
    return key.signing_algorithm() == alg


def select_key(
    jws: CompactJWS, keys: KeySet, algorithms: Collection[str] | None = None
) -> tuple[JWK, str]:
    """Pick the key and algorithm; the header's ``alg`` must be the one bound to the key.

    RFC 8725 §3.1: the token header never chooses an algorithm the verifier did not allow. A token
    without ``kid`` verifies only when exactly one key of the set fits (RFC 7515 §4.1.4).
    """
    alg = jws.header["alg"]
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise AlgorithmNotAllowed("algorithm not supported")
    if algorithms is not None and alg not in algorithms:
        raise AlgorithmNotAllowed("algorithm not in the allow-list")
    kid = jws.header.get("kid")
    if kid is not None:
        key = keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise KeyNotFound("no key with this kid in the key set")
        if not key_allows(key, alg, algorithms):
            raise AlgorithmNotAllowed("algorithm does not match the key")
        return key, alg
    fitting = [key for key in keys.keys if key_allows(key, alg, algorithms)]
    if not fitting:
        raise KeyNotFound("token has no kid and no key fits")
    if len(fitting) > 1:
        raise AmbiguousKey("token has no kid and several keys fit")
    return fitting[0], alg


def verify_signature(jws: CompactJWS, key: JWK, alg: str) -> None:
    """Verify the signature with ``key`` under ``alg``; raises :class:`InvalidSignature`."""
    key.verifier(alg)(jws.signature, jws.signing_input)


def selection_table(
    keys: KeySet, algorithms: Collection[str] | None = None
) -> dict[tuple[str | None, str], tuple[JWK, Verifier]]:
    """Every (kid, alg) pair :func:`select_key` would accept, with its bound verifier.

    ``kid`` None stands for tokens without one. Built once per key set and allow-list; a pair
    that is absent is refused, and :func:`select_key` names the reason.
    """
    table: dict[tuple[str | None, str], tuple[JWK, Verifier]] = {}
    for alg in ALGORITHMS:
        if algorithms is not None and alg not in algorithms:
            continue
        fitting = [key for key in keys.keys if key_allows(key, alg, algorithms)]
        for key in fitting:
            table[(key.kid, alg)] = (key, key.verifier(alg))
        if len(fitting) == 1:
            table[(None, alg)] = (fitting[0], fitting[0].verifier(alg))
    return table


def verify_compact(
    token: str | bytes,
    keys: KeySet,
    *,
    algorithms: Collection[str] | None = None,
    max_size: int = DEFAULT_MAX_TOKEN_SIZE,
    max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
) -> CompactJWS:
    """Parse, select the key and verify the signature; returns the verified JWS."""
    jws = parse_compact(token, max_size=max_size, max_header_size=max_header_size)
    key, alg = select_key(jws, keys, algorithms)
    verify_signature(jws, key, alg)
    return jws
