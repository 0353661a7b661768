"""Fixtures for the server tests: a live server per module, on SQLite and on PostgreSQL.

The server itself and the checks shared by the tests are in tests/helpers/server.py.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.helpers.server import API, OTHER, PG_ADMIN_URL, LiveServer, start_server

# Kept importable from here for tests outside tests/server that have not moved yet.
__all__ = ["LiveServer", "start_server"]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of this module's own, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('server') / 'sealring.db'}"
        return
    name = "sealring_srv_" + secrets.token_hex(6)
    admin = PG_ADMIN_URL
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def live(module_database_url: str) -> Iterator[LiveServer]:
    server = start_server(module_database_url)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tenant(module_database_url: str) -> Iterator[LiveServer]:
    """A second server on the same database whose issuer has a path (RFC 8414 §3.1)."""
    server = start_server(module_database_url, issuer_path="/tenant")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(live: LiveServer) -> tuple[str, str]:
    """A confidential client with scopes ``read write`` and audiences API (default) and OTHER."""
    client_id, secret = live.create_client(scope="read write", audiences=[API, OTHER])
    assert secret is not None
    return client_id, secret


@pytest.fixture
def http(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-sqlite") / "sealring.db"
