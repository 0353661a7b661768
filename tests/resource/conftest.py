"""A real local issuer for the resource-server tests.

:class:`IssuerServer` is an HTTP server on a free 127.0.0.1 port, in a thread, serving metadata and
a JWK Set whose keys, headers and status the test controls, and recording every request. Tokens are
signed with keys the test holds. Time is a :class:`FakeClock` the test moves; nothing sleeps.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import uvicorn

from sealring.jose.jwk import JWK
from sealring.jose.jws import LocalSigner
from sealring.jose.jwt import encode_jwt
from sealring.resource import AccessTokenVerifier

AUDIENCE = "https://api.example"
T0 = 1_800_000_000.0


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    send_length: bool = True


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class IssuerServer:
    """An issuer's metadata and JWKS over real HTTP on loopback."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.delay = 0.0
        self.etag_revalidation = True
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.jwks_uri = f"{self.issuer}/jwks"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        self._running = True
        self.keys: list[JWK] = []
        self.metadata()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with server._lock:
                    server._connections.add(self.connection)

            def finish(self) -> None:
                with server._lock:
                    server._connections.discard(self.connection)
                super().finish()

            def do_GET(self) -> None:
                with server._lock:
                    server.seen.append(
                        Seen(self.path, {k.lower(): v for k, v in self.headers.items()})
                    )
                    route = server.routes.get(self.path, Route(404, b"{}"))
                if server.delay:
                    time.sleep(server.delay)
                etag = route.headers.get("ETag")
                if (
                    server.etag_revalidation
                    and etag is not None
                    and self.headers.get("If-None-Match") == etag
                ):
                    self.send_response(304)
                    for name, value in route.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if route.send_length:
                    self.send_header("Content-Length", str(len(route.body)))
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                with contextlib.suppress(OSError):  # the client may hang up on an oversized body
                    self.wfile.write(route.body)

        return Handler

    # -- what it serves --------------------------------------------------------------------

    def metadata(
        self, issuer: str | None = None, path: str = "/.well-known/oauth-authorization-server"
    ) -> None:
        doc = {"issuer": issuer or self.issuer, "jwks_uri": self.jwks_uri}
        self.routes[path] = Route(
            200, json.dumps(doc).encode(), {"Content-Type": "application/json"}
        )

    def publish(
        self, *keys: JWK, max_age: int | None = 300, etag: str | None = None, **headers: str
    ) -> None:
        self.keys = list(keys)
        body = json.dumps({"keys": [k.to_dict() for k in keys]}).encode()
        extra = {"Content-Type": "application/jwk-set+json", **headers}
        if max_age is not None:
            extra["Cache-Control"] = f"public, max-age={max_age}"
        if etag is not None:
            extra["ETag"] = etag
        self.routes["/jwks"] = Route(200, body, extra)

    def jwks_fetches(self) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path == "/jwks"]

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._httpd.shutdown()
            self._httpd.server_close()
            with self._lock:
                for connection in self._connections:
                    # a down server drops its keep-alive connections too
                    with contextlib.suppress(OSError):
                        connection.shutdown(socket.SHUT_RDWR)
            self._thread.join()


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


_KEY_CACHE: dict[str, JWK] = {}


def new_key(alg: str = "ES256", kid: str | None = None) -> JWK:
    """A private key; RSA generation is slow, so RSA keys are reused under new kids."""
    if alg.startswith(("RS", "PS")):
        base = _KEY_CACHE.get(alg)
        if base is None:
            base = _KEY_CACHE[alg] = JWK.generate(alg)
        return JWK.from_key(base.private_key(), alg=alg, kid=kid or secrets.token_hex(8))
    key = JWK.generate(alg)
    return JWK.from_key(key.private_key(), alg=alg, kid=kid or secrets.token_hex(8))


def mint(
    key: JWK,
    *,
    issuer: str,
    now: float = T0,
    lifetime: float = 600,
    audience: str = AUDIENCE,
    scope: str | None = "items:read",
    typ: str | None = "at+jwt",
    **extra: object,
) -> str:
    claims: dict[str, object] = {
        "iss": issuer,
        "sub": "client-1",
        "aud": audience,
        "client_id": "client-1",
        "iat": int(now),
        "exp": int(now + lifetime),
        "jti": secrets.token_hex(8),
    }
    if scope is not None:
        claims["scope"] = scope
    claims.update(extra)
    return encode_jwt(claims, LocalSigner(key), typ=typ)


class ThreadedUvicorn:
    """uvicorn serving ``app`` on a free loopback port in a thread, stopped on exit."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> ThreadedUvicorn:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
