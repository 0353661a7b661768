"""JWK (jose/jwk.py, RFC 7517/7518/8037): import, export, generation and the keys refused."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from sealring.jose import (
    JWK,
    AlgorithmNotAllowed,
    InvalidKey,
    KeySet,
    _json,
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


def _point_with_x_zero(crv: str) -> tuple[int, int]:
    """(0, y) on the curve, and the curve's prime: y^2 = b, with b from the generator."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from sealring.jose.algorithms import CURVES

    curve = CURVES[crv]
    p = curve.prime
    g = ec.derive_private_key(1, curve.curve).public_key().public_numbers()
    b = (g.y**2 - g.x**3 + 3 * g.x) % p
    y = pow(b, (p + 1) // 4, p)  # p = 3 mod 4 for all three curves
    assert y * y % p == b
    return y, p


@pytest.mark.parametrize("crv", ["P-256", "P-384", "P-521"])
def test_x_spelled_as_p_is_refused_where_x_zero_is_a_point(crv: str) -> None:
    # cryptography reduces x = p to 0: the same point, a second spelling of its key.
    y, p = _point_with_x_zero(crv)
    size = (p.bit_length() + 7) // 8
    point = {"kty": "EC", "crv": crv, "y": b64url_encode(y.to_bytes(size, "big"))}
    assert JWK.from_dict({**point, "x": b64url_encode(bytes(size))}).kty == "EC"
    with pytest.raises(InvalidKey, match="canonical"):
        JWK.from_dict({**point, "x": b64url_encode(p.to_bytes(size, "big"))})


def test_the_ec_private_scalar_one_is_a_key() -> None:
    # RFC 7518 §6.2.2.1 / SEC 1: d is in [1, n - 1]; d = 1 (public point G) is its lower end.
    from cryptography.hazmat.primitives.asymmetric import ec

    generator = JWK.from_key(ec.derive_private_key(1, ec.SECP256R1()))
    members = generator.to_private_dict()
    again = JWK.from_dict(members, allow_private=True)
    assert again == generator
    private = again.private_key()
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert private.private_numbers().private_value == 1


@pytest.mark.parametrize("crv", ["P-256", "P-384", "P-521"])
def test_ec_private_export_writes_d_at_full_length(crv: str) -> None:
    # RFC 7518 §6.2.2.1: d is as long as the curve's order, leading zero octets included.
    from cryptography.hazmat.primitives.asymmetric import ec

    from sealring.jose.algorithms import CURVES

    curve = CURVES[crv]
    members = JWK.from_key(ec.derive_private_key(1, curve.curve)).to_private_dict()
    assert b64url_decode(str(members["d"])) == (1).to_bytes(curve.size, "big")


def _without(members: dict[str, object], *names: str) -> dict[str, object]:
    return {k: v for k, v in members.items() if k not in names}


def test_an_rsa_private_key_without_its_crt_members_is_recovered_from_d() -> None:
    # RFC 7518 §6.3.2: p, q, dp, dq and qi are optional, all together.
    full = key("RS256").to_private_dict()
    only_d = JWK.from_dict(_without(full, "p", "q", "dp", "dq", "qi"), allow_private=True)
    assert only_d == key("RS256")
    recovered = only_d.to_private_dict()
    assert {recovered["p"], recovered["q"]} == {full["p"], full["q"]}
    if recovered["p"] == full["p"]:
        assert recovered == full


@pytest.mark.parametrize("missing", ["p", "q", "dp", "dq", "qi"])
def test_an_rsa_private_key_with_only_some_crt_members_is_refused(missing: str) -> None:
    with pytest.raises(InvalidKey, match="only some"):
        JWK.from_dict(_without(key("RS256").to_private_dict(), missing), allow_private=True)


def test_multi_prime_rsa_keys_are_refused() -> None:
    members = {**key("RS256").to_private_dict(), "oth": [{"r": "AQ", "d": "AQ", "t": "AQ"}]}
    with pytest.raises(InvalidKey, match="multi-prime"):
        JWK.from_dict(members, allow_private=True)


def test_keys_are_equal_only_when_kid_key_alg_use_and_privateness_all_match() -> None:
    es = key("ES256")
    assert es == JWK.from_dict(es.to_private_dict(), allow_private=True)
    other = JWK.generate("ES256")
    different = [
        other,  # another key, same alg, use and privateness
        JWK.from_key(other.private_key(), alg="ES256", kid=es.kid),  # same kid, another key
        JWK.from_key(es.private_key(), alg=None, kid=es.kid),
        JWK.from_key(es.private_key(), alg="ES256", kid=es.kid, use="enc"),
        es.public(),
    ]
    for candidate in different:
        assert candidate != es
        assert es != candidate


def test_repr_tells_a_private_key_from_a_public_one() -> None:
    es = key("ES256")
    assert repr(es) == f"JWK(kty='EC', kid={es.kid!r}, alg='ES256', private)"
    assert repr(es.public()) == f"JWK(kty='EC', kid={es.kid!r}, alg='ES256', public)"


def test_from_json_refuses_private_members_unless_allowed() -> None:
    es = key("ES256")
    assert JWK.from_json(_json.dumps(es.to_dict())) == es.public()
    private = _json.dumps(es.to_private_dict())
    with pytest.raises(InvalidKey, match="private members"):
        JWK.from_json(private)
    assert JWK.from_json(private, allow_private=True) == es
    with pytest.raises(InvalidKey):
        JWK.from_json("[]")


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_from_key_keeps_alg_kid_and_use(alg: str) -> None:
    private = key(alg).private_key()
    public = private.public_key()
    for wrapped in (private, public):
        default = JWK.from_key(wrapped)
        assert (default.alg, default.kid, default.use) == (None, default.thumbprint(), "sig")
        named = JWK.from_key(wrapped, alg=alg, kid="k-1", use="enc")
        assert (named.alg, named.kid, named.use) == (alg, "k-1", "enc")
        assert named.is_private is (wrapped is private)


@pytest.mark.parametrize("alg", ["RS256", "PS384", "ES256", "ES512", "EdDSA"])
def test_a_generated_key_declares_its_algorithm(alg: str) -> None:
    generated = JWK.generate(alg)
    assert generated.is_private
    assert generated.alg == alg
    assert generated.to_dict()["alg"] == alg


def test_a_generated_rsa_key_is_2048_bits_with_e_65537() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    public = JWK.generate("RS256").public_key
    assert isinstance(public, rsa.RSAPublicKey)
    numbers = public.public_numbers()
    assert (numbers.n.bit_length(), numbers.e) == (2048, 65537)


@pytest.mark.parametrize(
    ("alg", "other"), [("ES256", "RS256"), ("RS256", "ES256"), ("EdDSA", "ES256")]
)
def test_a_verifier_is_bound_only_for_an_algorithm_that_fits_the_key(alg: str, other: str) -> None:
    jwk = JWK.from_dict(key(alg).to_dict())  # a fresh key: nothing bound yet
    assert jwk.verifier(alg) is jwk.verifier(alg)  # bound once, then cached
    for wrong in (other, "none", "HS256", "XX"):
        with pytest.raises(AlgorithmNotAllowed):
            jwk.verifier(wrong)


def test_the_roca_subgroups_are_those_generated_by_65537() -> None:
    # CVE-2017-15361: the table the ROCA check reads, against its definition.
    from sealring.jose.jwk import _ROCA_PRIMES, _ROCA_SUBGROUPS, _subgroup

    assert _ROCA_PRIMES[:3] == (3, 5, 7)
    assert len(_ROCA_PRIMES) == 38
    for p, members in _ROCA_SUBGROUPS:
        assert _subgroup(65537, p) == members == {pow(65537, k, p) for k in range(p)}


@pytest.mark.parametrize("crv", ["P-256", "P-384", "P-521"])
@pytest.mark.parametrize("coordinate", ["x", "y"])
def test_ec_public_export_writes_each_coordinate_at_full_length(crv: str, coordinate: str) -> None:
    # RFC 7518 §6.2.1.2/3: x and y are as long as the field, leading zero octets included.
    from cryptography.hazmat.primitives.asymmetric import ec

    from sealring.jose.algorithms import CURVES

    curve = CURVES[crv]
    d = 1
    while True:  # the first scalar whose point has a leading zero octet in this coordinate
        private = ec.derive_private_key(d, curve.curve)
        value = getattr(private.public_key().public_numbers(), coordinate)
        if value < 256 ** (curve.size - 1):
            break
        d += 1
    exported = JWK.from_key(private).public().to_dict()
    assert b64url_decode(str(exported[coordinate])) == value.to_bytes(curve.size, "big")
    assert (
        JWK.from_dict(exported).public_key.public_numbers() == private.public_key().public_numbers()
    )
