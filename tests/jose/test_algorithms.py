"""The algorithm registry (jose/algorithms.py): ECDSA's raw r||s form and its DER fast path."""

from __future__ import annotations

import random

import pytest
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.hashes import SHA256

from sealring.jose.algorithms import ALGORITHMS, CURVES, _der_prefixes, _der_signature
from sealring.jose.errors import InvalidSignature


@pytest.mark.parametrize("crv", sorted(CURVES))
def test_der_fast_path_is_the_canonical_encoding(crv: str) -> None:
    """The precomputed headers give the encoding cryptography's own encoder gives, for every
    pair of leading octets the fast path takes (neither zero)."""
    size = CURVES[crv].size
    rng = random.Random(crv)
    for r0 in range(1, 256):
        for s0 in (1, 0x7F, 0x80, 0xFF, r0):
            r = bytes((r0,)) + rng.randbytes(size - 1)
            s = bytes((s0,)) + rng.randbytes(size - 1)
            outer, r_tag, s_tag = _der_prefixes(size, r0 >> 7, s0 >> 7)
            fast = b"".join((outer, r_tag, r, s_tag, s))
            expected = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
            assert fast == expected == _der_signature(r, s), (r0, s0)
    # The slow path (a leading zero octet) also matches.
    for r, s in ((b"\0" * (size - 1) + b"\x01", b"\x80" + b"\0" * (size - 1)),):
        assert _der_signature(r, s) == encode_dss_signature(
            int.from_bytes(r, "big"), int.from_bytes(s, "big")
        )


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512"])
def test_ecdsa_verify_agrees_with_cryptography(alg: str) -> None:
    """Valid, malleated (n - s), bit-flipped and out-of-range signatures: accepted exactly when
    cryptography accepts the same (r, s)."""
    algorithm = ALGORITHMS[alg]
    curve = CURVES[algorithm.crv or ""]
    size, order = curve.size, curve.order
    private = ec.generate_private_key(curve.curve)
    verify = algorithm.bind(private.public_key())
    rng = random.Random(alg)
    seen_tops: set[tuple[bool, bool]] = set()
    for i in range(60):
        data = b"message %d" % i
        raw = algorithm.sign(private, data)
        r = int.from_bytes(raw[:size], "big")
        s = int.from_bytes(raw[size:], "big")
        assert (r, s) == decode_dss_signature(encode_dss_signature(r, s))
        candidates = [
            (r, s, True),
            (r, order - s, True),  # ECDSA malleability: cryptography accepts it, so do we
            (r, s ^ (1 << rng.randrange(8 * size - 8)), False),
            (r ^ (1 << rng.randrange(8 * size - 8)), s, False),
            (r + order, s, False) if r + order < 256**size else (r, s + 1, False),
            (r, 0, False),
            (0, s, False),
        ]
        for cr, cs, _ in candidates:
            signature = cr.to_bytes(size, "big") + cs.to_bytes(size, "big")
            seen_tops.add((signature[0] >= 0x80, signature[size] >= 0x80))
            try:
                private.public_key().verify(encode_dss_signature(cr, cs), data, _ecdsa_of(alg))
                accepted_by_cryptography = 0 < cr < order and 0 < cs < order
            except CryptoInvalidSignature:
                accepted_by_cryptography = False
            try:
                verify(signature, data)
                ours = True
            except InvalidSignature:
                ours = False
            assert ours == accepted_by_cryptography, (cr, cs)
        with pytest.raises(InvalidSignature):
            verify(raw, data + b"!")
        with pytest.raises(InvalidSignature):
            verify(raw[:-1], data)
        with pytest.raises(InvalidSignature):
            verify(encode_dss_signature(r, s), data)  # DER is not a JWS signature form
    if alg != "ES512":  # P-521's top octet is 0 or 1: its top bit is never set
        assert seen_tops == {(False, False), (False, True), (True, False), (True, True)}


def _ecdsa_of(alg: str) -> ec.ECDSA:
    hash_alg = ALGORITHMS[alg].hash
    return ec.ECDSA(hash_alg if hash_alg is not None else SHA256())
