"""A real authorization server on a free loopback port, on SQLite and on PostgreSQL.

The server runs uvicorn in a thread of the test process (so a test can reach its state), bound
to a socket the fixture opened, and is started once per test module per database.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette

from sealring.db import make_engine
from sealring.jose.jwk import JWK
from sealring.jose.jws import LocalSigner
from sealring.jose.jwt import encode_jwt
from sealring.server.app import create_app
from sealring.server.clients import SecretHasher, new_client, new_secret
from sealring.server.context import ServerContext
from sealring.server.settings import Settings
from sealring.server.stores.clients import ClientRepository

PG_ADMIN_URL = os.environ.get("SEALRING_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SERVER_SECRET = secrets.token_bytes(32)
KEK = base64.b64encode(secrets.token_bytes(32)).decode()
METRICS_TOKEN = secrets.token_urlsafe(32)
ENVIRON = {"SEALRING_KEK": KEK}


@dataclass
class LiveServer:
    settings: Settings
    app: Starlette
    server: uvicorn.Server
    thread: threading.Thread
    sock: socket.socket
    created: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.settings.issuer

    @property
    def state(self) -> ServerContext:
        state: ServerContext = self.app.state.sealring
        return state

    def create_client(self, **kwargs: Any) -> tuple[str, str | None]:
        """Register a client directly in the database; returns ``(client_id, secret)``."""
        kwargs.setdefault("name", "test client")
        kwargs.setdefault("jwks_uri_networks", self.settings.jwks_uri_allowed_networks)
        client = new_client(**kwargs)
        hasher = SecretHasher(SERVER_SECRET)
        secret = new_secret() if client.auth_method.startswith("client_secret") else None
        engine = make_engine(self.settings.database_url)
        try:
            ClientRepository(engine).add(client, hasher.hash(secret) if secret else None)
        finally:
            engine.dispose()
        return client.client_id, secret

    def create_jwt_client(self, **kwargs: Any) -> tuple[str, JWK]:
        """A ``private_key_jwt`` client with a fresh ES256 key; returns ``(client_id, key)``."""
        key = JWK.from_key(ec.generate_private_key(ec.SECP256R1()), alg="ES256")
        kwargs.setdefault("audiences", ["https://api.example.test"])
        client_id, _ = self.create_client(
            auth_method="private_key_jwt",
            jwks=json.dumps({"keys": [key.public().to_dict()]}),
            **kwargs,
        )
        return client_id, key

    def assertion(self, client_id: str, key: JWK, **claims: object) -> str:
        """A client assertion (RFC 7523 §3); a claim given as None is left out."""
        now = int(time.time())
        body: dict[str, object] = {
            "iss": client_id,
            "sub": client_id,
            "aud": self.settings.issuer,
            "exp": now + 60,
            "iat": now,
            "jti": uuid.uuid4().hex,
        }
        body.update(claims)
        return encode_jwt({k: v for k, v in body.items() if v is not None}, LocalSigner(key))

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


def start_server(database_url: str, issuer_path: str = "", **overrides: Any) -> LiveServer:
    """Start a server; ``issuer_path`` (e.g. ``/tenant``) gives the issuer URL a path."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options: dict[str, Any] = {
        "issuer": f"http://127.0.0.1:{port}{issuer_path}",
        "port": port,
        "database_url": database_url,
        "server_secret": SERVER_SECRET,
        "rate_limit": 0,
        "ip_rate_limit": 0,
        "client_cache_ttl": 5.0,
        # The test servers' client key hosts run on loopback (docs/security.md, SSRF).
        "jwks_uri_allowed_networks": "127.0.0.0/8",
        "metrics_token": METRICS_TOKEN,
    }
    options.update(overrides)
    settings = Settings.load(options, environ={})
    app = create_app(settings, environ=ENVIRON)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return LiveServer(settings, app, server, thread, sock)


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


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards; yields its SQLAlchemy URL."""
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


@contextlib.contextmanager
def running_server(
    database_url: str, issuer_path: str = "", **overrides: Any
) -> Iterator[LiveServer]:
    """:func:`start_server`, stopped on leaving the block."""
    server = start_server(database_url, issuer_path, **overrides)
    try:
        yield server
    finally:
        server.stop()


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
