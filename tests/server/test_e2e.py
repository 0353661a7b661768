"""End to end over real HTTP: standard client libraries get tokens; independent verifiers
(PyJWT's PyJWKClient, node's jose) check them through the published JWKS."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import jwt
import pytest
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import ECKey

from tests.helpers.server import METRICS_TOKEN, LiveServer

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
API = "https://api.example.test"


def _verify_pyjwt(live: LiveServer, token: str, audience: str = API) -> dict[str, object]:
    jwks_client = jwt.PyJWKClient(live.settings.jwks_uri)
    key = jwks_client.get_signing_key_from_jwt(token)
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["kid"] == key.key_id
    claims: dict[str, object] = jwt.decode(
        token,
        key.key,
        algorithms=["ES256"],
        audience=audience,
        issuer=live.url,
        options={"require": ["exp", "iat", "jti", "sub", "client_id"]},
    )
    return claims


def _check_claims(claims: dict[str, object], client_id: str, scope: str | None) -> None:
    assert claims["sub"] == client_id
    assert claims["client_id"] == client_id
    assert claims["aud"] == API
    assert claims["exp"] == claims["iat"] + 600  # type: ignore[operator]
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 16
    assert claims.get("scope") == scope


def test_client_secret_basic_with_authlib(live: LiveServer) -> None:
    client_id, secret = live.create_client(scope="items:read items:write", audiences=[API])
    with OAuth2Session(
        client_id, secret, token_endpoint_auth_method="client_secret_basic", scope="items:read"
    ) as oauth:
        token = oauth.fetch_token(live.settings.token_endpoint, grant_type="client_credentials")
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 600
    assert token["scope"] == "items:read"
    _check_claims(_verify_pyjwt(live, token["access_token"]), client_id, "items:read")


def test_client_secret_post_with_authlib(live: LiveServer) -> None:
    client_id, secret = live.create_client(
        scope="a b", audiences=[API], auth_method="client_secret_post"
    )
    with OAuth2Session(client_id, secret, token_endpoint_auth_method="client_secret_post") as oauth:
        token = oauth.fetch_token(live.settings.token_endpoint, grant_type="client_credentials")
    # No scope requested: the client's whole allowed scope (RFC 6749 §3.3 default).
    assert token["scope"] == "a b"
    _check_claims(_verify_pyjwt(live, token["access_token"]), client_id, "a b")


def test_private_key_jwt_with_authlib(live: LiveServer) -> None:
    client_id, key = live.create_jwt_client(scope="items:read", audiences=[API])
    pem = key.private_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with OAuth2Session(
        client_id,
        ECKey.import_key(pem),
        # Authlib's defaults as a user gets them: among them a one-hour assertion lifetime.
        token_endpoint_auth_method=PrivateKeyJWT(
            live.url, alg="ES256"
        ),  # aud: the issuer identifier
    ) as oauth:
        token = oauth.fetch_token(live.settings.token_endpoint, grant_type="client_credentials")
    _check_claims(_verify_pyjwt(live, token["access_token"]), client_id, "items:read")


def test_private_key_jwt_jti_is_single_use_across_replicas(
    live: LiveServer, module_database_url: str
) -> None:
    from tests.helpers.server import start_server

    client_id, key = live.create_jwt_client(scope="items:read", audiences=[API])
    assertion = live.assertion(client_id, key, aud=live.url)
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    replica = start_server(module_database_url, issuer=live.url)
    try:
        first = httpx.post(live.settings.token_endpoint, data=form)
        assert first.status_code == 200, first.text
        # The same assertion at another replica sharing the database.
        again = httpx.post(f"http://127.0.0.1:{replica.settings.port}/token", data=form)
        assert again.status_code == 401
        assert again.json()["error"] == "invalid_client"
    finally:
        replica.stop()


@pytest.mark.node
def test_node_jose_verifies_tokens(live: LiveServer, tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "node is required"
    client_id, secret = live.create_client(scope="items:read", audiences=[API])
    response = httpx.post(
        live.settings.token_endpoint,
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret or ""),
    )
    token = response.json()["access_token"]
    result = subprocess.run(
        [node, str(NODE_DIR / "server_verify.mjs"), live.settings.jwks_uri, live.url, API, token],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["header"]["typ"] == "at+jwt"
    assert out["payload"]["client_id"] == client_id
    assert out["payload"]["scope"] == "items:read"


def test_resource_parameter_selects_audience(live: LiveServer, http: httpx.Client) -> None:
    other = "https://other.example.test"
    client_id, secret = live.create_client(scope="s", audiences=[API, other])
    auth = (client_id, secret or "")
    default = http.post("/token", data={"grant_type": "client_credentials"}, auth=auth)
    assert _verify_pyjwt(live, default.json()["access_token"])["aud"] == API
    chosen = http.post(
        "/token", data={"grant_type": "client_credentials", "resource": other}, auth=auth
    )
    assert chosen.status_code == 200
    assert _verify_pyjwt(live, chosen.json()["access_token"], other)["aud"] == other
    both = http.post(
        "/token",
        content=f"grant_type=client_credentials&resource={API}&resource={other}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=auth,
    )
    assert both.status_code == 200
    assert _verify_pyjwt(live, both.json()["access_token"], other)["aud"] == [API, other]


def test_token_response_headers(live: LiveServer, http: httpx.Client) -> None:
    client_id, secret = live.create_client(scope="s", audiences=[API])
    response = http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret or "")
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]


def test_discovery_documents(live: LiveServer, http: httpx.Client) -> None:
    doc = http.get("/.well-known/oauth-authorization-server").json()
    assert doc["issuer"] == live.url
    assert doc["token_endpoint"] == live.url + "/token"
    assert doc["jwks_uri"] == live.url + "/jwks.json"
    assert doc["grant_types_supported"] == [
        "authorization_code", "client_credentials", "refresh_token",
    ]  # fmt: skip
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",  # public clients, for the user grants only
    }
    assert http.get(doc["jwks_uri"]).status_code == 200
    # The OpenID discovery path serves the same metadata (gateways find jwks_uri there).
    assert http.get("/.well-known/openid-configuration").json() == doc


def test_jwks_etag_and_cache_control(live: LiveServer, http: httpx.Client) -> None:
    first = http.get("/jwks.json")
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert not etag.startswith("W/")
    assert first.headers["cache-control"] == "public, max-age=300"
    keys = first.json()["keys"]
    assert {k["alg"] for k in keys} >= {"ES256", "RS256"}
    assert all("d" not in k for k in keys)
    again = http.get("/jwks.json", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    other = http.get("/jwks.json", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200


def test_introspection_and_revocation(live: LiveServer, http: httpx.Client) -> None:
    client_id, secret = live.create_client(scope="items:read", audiences=[API])
    auth = (client_id, secret or "")
    token = http.post("/token", data={"grant_type": "client_credentials"}, auth=auth).json()[
        "access_token"
    ]
    info = http.post("/introspect", data={"token": token}, auth=auth)
    assert info.status_code == 200
    assert info.headers["cache-control"] == "no-store"
    body = info.json()
    assert body["active"] is True
    assert body["client_id"] == client_id
    assert body["scope"] == "items:read"
    assert body["aud"] == API
    revoked = http.post(
        "/revoke", data={"token": token, "token_type_hint": "access_token"}, auth=auth
    )
    assert revoked.status_code == 200
    assert http.post("/introspect", data={"token": token}, auth=auth).json() == {"active": False}
    # Revoking twice, or revoking garbage, is not an error (RFC 7009 §2.2).
    assert http.post("/revoke", data={"token": token}, auth=auth).status_code == 200
    assert http.post("/revoke", data={"token": "not-a-token"}, auth=auth).status_code == 200
    assert http.post("/introspect", data={"token": "garbage"}, auth=auth).json() == {
        "active": False
    }


def test_public_client_may_revoke_its_own_tokens_only(live: LiveServer, http: httpx.Client) -> None:
    public_id, _ = live.create_client(public=True)
    assert http.post("/revoke", data={"token": "x", "client_id": public_id}).status_code == 200
    # ...but may not introspect (authenticated confidential callers only, RFC 7662 §2.1).
    response = http.post("/introspect", data={"token": "x", "client_id": public_id})
    assert response.status_code == 401


def test_health_ready_metrics_openapi(live: LiveServer, http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").json() == {"status": "ready"}
    client_id, secret = live.create_client(scope="s", audiences=[API])
    http.post("/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret or ""))
    http.post("/token", data={"grant_type": "client_credentials"}, auth=(client_id, "wrong"))
    metrics = http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    assert (
        f'sealring_tokens_issued_total{{client_id="{client_id}",grant_type="client_credentials"}} 1.0'
        in metrics
    )
    assert 'sealring_oauth_errors_total{endpoint="token",error="invalid_client"}' in metrics
    assert 'sealring_request_duration_seconds_bucket{endpoint="token"' in metrics
    assert 'sealring_signing_keys{alg="ES256",state="active"} 1.0' in metrics
    assert secret is not None
    assert secret not in metrics
    doc = http.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"/token", "/introspect", "/revoke", "/jwks.json"} <= set(doc["paths"])
