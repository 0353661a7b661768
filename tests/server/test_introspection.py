"""Token introspection (RFC 7662) over HTTP: what an active and an inactive token give."""

from __future__ import annotations

import time

import httpx

from sealring.jose.jws import parse_compact
from sealring.jose.jwt import decode_payload
from tests.helpers.server import (
    OTHER,
    LiveServer,
    access_token,
    no_store,
    own_token,
)


def test_introspection_inactive_is_only_active_false(
    live: LiveServer, http: httpx.Client, client: tuple[str, str]
) -> None:
    """§2.2: for a token that is not active, only ``{"active": false}``."""
    now = int(time.time())
    revoked = access_token(http, client)
    assert http.post("/revoke", data={"token": revoked}, auth=client).status_code == 200
    inactive = [
        "garbage",
        "a.b.c",
        revoked,
        own_token(live, exp=now - 120, iat=now - 200),  # expired
        own_token(live, iss="https://elsewhere.example"),  # another issuer
        own_token(live, typ="JWT"),  # not an RFC 9068 access token
        own_token(live, jti=None),  # missing a required claim
        access_token(http, client)[:-4] + "AAAA",  # signature broken
    ]
    for token in inactive:
        response = http.post(
            "/introspect", data={"token": token, "token_type_hint": "access_token"}, auth=client
        )
        assert response.status_code == 200
        assert response.text == '{"active":false}', token
        no_store(response)


def test_introspection_active_claims(http: httpx.Client, client: tuple[str, str]) -> None:
    token = access_token(http, client, scope="read", resource=OTHER)
    body = http.post("/introspect", data={"token": token}, auth=client).json()
    claims = decode_payload(parse_compact(token))
    assert body["active"] is True
    assert body["token_type"] == "Bearer"
    for name in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti"):
        assert body[name] == claims[name]
    assert body["scope"] == "read"
    assert body["aud"] == OTHER
