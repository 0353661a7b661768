"""End to end with Sealring's own authorization server: discovery, JWKS and real access tokens.

The server runs on SQLite in a thread (the fixture of tests/server); the example API runs in
uvicorn; the client gets its tokens from ``POST /token`` over real HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sealring.resource import AccessTokenVerifier, AsyncJWKSClient, InvalidToken
from sealring.resource.example_api import create_app
from tests.helpers.server import LiveServer, start_server
from tests.helpers.servers import ThreadedUvicorn

API = "https://api.example.test"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db: Path = tmp_path_factory.mktemp("resource-e2e") / "sealring.db"
    server = start_server(f"sqlite:///{db}")
    try:
        yield server
    finally:
        server.stop()


def get_token(live: LiveServer, client: tuple[str, str | None], scope: str) -> str:
    client_id, secret = client
    assert secret is not None
    response = httpx.post(
        f"{live.url}/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(client_id, secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture(scope="module")
def client(live: LiveServer) -> tuple[str, str | None]:
    return live.create_client(scope="items:read items:write", audiences=[API])


def test_verifier_discovers_the_server_and_verifies_its_tokens(
    live: LiveServer, client: tuple[str, str | None]
) -> None:
    token = get_token(live, client, "items:read")
    with AccessTokenVerifier(live.url, audience=API) as verifier:
        claims = verifier.verify(token)
        assert claims.client_id == client[0]
        assert claims.sub == client[0]
        assert claims.scopes == {"items:read"}
        assert claims.iss == live.url
    with (
        AccessTokenVerifier(live.url, audience="https://other.example") as other,
        pytest.raises(InvalidToken) as info,
    ):
        other.verify(token)
    assert info.value.reason == "invalid_audience"


def test_async_client_against_the_server(live: LiveServer, client: tuple[str, str | None]) -> None:
    token = get_token(live, client, "items:write")

    async def main() -> None:
        async with AsyncJWKSClient(issuer=live.url) as jwks:
            verifier = AccessTokenVerifier(live.url, audience=API, keys=jwks)
            assert (await verifier.averify(token)).scopes == {"items:write"}

    asyncio.run(main())


def test_example_api_with_sealring_tokens(live: LiveServer, client: tuple[str, str | None]) -> None:
    reader = get_token(live, client, "items:read")
    writer = get_token(live, client, "items:write")
    with (
        AccessTokenVerifier(live.url, audience=API) as verifier,
        ThreadedUvicorn(create_app(verifier)) as api,
        httpx.Client(base_url=api.url) as http,
    ):
        hello = http.get("/api/hello", headers={"Authorization": f"Bearer {reader}"})
        assert hello.status_code == 200
        assert hello.json()["sub"] == client[0]
        denied = http.post(
            "/api/items", json={"name": "x"}, headers={"Authorization": f"Bearer {reader}"}
        )
        assert denied.status_code == 403
        assert 'scope="items:write"' in denied.headers["www-authenticate"]
        created = http.post(
            "/api/items", json={"name": "x"}, headers={"Authorization": f"Bearer {writer}"}
        )
        assert created.status_code == 201
        listed = http.get("/api/items", headers={"Authorization": f"Bearer {reader}"})
        assert listed.json()["items"][0]["name"] == "x"
