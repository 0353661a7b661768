"""JWK import limits (RFC 7518 §6.3.1, RFC 8725 §3.5): RSA modulus and exponent at their bounds.

An RSA modulus of 2048 to 8192 bits is accepted, one bit fewer or more is refused; the public
exponent must be odd and within 3 .. 2**32.
"""

from __future__ import annotations

import secrets

import pytest

from sealring.jose import JWK, InvalidKey, _json
from sealring.jose._b64 import b64url_encode
from sealring.jose.jwk import MAX_RSA_BITS, MIN_RSA_BITS
from tests.helpers.jose import key


def _uint(value: int) -> str:
    return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _modulus(bits: int) -> int:
    """An odd number of exactly ``bits`` bits (import checks shape, not primality)."""
    return (1 << (bits - 1)) | secrets.randbits(bits - 1) | 1


def _rsa(n: int, e: int = 65537) -> JWK:
    return JWK.from_dict({"kty": "RSA", "n": _uint(n), "e": _uint(e)})


def test_the_rsa_modulus_bounds_hold_at_their_value() -> None:
    assert (MIN_RSA_BITS, MAX_RSA_BITS) == (2048, 8192)
    assert _rsa(_modulus(MIN_RSA_BITS)).kty == "RSA"
    assert _rsa(_modulus(MAX_RSA_BITS)).kty == "RSA"
    with pytest.raises(InvalidKey):
        _rsa(_modulus(MIN_RSA_BITS - 1))
    with pytest.raises(InvalidKey):
        _rsa(_modulus(MAX_RSA_BITS + 1))


@pytest.mark.parametrize("e", [3, 65537, 2**32 - 1])
def test_an_odd_exponent_within_bounds_is_accepted(e: int) -> None:
    assert _rsa(_modulus(2048), e).kty == "RSA"


@pytest.mark.parametrize("e", [1, 2, 4, 65536, 2**32, 2**32 + 1])
def test_an_exponent_that_is_even_or_out_of_bounds_is_refused(e: int) -> None:
    with pytest.raises(InvalidKey):
        _rsa(_modulus(2048), e)


def test_an_even_modulus_is_refused() -> None:
    with pytest.raises(InvalidKey):
        _rsa(_modulus(2048) - 1)


def test_a_jwk_document_of_64_kib_is_read_and_one_byte_more_is_refused() -> None:
    text = _json.dumps(key("ES256").to_dict()).encode()
    padded = text[:-1] + b" " * (64 * 1024 - len(text)) + b"}"
    assert len(padded) == 64 * 1024
    assert JWK.from_json(padded) == key("ES256").public()
    with pytest.raises(InvalidKey, match="too large"):
        JWK.from_json(padded[:-1] + b" }")


@pytest.mark.parametrize("member", ["n", "e"])
def test_an_integer_with_a_leading_zero_octet_is_refused(member: str) -> None:
    # RFC 7518 §2 Base64urlUInt: the minimum number of octets, so one value has one spelling.
    n, e = _modulus(2048), 3
    raw = {"n": n.to_bytes(256, "big"), "e": e.to_bytes(1, "big")}
    assert _rsa(n, e).kty == "RSA"
    members = {"kty": "RSA", **{k: b64url_encode(v) for k, v in raw.items()}}
    members[member] = b64url_encode(b"\x00" + raw[member])
    with pytest.raises(InvalidKey, match="minimal"):
        JWK.from_dict(members)
