"""The login pages when the database does not answer: a 503 the user can read, never a 500.

A PostgreSQL session holds an exclusive lock on one login table, so every request that touches
it waits longer than ``database_timeout``; the server must answer what its JSON endpoints answer
in the same case (503, ``Retry-After``), as an HTML page for the browser.  Afterwards the same
request succeeds: the outage was temporary and nothing was lost.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psycopg
import pytest

from tests.helpers.login import (
    LoginWorld,
    OffsetClock,
    Pkce,
    UserAgent,
    auth_params,
    build_world,
    parse_forms,
)
from tests.helpers.server import postgres_database, running_server

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def slow_world() -> Iterator[LoginWorld]:
    clock = OffsetClock()
    with (
        postgres_database() as url,
        running_server(url, clock=clock, server_secret=None, database_timeout=1.0) as live,
    ):
        yield build_world(live.url, url, clock)


def _locked(world: LoginWorld, table: str) -> psycopg.Connection[tuple[object, ...]]:
    conn = psycopg.connect(world.database_url.replace("postgresql+psycopg://", "postgresql://"))
    conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    return conn


def _unavailable_page(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:200])
    assert "retry-after" in response.headers
    assert "Traceback" not in response.text


def test_authorize_while_the_database_hangs(slow_world: LoginWorld) -> None:
    world = slow_world
    params = auth_params(world.confidential, Pkce.new(), state="s", nonce=None)
    conn = _locked(world, "oauth_interactions")
    try:
        with httpx.Client(timeout=15) as http:
            _unavailable_page(http.get(world.provider.authorization_endpoint, params=tuple(params)))
    finally:
        conn.close()
    agent = UserAgent(world.issuer)
    try:
        assert agent.authorize(world.provider.authorization_endpoint, params).callback
    finally:
        agent.close()


def test_sign_in_while_the_database_hangs(slow_world: LoginWorld) -> None:
    world = slow_world
    agent = UserAgent(world.issuer)
    try:
        auth = agent.authorize(
            world.provider.authorization_endpoint,
            auth_params(world.confidential, Pkce.new(), state="s", nonce=None),
            username=None,
        )
        assert auth.page is not None
        form = next(f for f in parse_forms(auth.page.text) if "password" in f.inputs)
        conn = _locked(world, "oauth_login_throttle")
        try:
            response = agent.submit(
                auth.page, form, {"username": "alice", "password": "correct horse battery staple"}
            )
            _unavailable_page(response)
        finally:
            conn.close()
    finally:
        agent.close()
