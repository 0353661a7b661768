"""JSON Web Keys: import, export, generation and thumbprints (RFC 7517, RFC 7518 §6, RFC 8037).

A :class:`JWK` holds a pre-loaded ``cryptography`` public key (and private key, when it is one).
Public export can never include a private member; private export has its own, explicit method.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from sealring.jose import _json
from sealring.jose._b64 import b64url_decode, b64url_encode, uint_b64_encode
from sealring.jose.algorithms import (
    ALGORITHMS,
    CURVES,
    EC_DEFAULT_ALG,
    PrivateKey,
    PublicKey,
)
from sealring.jose.errors import InvalidKey, MalformedToken

__all__ = ["JWK", "MAX_RSA_BITS", "MIN_RSA_BITS", "PRIVATE_MEMBERS"]

PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MIN_RSA_BITS: Final = 2048
MAX_RSA_BITS: Final = 8192
_MAX_E: Final = 2**32
_RSA_PRIVATE = ("p", "q", "dp", "dq", "qi")


def _member(data: Mapping[str, object], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise InvalidKey(f"JWK member {name!r} is missing or not a string")
    return value


def _optional_str(data: Mapping[str, object], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidKey(f"JWK member {name!r} is not a string")
    return value


def _octets(data: Mapping[str, object], name: str) -> bytes:
    try:
        return b64url_decode(_member(data, name))
    except MalformedToken as exc:
        raise InvalidKey(f"JWK member {name!r} is not base64url") from exc


def _uint(data: Mapping[str, object], name: str) -> int:
    """Base64urlUInt: RFC 7518 §2 requires the minimum number of octets (no leading zero)."""
    raw = _octets(data, name)
    if not raw or (len(raw) > 1 and raw[0] == 0):
        raise InvalidKey(f"JWK member {name!r} is not a minimal unsigned integer")
    return int.from_bytes(raw, "big")


def _fixed(data: Mapping[str, object], name: str, size: int) -> int:
    """EC coordinates and private scalars are full-length (RFC 7518 §6.2.1.2, §6.2.2.1)."""
    raw = _octets(data, name)
    if len(raw) != size:
        raise InvalidKey(f"JWK member {name!r} has the wrong length for the curve")
    return int.from_bytes(raw, "big")


def _check_rsa_public(numbers: rsa.RSAPublicNumbers) -> None:
    bits = numbers.n.bit_length()
    if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
        raise InvalidKey(f"RSA modulus must be {MIN_RSA_BITS}..{MAX_RSA_BITS} bits")
    e = numbers.e
    if e < 3 or e % 2 == 0 or e > _MAX_E:
        raise InvalidKey("RSA public exponent must be odd, at least 3 and at most 2**32")
    if numbers.n % 2 == 0:
        raise InvalidKey("RSA modulus must be odd")


def _key_params(key: PublicKey) -> tuple[str, str | None, dict[str, str]]:
    """kty, crv and the public members, canonically encoded."""
    if isinstance(key, rsa.RSAPublicKey):
        pn = key.public_numbers()
        return "RSA", None, {"n": uint_b64_encode(pn.n), "e": uint_b64_encode(pn.e)}
    if isinstance(key, ec.EllipticCurvePublicKey):
        crv = _crv_of(key.curve)
        size = CURVES[crv].size
        en = key.public_numbers()
        return (
            "EC",
            crv,
            {"crv": crv, "x": uint_b64_encode(en.x, size), "y": uint_b64_encode(en.y, size)},
        )
    if isinstance(key, ed25519.Ed25519PublicKey):
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return "OKP", "Ed25519", {"crv": "Ed25519", "x": b64url_encode(raw)}
    raise InvalidKey("unsupported key type")


def _crv_of(curve: ec.EllipticCurve) -> str:
    for name, c in CURVES.items():
        if c.curve.name == curve.name:
            return name
    raise InvalidKey("unsupported elliptic curve")


def _private_params(key: PrivateKey) -> dict[str, str]:
    if isinstance(key, rsa.RSAPrivateKey):
        n = key.private_numbers()
        return {
            "d": uint_b64_encode(n.d),
            "p": uint_b64_encode(n.p),
            "q": uint_b64_encode(n.q),
            "dp": uint_b64_encode(n.dmp1),
            "dq": uint_b64_encode(n.dmq1),
            "qi": uint_b64_encode(n.iqmp),
        }
    if isinstance(key, ec.EllipticCurvePrivateKey):
        size = CURVES[_crv_of(key.curve)].size
        return {"d": uint_b64_encode(key.private_numbers().private_value, size)}
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return {"d": b64url_encode(raw)}


class JWK:
    """An immutable asymmetric JSON Web Key, hashable by ``kid``."""

    __slots__ = (
        "_params",
        "_private",
        "_thumbprint",
        "alg",
        "crv",
        "kid",
        "kty",
        "public_key",
        "use",
    )

    kty: str
    crv: str | None
    kid: str
    alg: str | None
    use: str | None
    public_key: PublicKey
    _private: PrivateKey | None
    _params: dict[str, str]
    _thumbprint: str

    def __init__(
        self,
        public_key: PublicKey,
        private_key: PrivateKey | None = None,
        *,
        alg: str | None = None,
        kid: str | None = None,
        use: str | None = None,
    ) -> None:
        kty, crv, params = _key_params(public_key)
        if isinstance(public_key, rsa.RSAPublicKey):
            _check_rsa_public(public_key.public_numbers())
        if alg is not None:
            algorithm = ALGORITHMS.get(alg)
            if algorithm is None:
                raise InvalidKey("JWK 'alg' is not a supported signature algorithm")
            if not algorithm.fits(kty, crv):
                raise InvalidKey("JWK 'alg' does not fit the key type or curve")
        if kid is not None and not kid:
            raise InvalidKey("JWK 'kid' is empty")
        thumbprint = _thumbprint_of(kty, params)
        values = {
            "kty": kty,
            "crv": crv,
            "alg": alg,
            "use": use,
            "public_key": public_key,
            "_private": private_key,
            "_params": params,
            "_thumbprint": thumbprint,
            "kid": kid if kid is not None else thumbprint,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("JWK is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("JWK is immutable")

    def __hash__(self) -> int:
        return hash(self.kid)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JWK):
            return NotImplemented
        return (
            self.kid == other.kid
            and self._thumbprint == other._thumbprint
            and self.alg == other.alg
            and self.use == other.use
            and self.is_private == other.is_private
        )

    def __repr__(self) -> str:
        kind = "private" if self.is_private else "public"
        return f"JWK(kty={self.kty!r}, kid={self.kid!r}, alg={self.alg!r}, {kind})"

    @property
    def is_private(self) -> bool:
        return self._private is not None

    # -- import ----------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, object], *, allow_private: bool = False) -> JWK:
        """Import a JWK object; private members are refused unless ``allow_private``."""
        if not isinstance(data, Mapping):
            raise InvalidKey("JWK is not a JSON object")
        kty = data.get("kty")
        if kty == "oct":
            raise InvalidKey("symmetric ('oct') keys are not accepted")
        has_private = any(name in data for name in PRIVATE_MEMBERS)
        if has_private and not allow_private:
            raise InvalidKey("JWK carries private members where a public key is expected")
        alg = _optional_str(data, "alg")
        use = _optional_str(data, "use")
        kid = _optional_str(data, "kid")
        ops = data.get("key_ops")
        if ops is not None and (
            not isinstance(ops, list)
            or not all(isinstance(op, str) for op in ops)
            or len(set(ops)) != len(ops)
        ):
            raise InvalidKey("JWK 'key_ops' is not a list of distinct strings")
        private: PrivateKey | None
        public: PublicKey
        try:
            if kty == "RSA":
                public, private = _import_rsa(data, has_private)
            elif kty == "EC":
                public, private = _import_ec(data, has_private)
            elif kty == "OKP":
                public, private = _import_okp(data, has_private)
            else:
                raise InvalidKey("JWK 'kty' is missing or not supported")
        except InvalidKey:
            raise
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidKey("JWK parameters do not form a valid key") from exc
        return cls(public, private, alg=alg, kid=kid, use=use)

    @classmethod
    def from_json(cls, text: str | bytes, *, allow_private: bool = False) -> JWK:
        try:
            data = _json.loads_object(text, max_size=64 * 1024, what="JWK")
        except MalformedToken as exc:
            raise InvalidKey(f"JWK is not valid JSON ({exc.message})") from exc
        return cls.from_dict(data, allow_private=allow_private)

    @classmethod
    def from_key(
        cls,
        key: PrivateKey | PublicKey,
        *,
        alg: str | None = None,
        kid: str | None = None,
        use: str | None = "sig",
    ) -> JWK:
        """Wrap a ``cryptography`` key object."""
        if isinstance(
            key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
        ):
            return cls(key.public_key(), key, alg=alg, kid=kid, use=use)
        if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
            return cls(key, None, alg=alg, kid=kid, use=use)
        raise InvalidKey("unsupported key type")

    @classmethod
    def generate(cls, alg: str) -> JWK:
        """A fresh private key for ``alg`` (RSA keys are 2048-bit, e = 65537)."""
        algorithm = ALGORITHMS.get(alg)
        if algorithm is None:
            raise InvalidKey(f"cannot generate a key for algorithm {alg!r}")
        key: PrivateKey
        if algorithm.kty == "RSA":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm.kty == "EC":
            assert algorithm.crv is not None
            key = ec.generate_private_key(CURVES[algorithm.crv].curve)
        else:
            key = ed25519.Ed25519PrivateKey.generate()
        return cls.from_key(key, alg=alg)

    # -- export ----------------------------------------------------------------------------

    def public(self) -> JWK:
        """The same key without its private part (same kid, alg and use)."""
        if self._private is None:
            return self
        return JWK(self.public_key, None, alg=self.alg, kid=self.kid, use=self.use)

    def _header_members(self) -> dict[str, object]:
        out: dict[str, object] = {"kty": self.kty, "kid": self.kid}
        if self.use is not None:
            out["use"] = self.use
        if self.alg is not None:
            out["alg"] = self.alg
        return out

    def to_dict(self) -> dict[str, object]:
        """Public members only, whatever this key holds."""
        out = self._header_members()
        out.update(self._params)
        return out

    def to_private_dict(self) -> dict[str, object]:
        """The only export that includes private members; raises if this key is public."""
        out = self.to_dict()
        out.update(_private_params(self.private_key()))
        return out

    def thumbprint(self) -> str:
        """RFC 7638 §3: SHA-256 over the required members, sorted, no whitespace."""
        return self._thumbprint

    def private_key(self) -> PrivateKey:
        if self._private is None:
            raise InvalidKey("this JWK has no private part")
        return self._private

    def signing_algorithm(self) -> str:
        """The declared ``alg``, else the natural one: ES256/384/512 by curve, EdDSA, RS256."""
        if self.alg is not None:
            return self.alg
        if self.kty == "EC":
            assert self.crv is not None
            return EC_DEFAULT_ALG[self.crv]
        if self.kty == "OKP":
            return "EdDSA"
        return "RS256"


def _thumbprint_of(kty: str, params: Mapping[str, str]) -> str:
    members: dict[str, Any] = {"kty": kty}
    if kty == "RSA":
        members.update(e=params["e"], n=params["n"])
    elif kty == "EC":
        members.update(crv=params["crv"], x=params["x"], y=params["y"])
    else:
        members.update(crv=params["crv"], x=params["x"])
    text = _json.dumps(dict(sorted(members.items())))
    return b64url_encode(hashlib.sha256(text.encode("utf-8")).digest())


def _import_rsa(
    data: Mapping[str, object], has_private: bool
) -> tuple[rsa.RSAPublicKey, rsa.RSAPrivateKey | None]:
    public_numbers = rsa.RSAPublicNumbers(_uint(data, "e"), _uint(data, "n"))
    _check_rsa_public(public_numbers)
    if not has_private:
        return public_numbers.public_key(), None
    if "oth" in data:
        raise InvalidKey("multi-prime RSA keys ('oth') are not supported")
    d = _uint(data, "d")
    present = [name for name in _RSA_PRIVATE if name in data]
    if present and len(present) != len(_RSA_PRIVATE):
        # RFC 7518 §6.3.2: if one of p, q, dp, dq, qi is present, all of them must be.
        raise InvalidKey("RSA private JWK has only some of p, q, dp, dq, qi")
    if present:
        p, q = _uint(data, "p"), _uint(data, "q")
        dp, dq, qi = _uint(data, "dp"), _uint(data, "dq"), _uint(data, "qi")
    else:
        p, q = rsa.rsa_recover_prime_factors(public_numbers.n, public_numbers.e, d)
        dp, dq, qi = rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q)
    private = rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, public_numbers).private_key()
    return private.public_key(), private


def _import_ec(
    data: Mapping[str, object], has_private: bool
) -> tuple[ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey | None]:
    crv = _member(data, "crv")
    curve = CURVES.get(crv)
    if curve is None:
        raise InvalidKey("JWK 'crv' is not a supported curve")
    if set(data) & (PRIVATE_MEMBERS - {"d"}):
        raise InvalidKey("EC JWK carries members of another key type")
    x, y = _fixed(data, "x", curve.size), _fixed(data, "y", curve.size)
    # public_key() checks that the point is on the curve.
    public = ec.EllipticCurvePublicNumbers(x, y, curve.curve).public_key()
    if not has_private:
        return public, None
    d = _fixed(data, "d", curve.size)
    if not 0 < d < curve.order:
        raise InvalidKey("EC private scalar out of range")
    private = ec.derive_private_key(d, curve.curve)
    if private.public_key().public_numbers() != public.public_numbers():
        raise InvalidKey("EC private key does not match its public point")
    return public, private


def _import_okp(
    data: Mapping[str, object], has_private: bool
) -> tuple[ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey | None]:
    crv = _member(data, "crv")
    if crv != "Ed25519":
        raise InvalidKey("JWK 'crv' is not a supported curve")
    if set(data) & (PRIVATE_MEMBERS - {"d"}):
        raise InvalidKey("OKP JWK carries members of another key type")
    x = _octets(data, "x")
    if len(x) != 32:
        raise InvalidKey("Ed25519 public key must be 32 octets")
    public = ed25519.Ed25519PublicKey.from_public_bytes(x)
    if not has_private:
        return public, None
    d = _octets(data, "d")
    if len(d) != 32:
        raise InvalidKey("Ed25519 private key must be 32 octets")
    private = ed25519.Ed25519PrivateKey.from_private_bytes(d)
    if private.public_key() != public:
        raise InvalidKey("Ed25519 private key does not match its public key")
    return public, private
