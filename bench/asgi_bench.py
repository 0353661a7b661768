"""What the direct dispatch saves, per request, without HTTP: the application called as ASGI.

    .venv/bin/python bench/asgi_bench.py [--rounds 7] [--requests 3000]

One process builds the authorization server twice on one SQLite database, with the direct
dispatch of the hot endpoints (``create_app()``) and without it (``create_app(direct=False)``:
every request through Starlette's router, as before issue 11), runs both lifespans, and calls
each application directly with ASGI messages: ``GET /jwks.json``, ``GET`` the metadata, ``POST
/token`` (``client_credentials`` with ``client_secret_basic``) and ``GET /healthz`` (always routed:
the control). No socket, no HTTP server, no other process: the figure is the application's own
Python time per request, which a loaded machine disturbs far less than it disturbs wrk's
throughput. The two variants alternate within each round; reported are the medians over rounds
of µs per request and of the per-round ratio routed / direct.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from sealring.db import make_engine
from sealring.server import create_app
from sealring.server.clients import SecretHasher, new_client, new_secret
from sealring.server.settings import Settings
from sealring.server.stores.clients import ClientRepository

SERVER_SECRET = secrets.token_bytes(32)
ENVIRON = {"SEALRING_KEK": base64.b64encode(secrets.token_bytes(32)).decode()}


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


async def _call(app: Starlette, method: str, path: str, headers: list[tuple[bytes, bytes]],
                body: bytes) -> int:  # fmt: skip
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(method, path, headers), receive, send)
    return status


async def _run(args: argparse.Namespace, database_url: str) -> None:
    settings = Settings.load(
        {"database_url": database_url, "server_secret": SERVER_SECRET, "rate_limit": 0,
         "ip_rate_limit": 0},
        environ={},
    )  # fmt: skip
    apps = {
        "direct": create_app(settings, environ=ENVIRON),
        "routed": create_app(settings, environ=ENVIRON, direct=False),
    }
    client = new_client(name="bench", scope="items:read", audiences=["https://api.example"])
    secret = new_secret()
    engine = make_engine(database_url)
    basic = base64.b64encode(f"{client.client_id}:{secret}".encode())
    requests = {
        "jwks": ("GET", "/jwks.json", [], b""),
        "discovery": ("GET", "/.well-known/openid-configuration", [], b""),
        "token": (
            "POST",
            "/token",
            [
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"authorization", b"Basic " + basic),
            ],
            b"grant_type=client_credentials&scope=items:read",
        ),
        "healthz": ("GET", "/healthz", [], b""),
    }
    async with apps["direct"].router.lifespan_context(apps["direct"]):
        ClientRepository(engine).add(client, SecretHasher(SERVER_SECRET).hash(secret))
        engine.dispose()
        async with apps["routed"].router.lifespan_context(apps["routed"]):
            for app in apps.values():  # warm: caches filled, every answer as expected
                for method, path, headers, body in requests.values():
                    assert await _call(app, method, path, headers, body) == 200, path
            times: dict[tuple[str, str], list[float]] = {}
            for round_no in range(args.rounds):
                for endpoint, (method, path, headers, body) in requests.items():
                    order = list(apps) if round_no % 2 == 0 else list(reversed(apps))
                    for name in order:
                        app = apps[name]
                        started = time.process_time()
                        for _ in range(args.requests):
                            await _call(app, method, path, headers, body)
                        spent = time.process_time() - started
                        times.setdefault((endpoint, name), []).append(spent / args.requests * 1e6)
    print(f"µs of CPU per request, median of {args.rounds} rounds of {args.requests} requests")
    print("| endpoint | direct | routed | routed / direct |")
    print("|---|---:|---:|---:|")
    for endpoint in requests:
        direct, routed = times[(endpoint, "direct")], times[(endpoint, "routed")]
        ratio = statistics.median(r / d for d, r in zip(direct, routed, strict=True))
        print(
            f"| {endpoint} | {statistics.median(direct):.1f} | {statistics.median(routed):.1f} "
            f"| {ratio:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_run(args, f"sqlite:///{Path(tmp) / 'sealring.db'}"))


if __name__ == "__main__":
    main()
