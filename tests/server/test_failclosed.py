"""Failing closed: no key, no database, a revoked key; and private_key_jwt keys from a jwks_uri."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from sealring.db import make_engine
from sealring.jose.jwk import JWK
from sealring.jose.jws import Signer
from sealring.keys import KeyUnavailable
from sealring.server.context import build_context
from sealring.server.endpoints.operations import readyz
from sealring.server.endpoints.token import token_endpoint
from sealring.server.settings import Settings
from tests.helpers.server import ENVIRON, SERVER_SECRET, LiveServer, start_server

API = "https://api.example.test"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class NoKeys:
    def signer(self, alg: str) -> Signer:
        raise KeyUnavailable(f"no active {alg} signing key")

    def jwks(self) -> Any:
        raise AssertionError("not reached")


@pytest.fixture
def broken_app(tmp_path: Path) -> Iterator[tuple[Starlette, Any]]:
    settings = Settings.load(
        {"database_url": f"sqlite:///{tmp_path / 'x.db'}", "server_secret": SERVER_SECRET},
        environ={},
    )
    state, km = build_context(settings, environ=ENVIRON)
    km.close()
    state.keys = NoKeys()
    app = Starlette(
        routes=[
            Route("/readyz", readyz),
            Route("/token", token_endpoint, methods=["POST"]),
        ]
    )
    app.state.sealring = state
    try:
        yield app, state
    finally:
        state.engine.dispose()


def _call(app: Starlette, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.request(method, path, **kwargs)

    return asyncio.run(run())


def test_no_signing_key(broken_app: tuple[Starlette, Any]) -> None:
    app, state = broken_app
    from sealring.server.clients import SecretHasher, new_client

    client = new_client(name="x", scope="s", audiences=[API])
    state.repository.add(client, SecretHasher(SERVER_SECRET).hash("secret"))
    ready = _call(app, "GET", "/readyz")
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "reason": "no active ES256 signing key"}
    token = _call(
        app,
        "POST",
        "/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, "secret"),
    )
    assert token.status_code == 503
    assert token.json()["error"] == "temporarily_unavailable"


def test_database_unreachable(broken_app: tuple[Starlette, Any]) -> None:
    app, state = broken_app
    state.engine.dispose()
    state.engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    ready = _call(app, "GET", "/readyz")
    state.engine.dispose()
    assert ready.status_code == 503
    assert ready.json()["reason"] == "database unreachable"


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(f"sqlite:///{tmp_path / 'own.db'}")
    try:
        yield server
    finally:
        server.stop()


def test_tokens_of_a_revoked_key_are_inactive(own_server: LiveServer) -> None:
    client_id, secret = own_server.create_client(scope="s", audiences=[API])
    auth = (client_id, secret or "")
    with httpx.Client(base_url=own_server.url) as http:
        old = http.post("/token", data={"grant_type": "client_credentials"}, auth=auth).json()
        old_kid = own_server.context.keys.signer("ES256").kid
        assert http.post("/introspect", data={"token": old["access_token"]}, auth=auth).json()[
            "active"
        ]
        own_server.context.keys.revoke(old_kid, "test: compromised")  # type: ignore[attr-defined]
        assert old_kid not in http.get("/jwks.json").text
        info = http.post("/introspect", data={"token": old["access_token"]}, auth=auth).json()
        assert info == {"active": False}
        new = http.post("/token", data={"grant_type": "client_credentials"}, auth=auth)
        assert new.status_code == 200
        assert old_kid not in new.text


def test_private_key_jwt_with_jwks_uri(
    live: LiveServer, http: httpx.Client, jwks_host: tuple[str, dict[str, bytes]]
) -> None:
    url, served = jwks_host
    key = JWK.generate("ES256")
    served["body"] = json.dumps({"keys": [key.public().to_dict()]}).encode()
    client_id, _ = live.create_client(scope="s", audiences=[API], jwks_uri=url)
    form = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER}
    ok = http.post("/token", data={**form, "client_assertion": live.assertion(client_id, key)})
    assert ok.status_code == 200, ok.text
    # A key the set does not have is refused (the refetch finds nothing new).
    stranger = JWK.generate("ES256")
    bad = http.post(
        "/token", data={**form, "client_assertion": live.assertion(client_id, stranger)}
    )
    assert bad.status_code == 401
