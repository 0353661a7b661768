"""Fixtures shared by every area: real databases, never mocks.

PostgreSQL runs on 127.0.0.1:5432 on this machine kind and in CI (.ci/run starts it when it is
down). Each test session gets its own throw-away database so parallel runs cannot collide.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.postgres import throwaway_database

VECTORS = Path(__file__).resolve().parent / "vectors"
# The loggers an in-process ``sealring`` command configures (server.logging.configure_logging).
CONFIGURED_LOGGERS = ("sealring", "uvicorn.error", "_granian")


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """An in-process CLI run points the sealring loggers and the access log at the stderr of its
    moment, which pytest closes after the test; later tests would log into a closed file (a
    "Logging error" and lost lines). Restore what each test found."""
    from sealring.server.logging import access_log

    saved = [
        (log, log.handlers[:], log.level, log.propagate)
        for log in map(logging.getLogger, CONFIGURED_LOGGERS)
    ]
    stream, enabled = access_log.stream, access_log.enabled
    yield
    access_log.flush()
    access_log.stream, access_log.enabled = stream, enabled
    for log, handlers, level, propagate in saved:
        log.handlers[:] = handlers
        log.setLevel(level)
        log.propagate = propagate


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """The public test vectors kept in the repository (tests/vectors, see its README)."""
    assert VECTORS.is_dir(), f"test vectors not found at {VECTORS}"
    return VECTORS


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database shared by this test session."""
    with throwaway_database() as url:
        yield url


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A database of its own for one test (for tests that need an empty schema)."""
    with throwaway_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sealring.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Run a test once on the embedded SQLite default and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sealring.db'}"
    else:
        yield request.getfixturevalue("fresh_postgres_url")
