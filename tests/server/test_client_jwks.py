"""A client's jwks_uri (private_key_jwt) cannot hold the token endpoint or its memory hostage.

The host is a real HTTP server on loopback, misbehaving on purpose: dripping its body, or sending
a compression bomb. Each must end in invalid_client within the fetch deadline.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import pytest

from sealring.jose.jwk import JWK
from sealring.resource import JWKSSettings
from sealring.server.errors import InvalidClient
from sealring.server.stores.client_keys import ClientJWKSFetcher

KEY = JWK.generate("ES256")
GOOD = json.dumps({"keys": [KEY.public().to_dict()]}).encode()
# 64 MiB of zeros, about 64 KiB on the wire: far past the 64 KiB cap once inflated.
BOMB = gzip.compress(b"\0" * (64 << 20), compresslevel=9)


@pytest.fixture
def host() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if self.path == "/slow":
                self.send_header("Content-Length", str(len(GOOD)))
                self.end_headers()
                for byte in GOOD:  # one byte every 0.2 s: each read is quick, the whole is not
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(0.2)
            elif self.path == "/bomb":
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(BOMB)))
                self.end_headers()
                self.wfile.write(BOMB)
            else:
                self.send_header("Content-Length", str(len(GOOD)))
                self.end_headers()
                self.wfile.write(GOOD)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _get(url: str, timeout: float = 1.0) -> object:
    async def run() -> object:
        fetcher = ClientJWKSFetcher(
            settings=JWKSSettings(timeout=timeout, max_size=64 * 1024),
            allowed_networks=[ipaddress.ip_network("127.0.0.0/8")],  # the host is on loopback
        )
        try:
            return await fetcher.get(url, None)
        finally:
            await fetcher.aclose()

    return anyio.run(run)


def test_a_well_behaved_host_serves_the_keys(host: str) -> None:
    keys = _get(host + "/jwks.json")
    assert KEY.kid in keys  # type: ignore[operator]


def test_a_dripping_body_is_cut_off_at_the_deadline(host: str) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidClient):
        _get(host + "/slow", timeout=1.0)
    assert time.monotonic() - started < 5  # the whole body would take about 30 s


def test_a_compression_bomb_is_refused_without_inflating_it(host: str) -> None:
    with pytest.raises(InvalidClient):
        _get(host + "/bomb")


def test_plain_http_off_loopback_is_refused() -> None:
    with pytest.raises(InvalidClient):
        _get("http://jwks.client.example/keys")
