"""Fixtures of the login tests: a live server with the login world, on SQLite and PostgreSQL.

Imported by the test modules that use them (``from tests.helpers.login_fixtures import ...``):
a module of tests shares one server per database.  ``agent`` is a fresh user agent (an empty
cookie jar: the test signs in itself); ``signed_in`` is a fresh user agent holding the cookies
of one sign-in made once per module, for tests about what comes after the login page (SSO, as a
browser that signed in earlier).  A sign-in costs one argon2id verification (about 0.5 s on a
loaded 2-core machine), so sharing it keeps the suites fast.  Tests that end the session
(logout) or count sign-ins use ``agent``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.helpers.login import (
    SERVER_SETTINGS,
    LoginWorld,
    OffsetClock,
    UserAgent,
    build_world,
    start_flow,
)
from tests.helpers.server import postgres_database, running_server

__all__ = ["agent", "login_world", "session_cookies", "signed_in"]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def login_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoginWorld]:
    clock = OffsetClock()
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('login') / 'sealring.db'}"
        with running_server(url, clock=clock, **SERVER_SETTINGS) as live:
            yield build_world(live.url, url, clock)
        return
    with postgres_database() as url, running_server(url, clock=clock, **SERVER_SETTINGS) as live:
        yield build_world(live.url, url, clock)


@pytest.fixture
def agent(login_world: LoginWorld) -> Iterator[UserAgent]:
    yield from login_world.user_agent()


@pytest.fixture(scope="module")
def session_cookies(login_world: LoginWorld) -> httpx.Cookies:
    """The cookies of one sign-in (with consent) to the confidential client."""
    browser = UserAgent(login_world.issuer)
    try:
        flow = start_flow(login_world, browser, login_world.confidential)
        assert flow.authorization.callback is not None, flow.authorization
        assert flow.authorization.pages[:1] == ["login"]
        return httpx.Cookies(browser.http.cookies)
    finally:
        browser.close()


@pytest.fixture
def signed_in(login_world: LoginWorld, session_cookies: httpx.Cookies) -> Iterator[UserAgent]:
    for browser in login_world.user_agent():
        browser.http.cookies = httpx.Cookies(session_cookies)
        yield browser
