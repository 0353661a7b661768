"""Authorization server metadata (RFC 8414, OIDC Discovery paths) over HTTP."""

from __future__ import annotations

import httpx

from sealring.jose.jws import parse_compact
from sealring.jose.jwt import decode_payload
from tests.helpers.server import (
    API,
    LiveServer,
)


def test_metadata_members_are_all_supported(live: LiveServer, http: httpx.Client) -> None:
    response = http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    doc = response.json()
    assert doc["issuer"] == live.url
    assert not doc["issuer"].endswith("/")
    for member in ("issuer", "token_endpoint", "jwks_uri", "response_types_supported"):
        assert member in doc
    assert doc["grant_types_supported"] == [
        "authorization_code", "client_credentials", "refresh_token",
    ]  # fmt: skip
    for name in ("token_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint",
                 "authorization_endpoint", "userinfo_endpoint", "end_session_endpoint"):  # fmt: skip
        assert doc[name].startswith(live.url + "/")
    assert "none" not in doc["token_endpoint_auth_signing_alg_values_supported"]
    assert not any(
        a.startswith("HS") for a in doc["token_endpoint_auth_signing_alg_values_supported"]
    )
    # Every advertised endpoint answers; every advertised method is usable (see
    # test_third_party.py for the three methods with real clients).
    assert http.get(doc["jwks_uri"]).status_code == 200
    for name in ("token_endpoint", "introspection_endpoint", "revocation_endpoint"):
        assert http.post(doc[name], data={}).status_code in (400, 401)
    # The same document at the OpenID Connect discovery path, claiming only what works.
    assert http.get("/.well-known/openid-configuration").json() == doc
    assert doc["response_types_supported"] == ["code"]
    assert doc["response_modes_supported"] == ["query"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["subject_types_supported"] == ["public"]
    assert doc["id_token_signing_alg_values_supported"] == ["ES256", "RS256"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["request_parameter_supported"] is False
    assert doc["request_uri_parameter_supported"] is False
    assert "none" in doc["token_endpoint_auth_methods_supported"]
    assert {"openid", "offline_access"} <= set(doc["scopes_supported"])
    assert http.get(doc["authorization_endpoint"]).status_code == 400  # an error page
    assert http.get(doc["userinfo_endpoint"]).status_code == 401
    assert http.get(doc["end_session_endpoint"]).status_code == 200


def test_issuer_with_path(tenant: LiveServer) -> None:
    """RFC 8414 §3.1: /.well-known/oauth-authorization-server/tenant; endpoints under /tenant."""
    assert tenant.url.endswith("/tenant")
    root = tenant.url.removesuffix("/tenant")
    with httpx.Client(timeout=10) as http:
        doc = http.get(root + "/.well-known/oauth-authorization-server/tenant").json()
        assert doc["issuer"] == tenant.url
        assert doc["token_endpoint"] == tenant.url + "/token"
        assert http.get(doc["jwks_uri"]).status_code == 200
        client_id, secret = tenant.create_client(scope="read", audiences=[API])
        response = http.post(
            doc["token_endpoint"],
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret or ""),
        )
        assert response.status_code == 200, response.text
        assert decode_payload(parse_compact(response.json()["access_token"]))["iss"] == tenant.url
        # OpenID Connect Discovery §4 appends the well-known path to the issuer; the RFC 8414
        # form of the OpenID name is tried by some clients too.
        for openid in ("/tenant/.well-known/openid-configuration",
                       "/.well-known/openid-configuration/tenant"):  # fmt: skip
            assert http.get(root + openid).json() == doc
        assert http.get(root + "/.well-known/openid-configuration/other").status_code == 404
