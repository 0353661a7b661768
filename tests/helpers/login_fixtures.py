"""Fixtures of the login tests: a live server with the login world, on SQLite and PostgreSQL.

Imported by the test modules that use them (``from tests.helpers.login_fixtures import ...``):
a module of tests shares one server per database, and each test gets a fresh user agent
(an empty cookie jar, so no test inherits another's browser session).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.login import SERVER_SETTINGS, LoginWorld, OffsetClock, UserAgent, build_world
from tests.helpers.server import postgres_database, running_server

__all__ = ["agent", "login_world"]


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
