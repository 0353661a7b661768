"""Hostile input: nothing may escape as anything but a JoseError, and caps hold."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sealring.jose import (
    JWK,
    InvalidKey,
    InvalidKeySet,
    JoseError,
    JWTVerifier,
    KeySet,
    LocalSigner,
    MalformedToken,
    encode_jwt,
    parse_compact,
    sign_compact,
    verify_compact,
)
from sealring.jose._b64 import b64url_encode

from .helpers import NOW, b64, key


def _verifier(**kwargs: Any) -> JWTVerifier:
    return JWTVerifier(KeySet.of(key("ES256")), clock=lambda: NOW, **kwargs)


def test_two_megabyte_tokens() -> None:
    big_str = "eyJhbGciOiJFUzI1NiJ9." + "A" * (2 * 1024 * 1024) + ".AA"
    for token in (big_str, big_str.encode(), "." * 2_000_000, "a" * 2_000_000):
        with pytest.raises(MalformedToken):
            _verifier().verify(token)
    # With the cap lifted on purpose, a 2 MB signed payload still only costs a verification.
    signer = LocalSigner(key("ES256"))
    token = sign_compact(
        b'{"exp":' + str(NOW + 9).encode() + b',"x":"' + b"y" * 2_000_000 + b'"}', signer
    )
    assert len(token) > 2_000_000
    assert _verifier(max_size=4 * 1024 * 1024).verify(token).claims["exp"] == NOW + 9
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BA")
    with pytest.raises(JoseError):
        _verifier(max_size=4 * 1024 * 1024).verify(forged)


def test_non_utf8_and_non_ascii() -> None:
    signer = LocalSigner(key("ES256"))
    with pytest.raises(MalformedToken):
        _verifier().verify(sign_compact(b"\xff\xfe\x00garbage", signer))
    for token in (
        b"\xff.\xfe.\xfd",
        "\udcff.e30.AA",
        "é.e30.AA",
        b"\x00\x00\x00",
        "eyJ\u200b.e30.AA",
    ):
        with pytest.raises(MalformedToken):
            _verifier().verify(token)
    header = b64url_encode(b'{"alg":"ES256","kid":"\xff"}')
    with pytest.raises(MalformedToken):
        parse_compact(f"{header}.e30.AA")


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_deeply_nested_json(depth: int) -> None:
    signer = LocalSigner(key("ES256"))
    nested = b"[" * depth + b"]" * depth
    payload = b'{"exp":' + str(NOW + 9).encode() + b',"x":' + nested + b"}"
    with pytest.raises(MalformedToken):
        _verifier(max_size=1024 * 1024).verify(sign_compact(payload, signer))
    header = b64(b'{"alg":"ES256","x":' + nested + b"}")
    with pytest.raises(MalformedToken):
        parse_compact(f"{header}.e30.AA", max_size=1024 * 1024, max_header_size=1024 * 1024)


def test_nesting_within_the_cap_is_fine() -> None:
    signer = LocalSigner(key("ES256"))
    claims: dict[str, Any] = {"exp": NOW + 9, "x": [[[[["deep"]]]]]}
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
    payload = b' {\r\n "exp" : ' + str(NOW + 9).encode() + b" } \n"
    assert _verifier().verify(sign_compact(payload, signer)).claims == {"exp": NOW + 9}


def _rsa_doc(**override: object) -> dict[str, object]:
    return {**key("RS256").public().to_dict(), **override}


@pytest.mark.parametrize(
    "member",
    [
        {"kty": "RSA", "n": b64url_encode(b"\x01" * 1024 + b"\x01"), "e": "AQAB"},  # 8201 bits
        {"kty": "RSA", "n": b64url_encode(b"\xff" * 20_000), "e": "AQAB"},  # huge
        _rsa_doc(e="Aw" * 1),  # e = 3 is allowed ...
        _rsa_doc(e=b64url_encode((2**32 + 1).to_bytes(5, "big"))),  # ... e > 2^32 is not
        _rsa_doc(e="AQ"),  # e = 1
        _rsa_doc(e="AAEAAQ"),  # non-minimal encoding
        _rsa_doc(n="AA" + str(_rsa_doc()["n"])[2:]),
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {**key("ES256").public().to_dict(), "y": key("ES384").public().to_dict()["y"]},
        {**key("ES256").public().to_dict(), "crv": "secp256k1"},
        {"kty": "OKP", "crv": "Ed448", "x": "AAAA"},
        {"kty": "OKP", "crv": "X25519", "x": b64url_encode(b"\x09" * 32)},
        {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(b"\x00" * 31)},
        {**key("ES256").public().to_dict(), "alg": "HS256"},
        {**key("ES256").public().to_dict(), "alg": "none"},
        {**key("ES256").public().to_dict(), "alg": "RS256"},
        {**key("ES256").public().to_dict(), "kid": 7},
        {**key("ES256").public().to_dict(), "key_ops": "verify"},
        {**key("ES256").public().to_dict(), "x": key("ES256").public().to_dict()["x"] + "="},
        {"kty": 1},
        {},
    ],
)
def test_hostile_jwks_members_are_skipped(member: dict[str, object]) -> None:
    good = key("EdDSA").public().to_dict()
    keys = KeySet.from_dict({"keys": [member, good]})
    if member.get("e") == "Aw":
        assert len(keys) == 2
        return
    assert len(keys) == 1
    assert len(keys.skipped) == 1
    with pytest.raises(InvalidKey):
        JWK.from_dict(member)


@pytest.mark.parametrize(
    "doc",
    [
        b"",
        b"null",
        b"[]",
        b'{"keys":{}}',
        b'{"keys":"x"}',
        b'{"keys":[],"keys":[]}',
        b"\xef\xbb\xbf{}",
        b"\xff" * 100,
        b"{" * 100_000,
        json.dumps({"keys": [key("ES256").public().to_dict()] * 101}).encode(),
        json.dumps({"keys": [key("ES256").public().to_dict()] * 2}).encode(),
        json.dumps({"keys": [key("ES256").to_private_dict()]}).encode(),
        json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}).encode(),
        json.dumps({"keys": [{"kty": "XYZ", "k": "c2VjcmV0"}]}).encode(),
        json.dumps({"keys": [], "pad": "x" * (600 * 1024)}).encode(),
    ],
)
def test_hostile_jwks_documents_are_refused(doc: bytes) -> None:
    with pytest.raises(InvalidKeySet):
        KeySet.from_json(doc)


def test_hostile_jwks_keeps_working_parts() -> None:
    members: list[object] = [1, "x", None, [], {"kty": "EC"}, key("ES256").public().to_dict()]
    keys = KeySet.from_dict({"keys": members})
    assert len(keys) == 1
    assert len(keys.skipped) == 5
    token = encode_jwt({"exp": NOW + 9}, LocalSigner(key("ES256")))
    verify_compact(token, keys)


def test_embedded_keys_in_header_are_ignored() -> None:
    attacker = JWK.generate("ES256")
    signer = LocalSigner(JWK.from_key(attacker.private_key(), alg="ES256", kid=key("ES256").kid))
    for extra in (
        {"jwk": attacker.public().to_dict()},
        {"jku": "https://attacker.example/jwks"},
        {"x5u": "https://attacker.example/cert"},
        {"x5c": ["MIIB"]},
    ):
        with pytest.raises(JoseError):
            _verifier().verify(encode_jwt({"exp": NOW + 9}, signer, header=extra))


def test_non_string_tokens() -> None:
    for token in (None, 1, ["a"], bytearray(b"a.b.c"), memoryview(b"a.b.c")):
        with pytest.raises(MalformedToken):
            _verifier().verify(token)  # type: ignore[arg-type]


def test_key_ops_with_unhashable_members() -> None:
    """Found by hypothesis: key_ops holding lists must be skipped, not crash."""
    member = {**key("ES256").public().to_dict(), "key_ops": [["verify"]]}
    keys = KeySet.from_dict({"keys": [member]})
    assert len(keys) == 0
    assert len(keys.skipped) == 1
