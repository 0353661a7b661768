"""Fixtures for the server tests: a live server per module, on SQLite and on PostgreSQL.

The server itself and the checks shared by the tests are in tests/helpers/server.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from sealring.server.http.middleware import RequestContext
from tests.helpers.server import (
    API,
    OTHER,
    LiveServer,
    postgres_database,
    running_server,
    start_server,
)

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
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def live(module_database_url: str) -> Iterator[LiveServer]:
    with running_server(module_database_url) as server:
        yield server


@pytest.fixture(scope="module")
def tenant(module_database_url: str) -> Iterator[LiveServer]:
    """A second server on the same database whose issuer has a path (RFC 8414 §3.1)."""
    with running_server(module_database_url, issuer_path="/tenant") as server:
        yield server


@pytest.fixture(scope="module")
def pg_live() -> Iterator[LiveServer]:
    """A server on a PostgreSQL database of its own, for what only PostgreSQL shows."""
    with postgres_database() as url, running_server(url) as server:
        yield server


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


@pytest.fixture
def jwks_host() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A client's key host on loopback: ``(url, served)``; ``served["body"]`` is what it sends."""
    served: dict[str, bytes] = {"body": b'{"keys":[]}'}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(served["body"])))
            self.end_headers()
            self.wfile.write(served["body"])

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/jwks.json", served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def asgi_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``METHOD path`` of every request that reached the ASGI application."""
    seen: list[str] = []
    original = RequestContext.__call__

    async def spy(self: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            seen.append(f"{scope['method']} {scope['path']}")
        await original(self, scope, receive, send)

    monkeypatch.setattr(RequestContext, "__call__", spy)
    return seen
