"""Fixtures for the resource-server tests: a real local issuer, a fake clock, the issuer's key.

The helpers themselves live in ``tests.helpers`` (issuer server, tokens, clock); this module only
turns them into fixtures. Nothing sleeps: time is a :class:`FakeClock` the test moves.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import pytest

from sealring.jose.jwk import JWK
from sealring.resource import AccessTokenVerifier
from tests.helpers.clock import FakeClock
from tests.helpers.issuer import IssuerServer
from tests.helpers.jwks_clients import CLIENT_KINDS, Driver, open_client
from tests.helpers.tokens import AUDIENCE, new_key


def _running_issuer() -> Iterator[IssuerServer]:
    server = IssuerServer()
    try:
        yield server
    finally:
        server.stop()


issuer_server = pytest.fixture(_running_issuer, name="issuer_server")
#: A second, independent issuer (cross-issuer tests).
second_issuer = pytest.fixture(_running_issuer, name="second_issuer")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def key() -> JWK:
    """The issuer's signing key, ES256, kid ``k1``."""
    return new_key("ES256", kid="k1")


@pytest.fixture
def verifier(
    issuer_server: IssuerServer, clock: FakeClock, key: JWK
) -> Iterator[AccessTokenVerifier]:
    """A verifier of ``issuer_server`` (publishing ``key``, max-age 300 s) on the fake clock."""
    issuer_server.publish(key, max_age=300)
    with AccessTokenVerifier(issuer_server.issuer, audience=AUDIENCE, clock=clock) as v:
        yield v


@pytest.fixture(params=CLIENT_KINDS)
def client_kind(request: pytest.FixtureRequest) -> str:
    """Each JWKS-client test runs against the sync and the async client."""
    kind: str = request.param
    return kind


@pytest.fixture
def open_jwks(client_kind: str) -> Iterator[Callable[..., Driver]]:
    """``open_jwks(jwks_uri, **options)``: a JWKS client of this test's kind, closed at teardown."""
    made: list[Driver] = []

    def make(*args: object, **kwargs: object) -> Driver:
        driver = open_client(client_kind, *args, **kwargs)
        made.append(driver)
        return driver

    yield make
    for driver in made:
        driver.close()


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads often, so that the lock-free reads interleave with the writers."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)
