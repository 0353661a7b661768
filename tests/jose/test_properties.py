"""Hypothesis: round trips hold, and any single-byte change to a token fails verification."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealring.jose import (
    JWK,
    JoseError,
    JWTVerifier,
    KeySet,
    LocalSigner,
    encode_jwt,
    parse_compact,
    sign_compact,
    verify_compact,
)
from sealring.jose._b64 import b64url_encode
from sealring.jose.algorithms import _der_prefixes, _der_signature
from tests.helpers.clock import T0
from tests.helpers.jose import key

ALGS = ["RS256", "PS256", "ES256", "ES512", "EdDSA"]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from([[], {}])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        # min_size=1: every extension draws from inner (Hypothesis warns when one never does)
        st.lists(inner, min_size=1, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, min_size=1, max_size=4)
    ),
    max_leaves=12,
)
claims_sets = st.dictionaries(
    st.text(max_size=12).filter(
        lambda k: k not in ("exp", "nbf", "iat", "iss", "sub", "jti", "aud")
    ),
    json_values,
    max_size=8,
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("alg", ALGS)
@SETTINGS
@given(claims=claims_sets, exp_offset=st.integers(min_value=1, max_value=10**6))
def test_round_trip(alg: str, claims: dict[str, Any], exp_offset: int) -> None:
    jwk = key(alg)
    body = {**claims, "exp": T0 + exp_offset}
    token = encode_jwt(body, LocalSigner(jwk), typ="at+jwt")
    result = JWTVerifier(KeySet.of(jwk), typ="at+jwt", clock=lambda: T0).verify(token)
    assert result.claims == body
    assert result.alg == alg


@pytest.mark.parametrize("alg", ALGS)
@SETTINGS
@given(payload=st.binary(max_size=300))
def test_any_payload_round_trips(alg: str, payload: bytes) -> None:
    jwk = key(alg)
    token = sign_compact(payload, LocalSigner(jwk))
    assert verify_compact(token, KeySet.of(jwk)).payload == payload


@pytest.mark.parametrize("alg", ALGS)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_single_byte_change_fails(alg: str, data: st.DataObject) -> None:
    jwk = key(alg)
    token = encode_jwt({"sub": "x", "exp": T0 + 60}, LocalSigner(jwk)).encode()
    index = data.draw(st.integers(min_value=0, max_value=len(token) - 1), label="index")
    byte = data.draw(
        st.integers(min_value=0, max_value=255).filter(lambda b: b != token[index]), label="byte"
    )
    changed = token[:index] + bytes([byte]) + token[index + 1 :]
    verifier = JWTVerifier(KeySet.of(jwk), clock=lambda: T0)
    with pytest.raises(JoseError):
        verifier.verify(changed)


@settings(max_examples=300, deadline=None)
@given(token=st.one_of(st.binary(max_size=400), st.text(max_size=400)))
def test_parse_only_raises_jose_errors(token: bytes | str) -> None:
    with contextlib.suppress(JoseError):
        parse_compact(token)


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.binary(max_size=60), min_size=3, max_size=3),
)
def test_verify_of_encoded_garbage(parts: list[bytes]) -> None:
    token = ".".join(b64url_encode(p) for p in parts)
    with pytest.raises(JoseError):
        JWTVerifier(KeySet.of(key("ES256")), clock=lambda: T0).verify(token)


jwk_members = st.dictionaries(
    st.sampled_from(
        ["kty", "crv", "x", "y", "n", "e", "d", "alg", "use", "kid", "key_ops", "p", "k"]
    ),
    st.one_of(
        st.sampled_from(
            ["RSA", "EC", "OKP", "oct", "P-256", "Ed25519", "X25519", "ES256", "sig", "enc"]
        ),
        st.binary(max_size=70).map(b64url_encode),
        json_values,
    ),
    max_size=8,
)


@settings(max_examples=400, deadline=None)
@given(member=jwk_members)
def test_jwk_import_only_raises_jose_errors(member: dict[str, Any]) -> None:
    for allow_private in (False, True):
        with contextlib.suppress(JoseError):
            JWK.from_dict(member, allow_private=allow_private)
    with contextlib.suppress(JoseError):
        KeySet.from_dict({"keys": [member, key("ES256").public().to_dict()]})


@given(
    size=st.sampled_from([32, 48, 66]),
    r=st.binary(min_size=66, max_size=66),
    s=st.binary(min_size=66, max_size=66),
)
def test_ecdsa_der_fast_path_is_the_general_encoding(size: int, r: bytes, s: bytes) -> None:
    """The verifier's precomputed DER headers equal the general encoder's output."""
    r, s = r[:size], s[:size]
    if not (r[0] and s[0]):
        r, s = b"\x01" + r[1:], b"\xff" + s[1:]
    outer, r_tag, s_tag = _der_prefixes(size, r[0] >> 7, s[0] >> 7)
    der = outer + r_tag + r + s_tag + s
    assert der == _der_signature(r, s)
    assert decode_dss_signature(der) == (int.from_bytes(r, "big"), int.from_bytes(s, "big"))
