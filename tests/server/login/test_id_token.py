"""ID tokens (OIDC Core §2, §3.1.3.6) and scope claims (§5.4)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from authlib.oidc.core.util import create_half_hash
from hypothesis import given
from hypothesis import strategies as st

from sealring.jose.jwk import JWK
from sealring.jose.jwks import KeySet
from sealring.jose.jws import LocalSigner
from sealring.jose.jwt import JWTVerifier
from sealring.server.tokens.id_token import (
    Authentication,
    IDToken,
    scope_claims,
    token_hash,
)

ISSUER = "https://login.example.com"
NOW = 1_800_000_000
USER = {
    "name": "Alice Example",
    "given_name": "Alice",
    "email": "alice@example.com",
    "email_verified": True,
    "phone_number": "+1 555 0100",
    "favourite_colour": "teal",
    "sub": "attacker-chosen",
}
LOGIN = Authentication("user-123", auth_time=NOW - 30, amr=("pwd",), session_id="sid-1")


def claims(**kw: object) -> dict[str, object]:
    args: dict[str, object] = {
        "issuer": ISSUER,
        "client_id": "client-1",
        "authentication": LOGIN,
        "now": NOW,
        "lifetime": 300,
    }
    args.update(kw)
    return IDToken(**args).claims("ES256")  # type: ignore[arg-type]


# OIDC Core 1.0 Appendix A examples (signed with RS256): token/code and their hashes.
def test_at_hash_spec_example() -> None:
    assert (
        token_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256")
        == "77QmUPtjPfzWtF2AnpK9RQ"
    )


def test_c_hash_spec_example() -> None:
    code = "Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk"
    assert token_hash(code, "RS256") == "LDktKdoQak3Pk0cnXxCltA"


@pytest.mark.parametrize(
    ("alg", "hash_name"),
    [
        ("RS256", "sha256"),
        ("PS256", "sha256"),
        ("ES256", "sha256"),
        ("RS384", "sha384"),
        ("ES384", "sha384"),
        ("PS512", "sha512"),
        ("ES512", "sha512"),
        ("EdDSA", "sha512"),
    ],
)
def test_hash_follows_the_signing_algorithm(alg: str, hash_name: str) -> None:
    value = "an-access-token"
    digest = hashlib.new(hash_name, value.encode()).digest()
    expected = base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
    assert token_hash(value, alg) == expected


@pytest.mark.parametrize("alg", ["RS256", "ES384", "PS512", "EdDSA"])
def test_hash_agrees_with_authlib(alg: str) -> None:
    value = "Zm9vYmFy-token"
    assert token_hash(value, alg) == create_half_hash(value, alg).decode().rstrip("=")


@pytest.mark.parametrize("alg", ["RS384", "ES384", "PS384"])
def test_a_384_bit_hash_keeps_every_character_of_its_half(alg: str) -> None:
    # Half of SHA-384 is 24 bytes: 32 base64url characters and no padding, so nothing may be
    # cut from the end. Take a value whose half-hash ends in a letter (here "X") to show it.
    for n in range(1000):
        value = f"access-token-{n}"
        half = hashlib.sha384(value.encode()).digest()[:24]
        expected = base64.urlsafe_b64encode(half).decode()
        if expected.endswith("X"):
            break
    assert expected.endswith("X")
    assert len(expected) == 32
    assert token_hash(value, alg) == expected


@pytest.mark.parametrize("alg", ["none", "HS256", "XX"])
def test_hash_for_an_unknown_algorithm_is_refused(alg: str) -> None:
    with pytest.raises(ValueError, match="no ID token hash"):
        token_hash("x", alg)


def test_required_claims_are_present() -> None:
    c = claims()
    assert c["iss"] == ISSUER
    assert c["sub"] == "user-123"
    assert c["aud"] == "client-1"
    assert c["iat"] == NOW
    assert c["exp"] == NOW + 300
    assert c["auth_time"] == NOW - 30
    assert c["sid"] == "sid-1"
    assert c["amr"] == ["pwd"]


def test_single_audience_needs_no_azp() -> None:
    assert "azp" not in claims()


def test_nonce_is_copied_only_when_requested() -> None:
    assert claims(nonce="n-0S6_WzA2Mj")["nonce"] == "n-0S6_WzA2Mj"
    assert "nonce" not in claims()


def test_at_hash_and_c_hash_only_when_given() -> None:
    c = claims(access_token="at", code="cd")
    assert c["at_hash"] == token_hash("at", "ES256")
    assert c["c_hash"] == token_hash("cd", "ES256")
    plain = claims()
    assert "at_hash" not in plain
    assert "c_hash" not in plain


def test_acr_only_when_known() -> None:
    assert "acr" not in claims()
    login = Authentication("u", auth_time=NOW, acr="urn:mace:incommon:iap:silver")
    assert claims(authentication=login)["acr"] == "urn:mace:incommon:iap:silver"


def test_profile_and_email_claims_stay_out_unless_requested() -> None:
    c = claims(user_claims=USER)
    assert not set(c) & (set(USER) - {"sub"})
    assert c["sub"] == "user-123"


def test_requested_user_claims_go_in() -> None:
    c = claims(user_claims=USER, claims_in_id_token=("email", "name", "missing"))
    assert c["email"] == "alice@example.com"
    assert c["name"] == "Alice Example"
    assert "missing" not in c


def test_user_record_cannot_override_protocol_claims() -> None:
    c = claims(user_claims=USER, claims_in_id_token=("sub", "iss"))
    assert c["sub"] == "user-123"
    assert c["iss"] == ISSUER


def test_auth_time_in_the_future_is_refused() -> None:
    with pytest.raises(ValueError, match="auth_time"):
        claims(authentication=Authentication("u", auth_time=NOW + 1))


def test_secrets_stay_out_of_the_repr() -> None:
    content = IDToken(ISSUER, "c", LOGIN, NOW, 300, access_token="secret-at", code="secret-code")
    assert "secret-at" not in repr(content)
    assert "secret-code" not in repr(content)


def test_non_positive_lifetime_is_refused() -> None:
    with pytest.raises(ValueError, match="lifetime"):
        claims(lifetime=0)


def test_a_lifetime_of_one_second_is_the_shortest_accepted() -> None:
    assert claims(lifetime=1)["exp"] == NOW + 1


def test_a_subject_of_255_characters_is_accepted() -> None:
    assert claims(authentication=Authentication("x" * 255, auth_time=NOW))["sub"] == "x" * 255


@pytest.mark.parametrize("sub", ["", "x" * 256, "us\u00e9r"])
def test_subject_must_be_1_to_255_ascii_characters(sub: str) -> None:
    with pytest.raises(ValueError, match="sub"):
        Authentication(sub, auth_time=NOW)


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "ES384", "EdDSA"])
def test_issued_token_verifies_and_hashes_match_its_alg(alg: str) -> None:
    key = JWK.generate(alg)
    signer = LocalSigner(key, alg)
    token = IDToken(
        issuer=ISSUER,
        client_id="client-1",
        authentication=LOGIN,
        now=NOW,
        lifetime=300,
        nonce="abc",
        access_token="the-access-token",
    ).sign(signer)
    verified = JWTVerifier(
        KeySet((key.public(),)),
        algorithms=[alg],
        issuer=ISSUER,
        audience="client-1",
        required=("exp", "iat", "sub", "auth_time"),
        clock=lambda: NOW + 1,
    ).verify(token)
    assert verified.header["alg"] == alg
    assert verified.header["kid"] == key.kid
    assert verified.claims["nonce"] == "abc"
    assert verified.claims["at_hash"] == token_hash("the-access-token", alg)


def test_an_id_token_is_typed_jwt_never_as_an_access_token() -> None:
    # typ "JWT", never RFC 9068's "at+jwt": a resource server that requires the access token
    # type refuses an ID token presented as a bearer token.
    key = JWK.generate("ES256")
    token = IDToken(ISSUER, "client-1", LOGIN, NOW, 300).sign(LocalSigner(key, "ES256"))
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["typ"] == "JWT"


def test_scope_claims_release_only_granted_scopes() -> None:
    assert scope_claims(USER, ["openid", "email"]) == {
        "email": "alice@example.com",
        "email_verified": True,
    }
    assert scope_claims(USER, ["profile"]) == {"name": "Alice Example", "given_name": "Alice"}
    assert scope_claims(USER, ["openid"]) == {}


def test_scope_claims_never_include_unknown_or_protocol_claims() -> None:
    released = scope_claims(USER, ["openid", "profile", "email", "phone", "address"])
    assert "favourite_colour" not in released
    assert "sub" not in released


def test_scope_claims_leave_out_null_values() -> None:
    assert scope_claims({"email": None, "email_verified": False}, ["email"]) == {
        "email_verified": False
    }


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=200))
def test_at_hash_is_half_of_sha256_for_es256(value: str) -> None:
    h = token_hash(value, "ES256")
    assert len(h) == 22
    padded = base64.urlsafe_b64decode(h + "==")
    assert padded == hashlib.sha256(value.encode()).digest()[:16]
