"""JWS compact serialization (jose/jws.py, RFC 7515): signing, parsing, key selection, caps.

Nothing in a token may escape as anything but a JoseError, and the header never chooses the
key or the algorithm."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from sealring.jose import (
    JWK,
    AlgorithmNotAllowed,
    InvalidSignature,
    JoseError,
    JWTVerifier,
    KeyNotFound,
    KeySet,
    LocalSigner,
    MalformedToken,
    UnsupportedCritical,
    encode_jwt,
    parse_compact,
    sign_compact,
    verify_compact,
)
from sealring.jose._b64 import b64url_encode
from tests.helpers.clock import T0
from tests.helpers.jose import b64, forge, key

ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


def _verifier(**kwargs: Any) -> JWTVerifier:
    return JWTVerifier(KeySet.of(key("ES256")), clock=lambda: T0, **kwargs)


@pytest.mark.parametrize("alg", ALGS)
def test_sign_verify_round_trip(alg: str) -> None:
    jwk = key(alg)
    signer = LocalSigner(jwk)
    assert signer.alg == alg
    assert signer.kid == jwk.kid
    token = encode_jwt({"sub": "a", "exp": T0 + 10}, signer)
    verifier = JWTVerifier(KeySet.of(jwk), clock=lambda: T0)
    result = verifier.verify(token)
    assert result.claims == {"sub": "a", "exp": T0 + 10}
    assert result.header == {"alg": alg, "kid": jwk.kid, "typ": "JWT"}
    assert result.key == jwk.public()
    assert result.alg == alg


def test_header_never_chooses_the_key_or_algorithm() -> None:
    ec_key, rsa_key = key("ES256"), key("RS256")
    keys = KeySet.of(ec_key, rsa_key)
    # an RS256 header naming the EC key
    token = sign_compact(b"{}", LocalSigner(rsa_key))
    head = forge({"alg": "RS256", "kid": ec_key.kid}, b"{}").split(".")[0]
    with pytest.raises(AlgorithmNotAllowed):
        verify_compact(head + "." + token.split(".", 1)[1], keys)
    for alg in ("HS256", "none", "ES256K", "RSA-OAEP"):
        with pytest.raises(AlgorithmNotAllowed):
            verify_compact(forge({"alg": alg, "kid": ec_key.kid}, b"{}"), keys)
    with pytest.raises(AlgorithmNotAllowed):
        verify_compact(sign_compact(b"{}", LocalSigner(ec_key)), keys, algorithms=["RS256"])


def test_rsa_key_without_alg_and_allow_list() -> None:
    rsa_key = key("RS256")
    bare = JWK.from_dict(
        {k: v for k, v in rsa_key.to_private_dict().items() if k != "alg"}, allow_private=True
    )
    token = sign_compact(b"{}", LocalSigner(bare, "PS256"))
    keys = KeySet.of(bare)
    with pytest.raises(AlgorithmNotAllowed):
        verify_compact(token, keys)  # default binding is RS256
    verify_compact(token, keys, algorithms=["PS256"])
    with pytest.raises(AlgorithmNotAllowed):
        verify_compact(token, keys, algorithms=["RS256"])
    with pytest.raises(AlgorithmNotAllowed):
        LocalSigner(rsa_key, "PS256")  # bound to RS256


def test_no_kid_needs_exactly_one_fitting_key() -> None:
    a, b = key("ES256"), JWK.generate("ES256")
    token = sign_compact(b"{}", LocalSigner(a))
    parts = token.split(".")[1:]
    no_kid = forge({"alg": "ES256"}, b"{}").split(".")[0]
    # re-sign without kid: build the signing input by hand
    signing_input = f"{no_kid}.{parts[0]}".encode()
    sig = LocalSigner(a).sign(signing_input)
    bare = f"{no_kid}.{parts[0]}.{b64(sig)}"
    verify_compact(bare, KeySet.of(a, key("EdDSA")))
    with pytest.raises(KeyNotFound):
        verify_compact(bare, KeySet.of(a, b))
    with pytest.raises(KeyNotFound):
        verify_compact(bare, KeySet.of(key("EdDSA")))


def test_unknown_kid_and_bad_signature() -> None:
    a = key("ES256")
    token = sign_compact(b"{}", LocalSigner(a))
    with pytest.raises(KeyNotFound):
        verify_compact(token, KeySet.of(key("EdDSA")))
    other = JWK.from_key(JWK.generate("ES256").private_key(), kid=a.kid, alg="ES256")
    with pytest.raises(InvalidSignature):
        verify_compact(token, KeySet.of(other))


def test_crit_b64_and_ignored_key_headers() -> None:
    a = key("ES256")
    signer = LocalSigner(a)
    with pytest.raises(UnsupportedCritical):
        verify_compact(
            sign_compact(b"{}", signer, header={"crit": ["exp"], "exp": 1}), KeySet.of(a)
        )
    with pytest.raises(UnsupportedCritical):
        verify_compact(
            sign_compact(b"{}", signer, header={"b64": False, "crit": ["b64"]}), KeySet.of(a)
        )
    with pytest.raises(UnsupportedCritical):
        verify_compact(sign_compact(b"{}", signer, header={"b64": False}), KeySet.of(a))
    for crit in ([], "x", [1], ["alg"], ["missing"]):
        with pytest.raises(MalformedToken):
            verify_compact(sign_compact(b"{}", signer, header={"crit": crit}), KeySet.of(a))
    # An embedded jwk naming another key is ignored: the set decides.
    evil = JWK.generate("ES256")
    token = sign_compact(
        b"{}",
        LocalSigner(JWK.from_key(evil.private_key(), kid=a.kid, alg="ES256")),
        header={"jwk": evil.to_dict(), "jku": "https://evil.example/jwks"},
    )
    with pytest.raises(InvalidSignature):
        verify_compact(token, KeySet.of(a))


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
            _verifier().verify(encode_jwt({"exp": T0 + 9}, signer, header=extra))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        "....",
        "eyJhbGciOiJFUzI1NiJ9.e30.",
        "eyJhbGciOiJFUzI1NiJ9=.e30.AA",
        b"\xff\xfe.e30.AA",
        "é.e30.AA",
        forge({"alg": 1}, b"{}"),
        forge({"alg": "ES256", "kid": 1}, b"{}"),
        b64(b"[]") + ".e30.AA",
        b64(b'{"alg":"ES256","alg":"ES256"}') + ".e30.AA",
        b64(b"\xff") + ".e30.AA",
    ],
)
def test_malformed(token: str | bytes) -> None:
    a = key("ES256")
    with pytest.raises(
        (MalformedToken, AlgorithmNotAllowed, KeyNotFound, InvalidSignature)
    ) as info:
        verify_compact(token, KeySet.of(a))
    if token not in ("eyJhbGciOiJFUzI1NiJ9.e30.",):
        assert isinstance(info.value, MalformedToken)


def test_non_string_tokens() -> None:
    for token in (None, 1, ["a"], bytearray(b"a.b.c"), memoryview(b"a.b.c")):
        with pytest.raises(MalformedToken):
            _verifier().verify(token)  # type: ignore[arg-type]


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


def test_size_caps() -> None:
    a = key("ES256")
    big = sign_compact(b'{"x":"' + b"a" * 20_000 + b'"}', LocalSigner(a))
    with pytest.raises(MalformedToken):
        parse_compact(big)
    parse_compact(big, max_size=64 * 1024)
    with pytest.raises(MalformedToken):
        parse_compact(sign_compact(b"{}", LocalSigner(a), header={"x": "y" * 5000}))
    with pytest.raises(MalformedToken):
        parse_compact(123)  # type: ignore[arg-type]


def test_two_megabyte_tokens() -> None:
    big_str = "eyJhbGciOiJFUzI1NiJ9." + "A" * (2 * 1024 * 1024) + ".AA"
    for token in (big_str, big_str.encode(), "." * 2_000_000, "a" * 2_000_000):
        with pytest.raises(MalformedToken):
            _verifier().verify(token)
    # With the cap lifted on purpose, a 2 MB signed payload still only costs a verification.
    signer = LocalSigner(key("ES256"))
    token = sign_compact(
        b'{"exp":' + str(T0 + 9).encode() + b',"x":"' + b"y" * 2_000_000 + b'"}', signer
    )
    assert len(token) > 2_000_000
    assert _verifier(max_size=4 * 1024 * 1024).verify(token).claims["exp"] == T0 + 9
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BA")
    with pytest.raises(JoseError):
        _verifier(max_size=4 * 1024 * 1024).verify(forged)


def test_header_cache_under_threads_never_mixes_headers() -> None:
    # jws._parsed_headers is a module-level dict cleared when full: flood it from threads with
    # more distinct headers than it holds and check every parse returns its own header.
    signer = LocalSigner(key("ES256"))
    tokens = [encode_jwt({"i": i}, signer, header={"typ": "JWT", "n": str(i)}) for i in range(600)]
    errors: list[str] = []

    def work(offset: int) -> None:
        for _ in range(3):
            for i in range(offset, offset + 600, 7):
                j = i % 600
                header = parse_compact(tokens[j]).header
                if header.get("n") != str(j):
                    errors.append(f"{j}: {header}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_mutating_a_parsed_header_does_not_change_the_next_parse() -> None:
    # Parsed headers are cached per segment and handed out as shallow copies: a nested list or
    # object was shared, so one caller's change showed up in every later parse of that header.
    signer = LocalSigner(key("ES256"))
    token = encode_jwt({"a": 1}, signer, header={"x5c": ["AAAA"], "jwk": {"kty": "EC"}})
    header = parse_compact(token).header
    header["x5c"].append("EVIL")  # type: ignore[attr-defined]
    header["jwk"]["kty"] = "oct"  # type: ignore[index]
    assert parse_compact(token).header["x5c"] == ["AAAA"]
    assert parse_compact(token).header["jwk"] == {"kty": "EC"}
