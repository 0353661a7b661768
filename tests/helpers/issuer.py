"""A real issuer's metadata and JWK Set over HTTP on loopback, for resource-server tests.

:class:`IssuerServer` runs on a free 127.0.0.1 port, in a thread, serving metadata and a JWK Set
whose keys, headers and status the test controls, and records every request.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sealring.jose.jwk import JWK


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
