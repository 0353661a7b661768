"""The JWS algorithm registry (RFC 7518 §3, RFC 8037 §3.1).

Only asymmetric signature algorithms exist here. ``HS*`` and ``none`` are absent on purpose: a
resource server that verifies with public keys must never accept a token "signed" with them.
Each :class:`Algorithm` holds its hash and padding objects once, so the hot path builds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TypeAlias

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from sealring.jose.errors import InvalidKey, InvalidSignature

__all__ = [
    "ALGORITHMS",
    "CURVES",
    "EC_DEFAULT_ALG",
    "RSA_ALGORITHMS",
    "SUPPORTED_ALGORITHMS",
    "Algorithm",
    "Curve",
    "PrivateKey",
    "PublicKey",
    "Verifier",
    "check_allow_list",
    "get_algorithm",
]

PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class Curve:
    """An EC curve as JOSE names it (RFC 7518 §6.2.1.1)."""

    name: str
    curve: ec.EllipticCurve
    size: int  # octets per coordinate / per signature half
    order: int
    prime: int  # the field prime: a coordinate is canonical only below it (SEC 1 §2.3.5)


CURVES: dict[str, Curve] = {
    "P-256": Curve(
        "P-256",
        ec.SECP256R1(),
        32,
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
        2**256 - 2**224 + 2**192 + 2**96 - 1,
    ),
    "P-384": Curve(
        "P-384",
        ec.SECP384R1(),
        48,
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
        2**384 - 2**128 - 2**96 + 2**32 - 1,
    ),
    "P-521": Curve(
        "P-521",
        ec.SECP521R1(),
        66,
        0x01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409,
        2**521 - 1,
    ),
}
EC_DEFAULT_ALG = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}


Verifier: TypeAlias = Callable[[bytes, bytes], None]
"""``verify(signature, signing_input)`` for one key and algorithm; raises InvalidSignature."""


@dataclass(frozen=True, slots=True)
class Algorithm:
    """One JWS ``alg``: which key it takes and how it signs and verifies."""

    name: str
    kty: str  # "RSA" | "EC" | "OKP"
    crv: str | None  # the one curve an EC/OKP key must be on
    hash: hashes.HashAlgorithm | None
    bind: Callable[[PublicKey], Verifier] = field(repr=False, compare=False)
    sign: Callable[[PrivateKey, bytes], bytes] = field(repr=False, compare=False)

    def fits(self, kty: str, crv: str | None) -> bool:
        """Whether a key of this type/curve can be used with this algorithm at all."""
        return self.kty == kty and (self.crv is None or self.crv == crv)

    def verify(self, key: PublicKey, signature: bytes, data: bytes) -> None:
        """One-off verification; :meth:`bind` once and reuse the result on hot paths."""
        self.bind(key)(signature, data)


def _bad() -> InvalidSignature:
    return InvalidSignature("signature verification failed")


def _wrong_key() -> InvalidKey:
    return InvalidKey("key type does not fit the algorithm")


def _rsa(name: str, hash_alg: hashes.HashAlgorithm, pss: bool) -> Algorithm:
    # RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash output.
    pad: padding.AsymmetricPadding = (
        padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size)
        if pss
        else padding.PKCS1v15()
    )

    def bind(key: PublicKey) -> Verifier:
        if not isinstance(key, rsa.RSAPublicKey):
            raise _wrong_key()
        length = (key.key_size + 7) >> 3
        check = key.verify

        def verify(signature: bytes, data: bytes) -> None:
            # RFC 8017 §8.2.2 / §8.1.2 step 1: the signature is exactly k octets.
            if len(signature) != length:
                raise _bad()
            try:
                check(signature, data, pad, hash_alg)
            except _CryptoInvalidSignature as exc:
                raise _bad() from exc

        return verify

    def sign(key: PrivateKey, data: bytes) -> bytes:
        if not isinstance(key, rsa.RSAPrivateKey):
            raise _wrong_key()
        return key.sign(data, pad, hash_alg)

    return Algorithm(name, "RSA", None, hash_alg, bind, sign)


def _der_uint(value: bytes) -> bytes:
    """DER INTEGER of a non-zero big-endian unsigned value (X.690 §8.3)."""
    value = value.lstrip(b"\0")
    if value[0] & 0x80:
        value = b"\0" + value
    return b"\x02" + bytes((len(value),)) + value


def _der_signature(r: bytes, s: bytes) -> bytes:
    """The DER ``Ecdsa-Sig-Value`` (RFC 3279 §2.2.3) that ``cryptography`` takes, from r and s.

    Plain re-encoding of two integers, cheaper than converting through Python ints; the
    signature check itself stays in ``cryptography``.
    """
    body = _der_uint(r) + _der_uint(s)
    length = len(body)
    prefix = b"\x30" + bytes((length,)) if length < 0x80 else b"\x30\x81" + bytes((length,))
    return prefix + body


def _der_prefixes(size: int, r_top: int, s_top: int) -> tuple[bytes, bytes, bytes]:
    """The SEQUENCE, r and s headers of :func:`_der_signature` for ``size``-octet r and s
    without leading zero octets, whose top bits are ``r_top`` and ``s_top``."""
    r_tag = b"\x02" + bytes((size + r_top,)) + b"\0" * r_top
    s_tag = b"\x02" + bytes((size + s_top,)) + b"\0" * s_top
    length = len(r_tag) + len(s_tag) + 2 * size
    outer = b"\x30" + bytes((length,)) if length < 0x80 else b"\x30\x81" + bytes((length,))
    return outer, r_tag, s_tag


def _raw_signature(der: bytes, size: int) -> bytes:
    """r || s, each ``size`` octets, from the DER signature ``cryptography`` just produced."""
    at = 2 if der[1] < 0x80 else 3
    r_end = at + 2 + der[at + 1]
    r = der[at + 2 : r_end]
    s = der[r_end + 2 : r_end + 2 + der[r_end + 1]]
    return r[-size:].rjust(size, b"\0") + s[-size:].rjust(size, b"\0")


def _ecdsa(name: str, crv: str, hash_alg: hashes.HashAlgorithm) -> Algorithm:
    curve = CURVES[crv]
    size, ecdsa = curve.size, ec.ECDSA(hash_alg)
    curve_name = curve.curve.name
    # 0 < r, s < n compared as fixed-length big-endian octet strings.
    zero, order = bytes(size), curve.order.to_bytes(size, "big")
    # The DER prefixes when neither r nor s starts with a zero octet (255/256 of signatures
    # each): then only their top bits decide the encoding, indexed (r_top, s_top).
    fixed = {
        (r_top, s_top): _der_prefixes(size, r_top, s_top) for r_top in (0, 1) for s_top in (0, 1)
    }

    def bind(key: PublicKey) -> Verifier:
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != curve_name:
            raise _wrong_key()
        check = key.verify

        def verify(signature: bytes, data: bytes) -> None:
            # RFC 7518 §3.4: R || S, each exactly the curve's octet length; DER is not a JWS
            # form. 0 < r, s < n rules out the all-zero "psychic signature" (CVE-2022-21449).
            if len(signature) != 2 * size:
                raise _bad()
            r, s = signature[:size], signature[size:]
            if not (zero < r < order and zero < s < order):
                raise _bad()
            if r[0] and s[0]:
                outer, r_tag, s_tag = fixed[r[0] >> 7, s[0] >> 7]
                der = b"".join((outer, r_tag, r, s_tag, s))
            else:
                der = _der_signature(r, s)
            try:
                check(der, data, ecdsa)
            except _CryptoInvalidSignature as exc:
                raise _bad() from exc

        return verify

    def sign(key: PrivateKey, data: bytes) -> bytes:
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != curve_name:
            raise _wrong_key()
        return _raw_signature(key.sign(data, ecdsa), size)

    return Algorithm(name, "EC", crv, hash_alg, bind, sign)


def _eddsa() -> Algorithm:
    def bind(key: PublicKey) -> Verifier:
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise _wrong_key()
        check = key.verify

        def verify(signature: bytes, data: bytes) -> None:
            try:
                check(signature, data)
            except _CryptoInvalidSignature as exc:
                raise _bad() from exc

        return verify

    def sign(key: PrivateKey, data: bytes) -> bytes:
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise _wrong_key()
        return key.sign(data)

    return Algorithm("EdDSA", "OKP", "Ed25519", None, bind, sign)


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in (
        _rsa("RS256", hashes.SHA256(), pss=False),
        _rsa("RS384", hashes.SHA384(), pss=False),
        _rsa("RS512", hashes.SHA512(), pss=False),
        _rsa("PS256", hashes.SHA256(), pss=True),
        _rsa("PS384", hashes.SHA384(), pss=True),
        _rsa("PS512", hashes.SHA512(), pss=True),
        _ecdsa("ES256", "P-256", hashes.SHA256()),
        _ecdsa("ES384", "P-384", hashes.SHA384()),
        _ecdsa("ES512", "P-521", hashes.SHA512()),
        _eddsa(),
    )
}
RSA_ALGORITHMS = frozenset(name for name, a in ALGORITHMS.items() if a.kty == "RSA")
#: Every algorithm name of the registry, sorted: the one list each layer's allow-list is checked
#: against (a verifier's, a rotation policy's).
SUPPORTED_ALGORITHMS: tuple[str, ...] = tuple(sorted(ALGORITHMS))


def check_allow_list(algorithms: Collection[str]) -> None:
    """Raise ``ValueError`` unless ``algorithms`` is a non-empty subset of the registry.

    The caller refuses a bare string first (its own way: a string is a collection of letters).
    """
    unsupported = sorted(set(algorithms) - set(ALGORITHMS))
    if unsupported or not algorithms:
        raise ValueError(
            f"algorithms must be a non-empty subset of {list(SUPPORTED_ALGORITHMS)}"
            + (f"; not supported: {unsupported}" if unsupported else "")
        )


def get_algorithm(name: object) -> Algorithm | None:
    """The registered algorithm called ``name``, or None (never ``none``/``HS*``)."""
    return ALGORITHMS.get(name) if isinstance(name, str) else None
