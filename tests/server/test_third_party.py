"""Third-party OAuth clients against a live server, end to end over HTTP.

node's openid-client (v6: RFC 8414 discovery, ``clientCredentialsGrant``, introspection and
revocation) with each client authentication method and with an issuer that has a path;
requests-oauthlib's ``BackendApplicationClient``; Authlib's introspection and revocation.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session as AuthlibSession
from oauthlib.oauth2 import BackendApplicationClient
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from sealring.jose.jws import parse_compact
from sealring.jose.jwt import decode_payload
from tests.helpers.server import LiveServer

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
API = "https://api.example.test"
OTHER_API = "https://other.example.test"


def _openid_client(config: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None, "node is required"
    result = subprocess.run(
        [node, str(NODE_DIR / "server_openid_client.mjs"), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def _claims(token: str) -> dict[str, object]:
    return dict(decode_payload(parse_compact(token)))


@pytest.mark.node
@pytest.mark.parametrize("method", ["basic", "post", "private_key_jwt"])
def test_openid_client(live: LiveServer, method: str) -> None:
    config: dict[str, Any] = {"issuer": live.url, "method": method}
    if method == "private_key_jwt":
        client_id, key = live.create_jwt_client(scope="read write", audiences=[API, OTHER_API])
        config["jwk"] = key.to_private_dict()
    else:
        auth_method = {"basic": "client_secret_basic", "post": "client_secret_post"}[method]
        client_id, secret = live.create_client(
            scope="read write", audiences=[API, OTHER_API], auth_method=auth_method
        )
        config["secret"] = secret
    config["client_id"] = client_id
    config["params"] = {"scope": "read", "resource": OTHER_API}
    out = _openid_client(config)
    assert out["issuer"] == live.url
    token = out["token"]
    assert token["token_type"].lower() == "bearer"
    assert token["scope"] == "read"
    assert token["expires_in"] == 600
    claims = _claims(token["access_token"])
    assert claims["aud"] == OTHER_API
    assert claims["client_id"] == client_id
    before = out["before"]
    assert before["active"] is True
    assert before["client_id"] == client_id
    assert before["scope"] == "read"
    assert before["aud"] == OTHER_API
    assert out["after"] == {"active": False}


@pytest.mark.node
def test_openid_client_with_issuer_path(live: LiveServer, tenant: LiveServer) -> None:
    """Discovery at /.well-known/oauth-authorization-server/tenant, endpoints under /tenant."""
    client_id, secret = tenant.create_client(scope="read", audiences=[API])
    out = _openid_client(
        {"issuer": tenant.url, "method": "basic", "client_id": client_id, "secret": secret}
    )
    assert out["issuer"] == tenant.url
    assert out["token_endpoint"] == tenant.url + "/token"
    assert _claims(out["token"]["access_token"])["iss"] == tenant.url
    assert out["before"]["active"] is True
    assert out["after"] == {"active": False}


@pytest.mark.node
def test_openid_client_sees_oauth_errors(live: LiveServer) -> None:
    client_id, _ = live.create_client(scope="read", audiences=[API])
    config: dict[str, Any] = {"issuer": live.url, "method": "basic", "client_id": client_id}
    config["secret"] = "wrong"
    refused = _openid_client(config)
    assert refused["error"] == "invalid_client"
    assert refused["status"] == 401
    [challenge] = refused["challenges"]
    assert challenge["scheme"] == "basic"
    assert challenge["parameters"]["realm"] == "sealring"
    client_id, secret = live.create_client(scope="read", audiences=[API])
    config.update(client_id=client_id, secret=secret, params={"scope": "admin"})
    assert _openid_client(config) == {"error": "invalid_scope", "status": 400}


@pytest.mark.parametrize("include_client_id", [False, True])
def test_requests_oauthlib_backend_application(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch, include_client_id: bool
) -> None:
    """``include_client_id=False`` sends HTTP Basic, ``True`` the secret in the body."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # loopback test server
    auth_method = "client_secret_post" if include_client_id else "client_secret_basic"
    client_id, secret = live.create_client(
        scope="read write", audiences=[API], auth_method=auth_method
    )
    assert secret is not None
    oauth_client = BackendApplicationClient(client_id=client_id, scope=["read", "write"])
    with OAuth2Session(client=oauth_client) as session:
        token = session.fetch_token(
            token_url=live.settings.token_endpoint,
            client_id=client_id,
            client_secret=secret,
            include_client_id=include_client_id,
        )
        assert token["token_type"] == "Bearer"
        assert token["scope"] == ["read", "write"]
        assert _claims(token["access_token"])["sub"] == client_id
        # oauthlib prepares RFC 7009 revocation requests; the session sends it.
        url, headers, body = oauth_client.prepare_token_revocation_request(
            live.settings.revocation_endpoint, token["access_token"]
        )
        if include_client_id:
            body += f"&client_id={client_id}&client_secret={secret}"
            response = session.post(url, data=body, headers=headers)
        else:
            response = session.post(
                url, data=body, headers=headers, auth=HTTPBasicAuth(client_id, secret)
            )
    assert response.status_code == 200, response.text
    introspected = requests.post(
        live.settings.introspection_endpoint,
        data={"token": token["access_token"]},
        auth=_introspector(live),
        timeout=10,
    )
    assert introspected.json() == {"active": False}


def _introspector(live: LiveServer) -> tuple[str, str]:
    client_id, secret = live.create_client(scope="", audiences=[API])
    assert secret is not None
    return client_id, secret


def test_authlib_introspects_and_revokes(live: LiveServer) -> None:
    client_id, secret = live.create_client(scope="read", audiences=[API])
    with AuthlibSession(client_id, secret, token_endpoint_auth_method="client_secret_basic") as s:
        token = s.fetch_token(live.settings.token_endpoint, grant_type="client_credentials")
        access = token["access_token"]
        active = s.introspect_token(live.settings.introspection_endpoint, token=access).json()
        assert active["active"] is True
        assert active["client_id"] == client_id
        revoked = s.revoke_token(
            live.settings.revocation_endpoint, token=access, token_type_hint="access_token"
        )
        assert revoked.status_code == 200
        inactive = s.introspect_token(live.settings.introspection_endpoint, token=access).json()
        assert inactive == {"active": False}
