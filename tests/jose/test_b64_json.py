"""Strict base64url (jose/_b64.py, RFC 7515 §2) and strict JSON for JOSE (jose/_json.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sealring.jose import (
    JWK,
    InvalidKey,
    JWTVerifier,
    KeySet,
    LocalSigner,
    MalformedToken,
    _json,
    encode_jwt,
    parse_compact,
    sign_compact,
)
from sealring.jose._b64 import b64url_decode, b64url_encode, uint_b64_encode
from sealring.jose._json import dumps, loads, loads_object
from tests.helpers.clock import T0
from tests.helpers.jose import b64, key


def _verifier(**kwargs: Any) -> JWTVerifier:
    return JWTVerifier(KeySet.of(key("ES256")), clock=lambda: T0, **kwargs)


@given(data=st.binary(max_size=300))
@example(data=b"")
@example(data=b"f")
@example(data=b"fo")
@example(data=b"foo")
@example(data=b"\xff\xfe\xfd")
@example(data=bytes(range(256)))
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


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_deeply_nested_json(depth: int) -> None:
    signer = LocalSigner(key("ES256"))
    nested = b"[" * depth + b"]" * depth
    payload = b'{"exp":' + str(T0 + 9).encode() + b',"x":' + nested + b"}"
    with pytest.raises(MalformedToken):
        _verifier(max_size=1024 * 1024).verify(sign_compact(payload, signer))
    header = b64(b'{"alg":"ES256","x":' + nested + b"}")
    with pytest.raises(MalformedToken):
        parse_compact(f"{header}.e30.AA", max_size=1024 * 1024, max_header_size=1024 * 1024)


def test_nesting_within_the_cap_is_fine() -> None:
    signer = LocalSigner(key("ES256"))
    claims: dict[str, Any] = {"exp": T0 + 9, "x": [[[[["deep"]]]]]}
    assert _verifier().verify(encode_jwt(claims, signer)).claims == claims


def test_duplicate_members_anywhere() -> None:
    signer = LocalSigner(key("ES256"))
    for payload in (b'{"exp":1,"exp":2}', b'{"a":{"b":1,"b":1}}', b'{"a":[{"c":1,"c":2}]}'):
        with pytest.raises(MalformedToken):
            _verifier(required=()).verify(sign_compact(payload, signer))
    head = b64(b'{"alg":"ES256","kid":"a","kid":"b"}')
    with pytest.raises(MalformedToken):
        parse_compact(f"{head}.e30.AA")


def test_whitespace_json_is_accepted() -> None:
    """JSON whitespace is legal (RFC 7515 A.2/A.3 use CRLF inside the payload)."""
    signer = LocalSigner(key("ES256"))
    payload = b' {\r\n "exp" : ' + str(T0 + 9).encode() + b" } \n"
    assert _verifier().verify(sign_compact(payload, signer)).claims == {"exp": T0 + 9}


@pytest.mark.parametrize(
    "text",
    [
        b'{"sub":"\\ud800"}',
        b'{"sub":"\\udfff"}',
        b'{"sub":"\\udc00\\ud800"}',
        b'{"\\ud800":1}',
        b'{"a":["x",{"b":"\\uDBFF"}]}',
    ],
)
def test_unpaired_surrogates_are_refused(text: bytes) -> None:
    # RFC 7493 §2.1; an unpaired surrogate in "sub" made every later .encode() of it fail.
    with pytest.raises(MalformedToken):
        _json.loads_object(text)
    with pytest.raises(MalformedToken):
        _json.loads(text)
    token = sign_compact(text, LocalSigner(key("ES256")))
    with pytest.raises(MalformedToken):
        JWTVerifier(KeySet.of(key("ES256")), required=(), clock=lambda: T0).verify(token)


def test_paired_surrogates_and_raw_text_surrogates() -> None:
    assert _json.loads_object(b'{"a":"\\ud83d\\ude00","b":"\\\\ud800"}') == {
        "a": "\U0001f600",
        "b": "\\ud800",
    }
    with pytest.raises(InvalidKey):
        JWK.from_json('{"kty":"EC","kid":"\ud800"}')


@pytest.mark.parametrize("literal", [b"1e400", b"-1e400", b"1.5e309"])
def test_number_literals_that_overflow_are_refused(literal: bytes) -> None:
    # Python reads 1e400 as float("inf"): "NaN/Infinity refused" must hold for these too.
    with pytest.raises(MalformedToken):
        _json.loads_object(b'{"a":' + literal + b"}")
