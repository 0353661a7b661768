"""JWK (jose/jwk.py, RFC 7517/7518/8037): import, export, generation and the keys refused."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from sealring.jose import (
    JWK,
    InvalidKey,
    KeySet,
)
from sealring.jose._b64 import b64url_decode, b64url_encode
from tests.helpers.jose import b64, key

ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


# The eight points of small order on edwards25519, as RFC 8032 encodes them (and the one
# non-canonical spelling y = p that decodes to y = 0).
SMALL_ORDER = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
]


@pytest.mark.parametrize("alg", ALGS)
def test_public_export_never_has_private_members(alg: str) -> None:
    jwk = key(alg)
    assert jwk.is_private
    public = jwk.to_dict()
    assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(public)
    assert not jwk.public().is_private
    assert jwk.public().kid == jwk.kid == jwk.thumbprint()
    with pytest.raises(InvalidKey):
        jwk.public().private_key()
    with pytest.raises(InvalidKey):
        jwk.public().to_private_dict()
    with pytest.raises(InvalidKey):
        JWK.from_dict(jwk.to_private_dict())
    again = JWK.from_dict(jwk.to_private_dict(), allow_private=True)
    assert again == jwk
    assert again.to_private_dict() == jwk.to_private_dict()
    assert jwk.to_private_dict()["d"] not in repr(jwk)


def test_jwk_is_immutable_and_hashable() -> None:
    jwk = key("ES256")
    with pytest.raises(AttributeError):
        jwk.kid = "x"  # type: ignore[misc]
    assert {jwk, jwk.public()}
    assert hash(jwk) == hash(jwk.kid)


def test_signing_algorithm_defaults() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    assert JWK.from_key(ec.generate_private_key(ec.SECP384R1())).signing_algorithm() == "ES384"
    assert JWK.from_key(ed25519.Ed25519PrivateKey.generate()).signing_algorithm() == "EdDSA"
    rsa = JWK.from_dict({k: v for k, v in key("RS256").to_dict().items() if k != "alg"})
    assert rsa.alg is None
    assert rsa.signing_algorithm() == "RS256"
    with pytest.raises(InvalidKey):
        JWK.from_key(ec.generate_private_key(ec.SECP256R1()), alg="ES384")
    with pytest.raises(InvalidKey):
        JWK.from_key(ec.generate_private_key(ec.SECP256K1()))


def test_key_ops_with_unhashable_members() -> None:
    """Found by hypothesis: key_ops holding lists must be skipped, not crash."""
    member = {**key("ES256").public().to_dict(), "key_ops": [["verify"]]}
    keys = KeySet.from_dict({"keys": [member]})
    assert len(keys) == 0
    assert len(keys.skipped) == 1


@pytest.mark.parametrize("point", SMALL_ORDER)
def test_small_order_ed25519_keys_are_refused(point: str) -> None:
    raw = bytes.fromhex(point)
    with pytest.raises(InvalidKey):
        JWK.from_dict({"kty": "OKP", "crv": "Ed25519", "x": b64(raw)})
    with pytest.raises(InvalidKey):
        JWK.from_key(ed25519.Ed25519PublicKey.from_public_bytes(raw))


def test_small_order_key_would_accept_a_universal_forgery() -> None:
    # Why the refusal matters: under the identity key, (R = identity, S = 0) verifies any message.
    identity = bytes.fromhex(SMALL_ORDER[0])
    public = ed25519.Ed25519PublicKey.from_public_bytes(identity)
    public.verify(identity + bytes(32), b"any message at all")
    members = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64(identity), "kid": "k"}]}
    assert len(KeySet.from_dict(members)) == 0


@pytest.mark.parametrize("crv", ["P-256", "P-384", "P-521"])
@pytest.mark.parametrize("coordinate", ["x", "y"])
def test_ec_coordinates_at_or_above_p_are_refused(crv: str, coordinate: str) -> None:
    alg = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[crv]
    public = JWK.generate(alg).public().to_dict()
    size = len(b64url_decode(str(public["x"])))
    value = int.from_bytes(b64url_decode(str(public[coordinate])), "big")
    from sealring.jose.algorithms import CURVES

    prime = CURVES[crv].prime
    for bad in (value + prime, prime):
        if bad < 256**size:
            with pytest.raises(InvalidKey):
                JWK.from_dict({**public, coordinate: b64url_encode(bad.to_bytes(size, "big"))})


def test_p521_alias_of_a_valid_point_is_refused() -> None:
    # P-521 coordinates have 7 spare bits: x + p always fits and cryptography reduces it.
    public = JWK.generate("ES512").public().to_dict()
    x = int.from_bytes(b64url_decode(str(public["x"])), "big")
    alias = b64url_encode((x + 2**521 - 1).to_bytes(66, "big"))
    with pytest.raises(InvalidKey, match="canonical"):
        JWK.from_dict({**public, "x": alias})
