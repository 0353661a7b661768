from __future__ import annotations

import pytest

from sealring.jose import MalformedToken
from sealring.jose._b64 import b64url_decode, b64url_encode, uint_b64_encode
from sealring.jose._json import dumps, loads, loads_object


@pytest.mark.parametrize("data", [b"", b"f", b"fo", b"foo", b"\xff\xfe\xfd", bytes(range(256))])
def test_b64_round_trip(data: bytes) -> None:
    text = b64url_encode(data)
    assert "=" not in text
    assert b64url_decode(text) == data
    assert b64url_decode(text.encode()) == data


@pytest.mark.parametrize(
    "text",
    [
        "Zg==",  # padding
        "Zg=",
        "Z",  # impossible length
        "Zh",  # non-canonical trailing bits ("f" is "Zg")
        "Zm9=",
        "Zm9w",  # fine on its own; see below for the non-canonical neighbour
        "ab+c",  # standard alphabet
        "ab/c",
        "ab c",
        "ab\nc",
        "é",
    ],
)
def test_b64_rejects(text: str) -> None:
    if text == "Zm9w":
        assert b64url_decode(text) == b"fop"
        return
    with pytest.raises(MalformedToken):
        b64url_decode(text)


def test_b64_non_canonical_three_chars() -> None:
    assert b64url_decode("Zm8") == b"fo"
    with pytest.raises(MalformedToken):
        b64url_decode("Zm9")


def test_uint_encoding() -> None:
    assert uint_b64_encode(65537) == "AQAB"
    assert uint_b64_encode(0) == "AA"
    assert uint_b64_encode(1, 4) == "AAAAAQ"


def test_json_strict() -> None:
    assert loads('{"a":[1,{"b":null}]}') == {"a": [1, {"b": None}]}
    assert dumps({"a": "é"}) == '{"a":"é"}'
    for bad in [
        '{"a":1,"a":2}',
        "NaN",
        '{"a":Infinity}',
        "{",
        b"\xff\xfe",
        "[" * 5000 + "]" * 5000,
    ]:
        with pytest.raises(MalformedToken):
            loads(bad)
    with pytest.raises(MalformedToken):
        loads("[" * 40 + "]" * 40)
    with pytest.raises(MalformedToken):
        loads("1" * 5000)  # over-long integer literal
    with pytest.raises(MalformedToken):
        loads_object("[]")
    with pytest.raises(MalformedToken):
        loads("{}", max_size=1)


def test_curve_orders() -> None:
    """(n-1)·G = -G shares G's x: the hard-coded orders are the curves' real ones."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from sealring.jose.algorithms import CURVES

    for curve in CURVES.values():
        minus_one = ec.derive_private_key(curve.order - 1, curve.curve).public_key()
        one = ec.derive_private_key(1, curve.curve).public_key()
        assert minus_one.public_numbers().x == one.public_numbers().x
        assert curve.order.bit_length() == {32: 256, 48: 384, 66: 521}[curve.size]
