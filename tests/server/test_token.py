"""The token grant without I/O: plain values in, an RFC 9068 token or a protocol error out."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealring.jose.jwk import JWK
from sealring.jose.jwks import KeySet
from sealring.jose.jws import LocalSigner
from sealring.jose.jwt import JWTVerifier
from sealring.server.clients import new_client
from sealring.server.errors import InvalidScope, InvalidTarget, UnauthorizedClient
from sealring.server.grants.client_credentials import issue_client_credentials
from sealring.server.tokens.access_token import IssuedToken

NOW = 1_800_000_000.0
ISSUER = "https://auth.example.com"


@pytest.fixture(scope="module")
def key() -> JWK:
    return JWK.generate("ES256")


def _issue(key: JWK, scope: str | None = None, resources: tuple[str, ...] = (), **kw: object):  # type: ignore[no-untyped-def]
    kw.setdefault("scope", "a b c")
    kw.setdefault("audiences", ["https://api", "https://other"])
    client = new_client(name="svc", **kw)  # type: ignore[arg-type]
    issued = issue_client_credentials(
        client,
        scope=scope,
        resources=list(resources),
        issuer=ISSUER,
        lifetime=600,
        signer=LocalSigner(key),
        now=NOW,
    )
    return client, issued


def test_rfc9068_token(key: JWK) -> None:
    client, issued = _issue(key, scope="b a")
    verified = JWTVerifier(
        KeySet.of(key), issuer=ISSUER, audience="https://api", typ="at+jwt", clock=lambda: NOW
    ).verify(issued.access_token)
    assert verified.header == {"alg": "ES256", "kid": key.kid, "typ": "at+jwt"}
    claims = verified.claims
    assert claims["iss"] == ISSUER
    assert claims["sub"] == claims["client_id"] == client.client_id
    assert claims["aud"] == "https://api"
    assert (claims["iat"], claims["exp"]) == (int(NOW), int(NOW) + 600)
    assert claims["scope"] == "b a"
    body = json.loads(issued.response_body())
    assert body == {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": 600,
        "scope": "b a",
    }


def test_unique_jti(key: JWK) -> None:
    jtis = {
        JWTVerifier(KeySet.of(key), clock=lambda: NOW)
        .verify(_issue(key)[1].access_token)
        .claims["jti"]
        for _ in range(20)
    }
    assert len(jtis) == 20


def test_scope_and_audience_rules(key: JWK) -> None:
    assert _issue(key)[1].scope == "a b c"
    with pytest.raises(InvalidScope):
        _issue(key, scope="a z")
    with pytest.raises(InvalidTarget):
        _issue(key, resources=("https://nope",))
    with pytest.raises(InvalidTarget):
        _issue(key, audiences=[])
    assert _issue(key, scope="", audiences=["https://x"])[1].scope == ""
    with pytest.raises(UnauthorizedClient):
        _issue(key, grant_types=[])


@settings(max_examples=300, deadline=None)
@given(token=st.text(), expires_in=st.integers(min_value=0, max_value=10**9), scope=st.text())
def test_the_token_response_body_is_json_dumps_byte_for_byte(
    token: str, expires_in: int, scope: str
) -> None:
    """RFC 6749 §5.1's body, built from a template, is what ``json.dumps`` made of it (any
    string escaped the same way; ``scope`` omitted when empty)."""
    body: dict[str, object] = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": expires_in,
    }
    if scope:
        body["scope"] = scope
    expected = json.dumps(body, separators=(",", ":")).encode()
    assert IssuedToken(token, expires_in, scope).response_body() == expected
