"""Published vectors: RFC 7520 cookbook, RFC 7515 A.2/A.3, RFC 7638, RFC 8037, Wycheproof.

Wycheproof semantics: ``valid`` must verify, ``invalid`` must be rejected with a JoseError,
``acceptable`` may go either way but never with anything but a JoseError. Cases this library
does not implement on purpose (HMAC keys, JSON serialization) must be rejected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from sealring.jose import (
    JWK,
    InvalidKey,
    InvalidKeySet,
    JoseError,
    JWTVerifier,
    KeySet,
    LocalSigner,
    sign_compact,
    verify_compact,
)
from sealring.jose.algorithms import ALGORITHMS

# -- RFC 7638 §3.1 ----------------------------------------------------------------------------

RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
    "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
    "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
    "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)


def test_rfc7638_thumbprint() -> None:
    jwk = JWK.from_dict(
        {"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
    )
    assert jwk.thumbprint() == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert jwk.kid == "2011-04-29"
    assert JWK.from_dict({"kty": "RSA", "n": RFC7638_N, "e": "AQAB"}).kid == jwk.thumbprint()


# -- RFC 7515 Appendix A.2 (RS256) and A.3 (ES256): no kid in either --------------------------

A_PAYLOAD = (
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
)
A2_N = (
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4Ql"
    "L-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUs"
    "LA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8"
    "NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"
)
A2_TOKEN = (
    "eyJhbGciOiJSUzI1NiJ9."
    + A_PAYLOAD
    + ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7"
    "AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6x"
    "BArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnv"
    "Wh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw"
)
A3_KEY = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI",
}
A3_TOKEN = (
    "eyJhbGciOiJFUzI1NiJ9."
    + A_PAYLOAD
    + ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSA"
    "pmWQxfKTUJqPP3-Kg6NU1Q"
)
A_CLAIMS = {"iss": "joe", "exp": 1300819380, "http://example.com/is_root": True}


@pytest.mark.parametrize(
    ("key", "token"),
    [({"kty": "RSA", "n": A2_N, "e": "AQAB"}, A2_TOKEN), ({**A3_KEY, "d": None}, A3_TOKEN)],
    ids=["A.2-RS256", "A.3-ES256"],
)
def test_rfc7515_appendix_a(key: dict[str, Any], token: str) -> None:
    jwk = JWK.from_dict({k: v for k, v in key.items() if v is not None})
    verifier = JWTVerifier(KeySet.of(jwk), issuer="joe", clock=lambda: 1300819000)
    result = verifier.verify(token)
    assert result.claims == A_CLAIMS
    with pytest.raises(JoseError):
        JWTVerifier(KeySet.of(jwk), clock=lambda: 1300819380).verify(token)  # expired
    # no kid: two keys of the same kind make the choice ambiguous
    other = JWK.generate("ES256" if jwk.kty == "EC" else "RS256").public()
    with pytest.raises(JoseError):
        verifier.__class__(KeySet.of(jwk, other), clock=lambda: 1300819000).verify(token)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(JoseError):
        verifier.verify(tampered)


def test_rfc7515_a3_private_key_matches() -> None:
    jwk = JWK.from_dict(A3_KEY, allow_private=True)
    assert jwk.is_private
    with pytest.raises(InvalidKey):
        JWK.from_dict(
            {**A3_KEY, "d": "jpsQnnGQmL-YBIffH1136cLnT8EgfH3cTzP9kGkoFtM"}, allow_private=True
        )


# -- RFC 7520 (JOSE cookbook) ------------------------------------------------------------------


def _cookbook(vectors_dir: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((vectors_dir / "jose-cookbook" / name).read_text())
    return data


@pytest.mark.parametrize(
    ("name", "alg"),
    [
        ("jws/4_1.rsa_v15_signature.json", "RS256"),
        ("jws/4_2.rsa-pss_signature.json", "PS384"),
        ("jws/4_3.ecdsa_signature.json", "ES512"),
    ],
)
def test_cookbook_signatures(vectors_dir: Path, name: str, alg: str) -> None:
    case = _cookbook(vectors_dir, name)
    key = JWK.from_dict(case["input"]["key"], allow_private=True)
    keys = KeySet.of(key)
    compact = case["output"]["compact"]
    jws = verify_compact(compact, keys, algorithms=[alg])
    assert jws.payload.decode() == case["input"]["payload"]
    assert jws.header == case["signing"]["protected"]
    if case.get("reproducible"):
        signer = LocalSigner(key, alg)
        assert sign_compact(case["input"]["payload"].encode(), signer) == compact
    # And our own signature with the same key verifies (PSS and ECDSA are randomised).
    ours = sign_compact(b"payload", LocalSigner(key, alg))
    verify_compact(ours, keys, algorithms=[alg])


def test_cookbook_key_imports(vectors_dir: Path) -> None:
    ec_pub = JWK.from_dict(_cookbook(vectors_dir, "jwk/3_1.ec_public_key.json"))
    ec_priv = JWK.from_dict(
        _cookbook(vectors_dir, "jwk/3_2.ec_private_key.json"), allow_private=True
    )
    rsa_pub = JWK.from_dict(_cookbook(vectors_dir, "jwk/3_3.rsa_public_key.json"))
    rsa_priv = JWK.from_dict(
        _cookbook(vectors_dir, "jwk/3_4.rsa_private_key.json"), allow_private=True
    )
    assert ec_priv.public() == ec_pub
    assert rsa_priv.public() == rsa_pub
    assert ec_pub.signing_algorithm() == "ES512"
    for name in ("jwk/3_1.ec_public_key.json", "jwk/3_3.rsa_public_key.json"):
        original = _cookbook(vectors_dir, name)
        exported = JWK.from_dict(original).to_dict()
        assert {k: v for k, v in original.items() if k in exported} == {
            k: v for k, v in exported.items() if k in original
        }
    private = _cookbook(vectors_dir, "jwk/3_4.rsa_private_key.json")
    assert rsa_priv.to_private_dict() == private
    with pytest.raises(InvalidKey):
        JWK.from_dict(private)
    with pytest.raises(InvalidKeySet):
        KeySet.from_dict({"keys": [private]})


@pytest.mark.parametrize(
    "name",
    [
        "jws/4_4.hmac-sha2_integrity_protection.json",
        "jws/4_5.signature_with_detached_content.json",
        "jws/4_6.protecting_specific_header_fields.json",
        "jws/4_7.protecting_content_only.json",
        "jws/4_8.multiple_signatures.json",
    ],
)
def test_cookbook_refused(vectors_dir: Path, name: str) -> None:
    """HMAC, detached content and JSON-only serialisations never verify against public keys."""
    case = _cookbook(vectors_dir, name)
    keys = KeySet.of(JWK.from_dict(_cookbook(vectors_dir, "jwk/3_3.rsa_public_key.json")))
    output = case["output"]
    candidates = [output[k] for k in ("compact",) if k in output]
    candidates += [json.dumps(output[k]) for k in ("json", "json_flat") if k in output]
    assert candidates
    for token in candidates:
        with pytest.raises(JoseError):
            verify_compact(token, keys)


def test_rfc8037_ed25519(vectors_dir: Path) -> None:
    """RFC 8037 Appendix A: key, thumbprint (A.3) and deterministic signature (A.4)."""
    case = _cookbook(vectors_dir, "curve25519/jws.json")
    key = JWK.from_dict(case["input"]["key"], allow_private=True)
    assert key.thumbprint() == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    compact = case["output"]["compact"]
    jws = verify_compact(compact, KeySet.of(key))  # no kid, one key fits
    assert jws.payload == b"Example of Ed25519 signing"
    signing_input = case["signing"]["sig-input"].encode()
    assert compact.endswith("." + case["signing"]["sig"])
    signature = LocalSigner(key).sign(signing_input)
    assert compact.split(".")[2] == jws_b64(signature)


def jws_b64(data: bytes) -> str:
    from sealring.jose._b64 import b64url_encode

    return b64url_encode(data)


# -- Wycheproof: JWS and JWK --------------------------------------------------------------------


def _wycheproof(vectors_dir: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((vectors_dir / "wycheproof" / name).read_text())
    return data


def _group_keyset(group: dict[str, Any]) -> KeySet | None:
    """The verification keys of a group, or None when the set is refused as a whole."""
    public = group.get("public")
    doc = public if public is not None else group.get("private")
    if doc is None:
        return None
    if "keys" not in doc:
        doc = {"keys": [doc]}
    try:
        return KeySet.from_dict(doc)
    except InvalidKeySet:
        return None


def _jws_cases(vectors_dir: Path, name: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    data = _wycheproof(vectors_dir, name)
    return [(f"{g['comment']}-{t['tcId']}", g, t) for g in data["testGroups"] for t in g["tests"]]


def _is_symmetric(group: dict[str, Any]) -> bool:
    doc = group.get("private") or {}
    members = doc.get("keys", [doc])
    return any(member.get("kty") == "oct" for member in members)


# Cases marked valid that this library refuses on purpose, with the rule that refuses them.
POLICY_REJECTS = {
    # The key declares "alg": "PS256"; the token says PS384. A key is bound to one algorithm
    # (RFC 7517 §4.4 "alg"), so the header may not pick another (RFC 8725 §3.1).
    ("json_web_signature_test.json", 346): "key bound to PS256",
    ("json_web_signature_test.json", 350): "key bound to PS256",
    # The key declares "alg": "ES521", which is not registered (RFC 7518 §3.1 names ES512);
    # an unknown alg makes the key unusable rather than free to serve any algorithm.
    ("json_web_signature_test.json", 347): "unregistered alg ES521 on the key",
    ("json_web_signature_test.json", 351): "unregistered alg ES521 on the key",
}


@pytest.mark.parametrize("source", ["json_web_signature_test.json", "json_web_key_test.json"])
def test_wycheproof_jose(vectors_dir: Path, source: str) -> None:
    verified = rejected = not_applicable = 0
    for case_id, group, test in _jws_cases(vectors_dir, source):
        keys = _group_keyset(group)
        token = test["jws"]
        ok = False
        try:
            if keys is not None:
                verify_compact(token, keys)
                ok = True
        except JoseError:
            ok = False
        except Exception as exc:  # pragma: no cover - the assertion explains it
            raise AssertionError(f"{case_id}: {type(exc).__name__} is not a JoseError") from exc
        if (source, test["tcId"]) in POLICY_REJECTS:
            assert not ok, f"{case_id}: verified despite {POLICY_REJECTS[(source, test['tcId'])]}"
            not_applicable += 1
        elif test["result"] == "valid" and _is_symmetric(group):
            assert not ok, f"{case_id}: an HMAC token verified"
            not_applicable += 1
        elif test["result"] == "valid":
            assert ok, f"{case_id}: valid case rejected ({test['comment']})"
            verified += 1
        elif test["result"] == "invalid":
            assert not ok, f"{case_id}: invalid case accepted ({test['comment']})"
            rejected += 1
    assert verified > 0
    assert rejected > 0
    # Every case is either checked or an HMAC case (which is refused, by design).
    total = sum(len(g["tests"]) for g in _wycheproof(vectors_dir, source)["testGroups"])
    assert verified + rejected + not_applicable == total


# -- Wycheproof: the primitives with JWS encodings ---------------------------------------------


def _check(case_id: str, result: str, verify: Any, sig: bytes, msg: bytes) -> None:
    try:
        verify(sig, msg)
        ok = True
    except JoseError:
        ok = False
    except Exception as exc:  # pragma: no cover
        raise AssertionError(f"{case_id}: {type(exc).__name__} is not a JoseError") from exc
    if result == "valid":
        assert ok, f"{case_id}: valid signature rejected"
    elif result == "invalid":
        assert not ok, f"{case_id}: invalid signature accepted"


def _check_group(name: str, group: dict[str, Any], verify: Any) -> int:
    for test in group["tests"]:
        sig, msg = bytes.fromhex(test["sig"]), bytes.fromhex(test["msg"])
        _check(f"{name}#{test['tcId']}", test["result"], verify, sig, msg)
    return len(group["tests"])


@pytest.mark.parametrize(
    ("name", "alg", "curve"),
    [
        ("ecdsa_secp256r1_sha256_p1363_test.json", "ES256", ec.SECP256R1()),
        ("ecdsa_secp384r1_sha384_p1363_test.json", "ES384", ec.SECP384R1()),
        ("ecdsa_secp521r1_sha512_p1363_test.json", "ES512", ec.SECP521R1()),
    ],
)
def test_wycheproof_ecdsa_p1363(
    vectors_dir: Path, name: str, alg: str, curve: ec.EllipticCurve
) -> None:
    data = _wycheproof(vectors_dir, name)
    count = 0
    for group in data["testGroups"]:
        pub = group["publicKey"]
        try:
            numbers = ec.EllipticCurvePublicNumbers(int(pub["wx"], 16), int(pub["wy"], 16), curve)
            key = JWK.from_key(numbers.public_key(), alg=alg)
        except (ValueError, InvalidKey):
            continue  # an invalid public key: nothing to verify against
        if "publicKeyJwk" in group:
            jwk_doc = {k: v for k, v in group["publicKeyJwk"].items() if k != "kid"}
            assert JWK.from_dict(jwk_doc).to_dict()["x"] == key.to_dict()["x"]
        verify = key.verifier(alg)
        count += _check_group(name, group, verify)
    assert count > 200


@pytest.mark.parametrize(
    ("name", "alg"),
    [
        ("rsa_signature_2048_sha256_test.json", "RS256"),
        ("rsa_pss_2048_sha256_mgf1_32_test.json", "PS256"),
    ],
)
def test_wycheproof_rsa(vectors_dir: Path, name: str, alg: str) -> None:
    data = _wycheproof(vectors_dir, name)
    count = 0
    for group in data["testGroups"]:
        jwk_doc = group.get("keyJwk") or group.get("publicKeyJwk")
        doc = {k: v for k, v in jwk_doc.items() if k not in ("kid", "alg")}
        key = JWK.from_dict(doc)
        numbers = key.public_key.public_numbers()  # type: ignore[union-attr]
        assert numbers.n == int(group["publicKey"]["modulus"], 16)
        verify = key.verifier(alg)
        count += _check_group(name, group, verify)
    assert count > 100


def test_wycheproof_ed25519(vectors_dir: Path) -> None:
    name = "ed25519_test.json"
    data = _wycheproof(vectors_dir, name)
    count = 0
    for group in data["testGroups"]:
        raw = bytes.fromhex(group["publicKey"]["pk"])
        key = JWK.from_key(ed25519.Ed25519PublicKey.from_public_bytes(raw), alg="EdDSA")
        jwk_doc = {k: v for k, v in group["publicKeyJwk"].items() if k != "kid"}
        assert JWK.from_dict(jwk_doc).to_dict()["x"] == key.to_dict()["x"]
        verify = key.verifier("EdDSA")
        count += _check_group(name, group, verify)
    assert count > 100


def test_algorithm_registry_is_asymmetric_only() -> None:
    assert set(ALGORITHMS) == {
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "ES256",
        "ES384",
        "ES512",
        "EdDSA",
    }
