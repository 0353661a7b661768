"""Findings of the adversarial review, each pinned: these inputs used to be accepted or crash."""

from __future__ import annotations

import json
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from sealring.jose import (
    JWK,
    ExpiredToken,
    ImmatureToken,
    InvalidClaim,
    InvalidKey,
    JWTVerifier,
    KeySet,
    LocalSigner,
    MalformedToken,
    _json,
    encode_jwt,
    parse_compact,
    sign_compact,
    validate_claims,
)
from sealring.jose._b64 import b64url_decode, b64url_encode

from .helpers import NOW, b64, key


@pytest.mark.parametrize(
    "claim",
    ["exp", "nbf", "iat"],
)
@pytest.mark.parametrize(
    "value",
    [10**400, -(10**400), 2**53, -(2**53), 1e308, -1e308],
    ids=["1e400", "-1e400", "2^53", "-2^53", "1e308", "-1e308"],
)
def test_numeric_dates_beyond_2_53_are_refused(claim: str, value: float) -> None:
    # 10**400 used to pass as an "exp" that never comes, then crash float() in the resource layer.
    claims = {"exp": NOW + 60, claim: value}
    with pytest.raises(InvalidClaim) as caught:
        validate_claims(claims, now=NOW)
    assert caught.value.claim == claim
    token = sign_compact(json.dumps(claims).encode(), LocalSigner(key("ES256")))
    with pytest.raises(InvalidClaim):
        JWTVerifier(KeySet.of(key("ES256")), clock=lambda: NOW).verify(token)


def test_numeric_dates_within_range_still_work() -> None:
    validate_claims({"exp": 2**53 - 1, "iat": NOW - 0.5, "nbf": 0}, now=NOW)


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
        JWTVerifier(KeySet.of(key("ES256")), required=(), clock=lambda: NOW).verify(token)


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


@pytest.mark.parametrize("leeway", [float("nan"), float("inf"), -1.0])
def test_non_finite_leeway_is_a_configuration_error(leeway: float) -> None:
    # leeway=nan made "now - leeway >= exp" false, so expired tokens verified (sealring verify
    # --leeway nan exited 0 on a token expired decades ago).
    with pytest.raises(ValueError):
        JWTVerifier(KeySet.of(key("ES256")), leeway=leeway)
    with pytest.raises(ValueError):
        validate_claims({"exp": 1}, now=NOW, leeway=leeway)


def test_a_nan_clock_refuses_every_token() -> None:
    signer = LocalSigner(key("ES256"))
    verifier = JWTVerifier(KeySet.of(key("ES256")), clock=lambda: float("nan"))
    with pytest.raises(ExpiredToken):
        verifier.verify(encode_jwt({"exp": NOW + 60}, signer))
    with pytest.raises(ImmatureToken):
        validate_claims({"nbf": NOW}, now=float("nan"), required=())
    with pytest.raises(ImmatureToken):
        validate_claims({"iat": NOW}, now=float("nan"), required=())


@pytest.mark.parametrize(
    ("now", "leeway", "expired"),
    [(NOW, 0, True), (NOW - 0.001, 0, False), (NOW + 30, 30, True), (NOW + 29.999, 30, False)],
)
def test_exp_boundary(now: float, leeway: float, expired: bool) -> None:
    # RFC 7519 §4.1.4: the current time MUST be before exp; at exp (plus leeway) it is not.
    if expired:
        with pytest.raises(ExpiredToken):
            validate_claims({"exp": NOW}, now=now, leeway=leeway)
    else:
        validate_claims({"exp": NOW}, now=now, leeway=leeway)
