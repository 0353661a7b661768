"""A real authorization server for tests: ``start_server`` runs one on a free loopback port.

The server runs uvicorn in a thread of the test process (so a test can reach its context), bound
to a socket opened here.  ``oauth_error`` checks an RFC 6749 §5.2 error response the same way in
every server test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette

from sealring.db import make_engine
from sealring.jose.jwk import JWK
from sealring.jose.jws import LocalSigner
from sealring.jose.jwt import encode_jwt
from sealring.server import create_app
from sealring.server.clients import SecretHasher, new_client, new_secret
from sealring.server.context import ServerContext
from sealring.server.http.uvicorn_protocol import PrebuiltHttpToolsProtocol
from sealring.server.logging import access_log
from sealring.server.settings import Settings
from sealring.server.stores.clients import ClientRepository
from tests.helpers.postgres import PG_ADMIN_URL
from tests.helpers.postgres import throwaway_database as postgres_database

__all__ = [
    "API",
    "ENVIRON",
    "KEK",
    "METRICS_TOKEN",
    "OTHER",
    "PG_ADMIN_URL",
    "SERVER_SECRET",
    "LiveServer",
    "access_log_lines",
    "access_token",
    "no_store",
    "oauth_error",
    "own_token",
    "postgres_database",
    "running_server",
    "start_server",
]

SERVER_SECRET = secrets.token_bytes(32)
API = "https://api.example.test"
OTHER = "https://other.example.test"
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
    def context(self) -> ServerContext:
        context: ServerContext = self.app.state.sealring
        return context

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


def start_server(
    database_url: str,
    issuer_path: str = "",
    *,
    direct: bool = True,
    clock: Callable[[], float] = time.time,
    http: type[asyncio.Protocol] = PrebuiltHttpToolsProtocol,
    **overrides: Any,
) -> LiveServer:
    """Start a server; ``issuer_path`` (e.g. ``/tenant``) gives the issuer URL a path.

    ``direct=False`` serves every request through Starlette's router (``create_app``).
    ``http`` is uvicorn's protocol class: by default the one ``sealring serve`` runs.
    ``clock`` replaces the server's ``time.time`` (codes and sessions that must expire).
    """
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
    app = create_app(settings, environ=ENVIRON, direct=direct, clock=clock)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", http=http)
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


def no_store(response: httpx.Response) -> None:
    """RFC 6749 §5.1: token responses and their errors are not cached."""
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


def oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, str]:
    """Check an RFC 6749 §5.2 error response: status, JSON, no-store, wire error; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    no_store(response)
    body: dict[str, str] = response.json()
    assert body["error"] == error
    assert "Traceback" not in response.text
    # §5.2: error_description is printable ASCII without '"' and '\\'.
    for char in body.get("error_description", ""):
        assert 0x20 <= ord(char) <= 0x7E, body
        assert char not in '"\\', body
    return body


def access_token(http: httpx.Client, auth: tuple[str, str], **form: str) -> str:
    """A client_credentials access token for ``auth`` (which must succeed)."""
    response = http.post("/token", data={"grant_type": "client_credentials", **form}, auth=auth)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def own_token(live: LiveServer, **claims: object) -> str:
    """An access token signed with the server's own key; a claim given as None is left out.

    ``typ`` among ``claims`` replaces the ``at+jwt`` header type.
    """
    now = int(time.time())
    body: dict[str, object] = {
        "iss": live.url, "sub": "someone", "client_id": "someone", "aud": API,
        "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex,
    }  # fmt: skip
    body.update(claims)
    typ = str(body.pop("typ", "at+jwt"))
    signer = live.context.keys.signer(live.settings.signing_alg)
    return encode_jwt({k: v for k, v in body.items() if v is not None}, signer, typ=typ)


@contextlib.contextmanager
def running_server(
    database_url: str,
    issuer_path: str = "",
    *,
    direct: bool = True,
    clock: Callable[[], float] = time.time,
    http: type[asyncio.Protocol] = PrebuiltHttpToolsProtocol,
    **overrides: Any,
) -> Iterator[LiveServer]:
    """:func:`start_server`, stopped on leaving the block."""
    server = start_server(
        database_url, issuer_path, direct=direct, clock=clock, http=http, **overrides
    )
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def access_log_lines(stream: io.StringIO | None = None) -> Iterator[io.StringIO]:
    """The access log, enabled, into ``stream`` (a fresh one by default); as it was afterwards.
    Lines an earlier test queued go to the stream they were queued for, not into this one."""
    stream = io.StringIO() if stream is None else stream
    access_log.flush()
    old = access_log.stream, access_log.enabled
    access_log.stream, access_log.enabled = stream, True
    try:
        yield stream
    finally:
        access_log.flush()
        access_log.stream, access_log.enabled = old
