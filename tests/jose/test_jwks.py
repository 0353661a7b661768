"""KeySet (jose/jwks.py, RFC 7517 §5): what a JWK Set may hold, what is skipped, what is refused."""

from __future__ import annotations

import json

import pytest

from sealring.jose import (
    JWK,
    InvalidKey,
    InvalidKeySet,
    KeySet,
    LocalSigner,
    encode_jwt,
    verify_compact,
)
from sealring.jose._b64 import b64url_encode
from tests.helpers.clock import T0
from tests.helpers.jose import key
from tests.helpers.tokens import new_key


def _rsa_doc(**override: object) -> dict[str, object]:
    return {**key("RS256").public().to_dict(), **override}


def test_keyset_rules() -> None:
    es, ed = key("ES256"), key("EdDSA")
    doc = {
        "keys": [
            es.to_dict(),
            ed.to_dict(),
            {"kty": "XYZ"},
            {**key("ES384").to_dict(), "use": "enc"},
        ]
    }
    ks = KeySet.from_dict(doc)
    assert len(ks) == 2
    assert es.kid in ks
    assert "nope" not in ks
    assert len(ks.skipped) == 2
    assert ks.to_dict() == {"keys": [es.to_dict(), ed.to_dict()]}
    with pytest.raises(InvalidKeySet):
        KeySet.from_dict({"keys": [es.to_dict(), es.to_dict()]})
    with pytest.raises(InvalidKeySet):
        KeySet.from_dict({"keys": [es.to_private_dict()]})
    with pytest.raises(InvalidKeySet):
        KeySet.from_dict({"keys": [{"kty": "oct", "k": "AAAA"}]})
    with pytest.raises(InvalidKeySet):
        KeySet.from_json(b'{"keys":[]}' + b" " * 600_000)
    with pytest.raises(InvalidKeySet):
        KeySet.from_json(b"[]")
    assert not KeySet.of(es).keys[0].is_private


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
    token = encode_jwt({"exp": T0 + 9}, LocalSigner(key("ES256")))
    verify_compact(token, keys)


def test_key_set_kids() -> None:
    a, b = new_key("ES256", kid="a"), new_key("EdDSA", kid="b")
    keys = KeySet.of(a, b)
    assert keys.kids == frozenset({"a", "b"})
    assert "a" in keys
    assert "c" not in keys
    with pytest.raises(AttributeError):
        keys.kids = frozenset()  # type: ignore[misc]
