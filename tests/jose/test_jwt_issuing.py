"""Issuing JWTs: ``encode_jwt`` puts ``typ`` in the header and never lets a header rebind the key.

RFC 8725 §3.11 asks for an explicit ``typ``; RFC 7515 §4.1.4 ``kid`` and §4.1.1 ``alg`` must name
the key and algorithm that really signed, so they come from the signer alone.
"""

from __future__ import annotations

import json

import pytest

from sealring.jose import JoseError, JWTVerifier, KeySet, LocalSigner, encode_jwt, parse_compact
from tests.helpers.clock import T0 as NOW
from tests.helpers.jose import key

CLAIMS = {"sub": "alice", "exp": NOW + 60}


def _header(token: str) -> dict[str, object]:
    return parse_compact(token).header


def _signer() -> LocalSigner:
    return LocalSigner(key("ES256"))


def test_typ_defaults_to_jwt() -> None:
    signer = _signer()
    assert _header(encode_jwt(CLAIMS, signer)) == {"alg": "ES256", "kid": signer.kid, "typ": "JWT"}


def test_typ_is_kept_when_a_custom_header_lacks_it() -> None:
    signer = _signer()
    header = _header(encode_jwt(CLAIMS, signer, typ="at+jwt", header={"cty": "example"}))
    assert header == {"alg": "ES256", "kid": signer.kid, "typ": "at+jwt", "cty": "example"}
    assert _header(encode_jwt(CLAIMS, signer, header={"cty": "example"}))["typ"] == "JWT"
    assert _header(encode_jwt(CLAIMS, signer, header={}))["typ"] == "JWT"


def test_a_custom_header_may_set_typ_itself() -> None:
    header = _header(encode_jwt(CLAIMS, _signer(), typ="at+jwt", header={"typ": "example+jwt"}))
    assert header["typ"] == "example+jwt"


def test_typ_none_leaves_it_out() -> None:
    assert "typ" not in _header(encode_jwt(CLAIMS, _signer(), typ=None))
    header = _header(encode_jwt(CLAIMS, _signer(), typ=None, header={"cty": "example"}))
    assert header["cty"] == "example"
    assert "typ" not in header


@pytest.mark.parametrize("override", [{"kid": "someone-else"}, {"alg": "RS256"}, {"alg": None}])
def test_a_custom_header_cannot_replace_the_signers_kid_or_alg(override: dict[str, object]) -> None:
    with pytest.raises(JoseError):
        encode_jwt(CLAIMS, _signer(), header=override)
    with pytest.raises(JoseError):
        encode_jwt(CLAIMS, _signer(), header={"cty": "example", **override})


def test_a_custom_header_repeating_the_signers_kid_and_alg_is_accepted_once() -> None:
    signer = _signer()
    token = encode_jwt(CLAIMS, signer, header={"kid": signer.kid, "alg": "ES256", "cty": "x"})
    header = _header(token)
    assert header == {"alg": "ES256", "kid": signer.kid, "typ": "JWT", "cty": "x"}
    verified = JWTVerifier(KeySet.of(key("ES256")), clock=lambda: NOW).verify(token)
    assert verified.claims == CLAIMS


def test_claims_that_are_not_json_are_refused() -> None:
    with pytest.raises(JoseError):
        encode_jwt({"exp": NOW, "when": object()}, _signer())
    with pytest.raises(JoseError):
        encode_jwt({"exp": float("nan")}, _signer())


def test_the_payload_is_the_claims_as_json() -> None:
    token = encode_jwt(CLAIMS, _signer())
    assert json.loads(parse_compact(token).payload) == CLAIMS


@pytest.mark.parametrize("member", ["kid", "alg"])
def test_a_custom_header_may_repeat_either_the_kid_or_the_alg_alone(member: str) -> None:
    signer = _signer()
    value = signer.kid if member == "kid" else signer.alg
    header = _header(encode_jwt(CLAIMS, signer, header={member: value}))
    assert header == {"alg": "ES256", "kid": signer.kid, "typ": "JWT"}
