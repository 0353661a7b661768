"""Load test: the example API's ``GET /api/hello`` with a valid token vs. the check removed.

    .venv/bin/python bench/resource_load.py [--rounds 6] [--duration 3] [--connections 32]

Starts a local JWKS server, then for each round serves, one after the other, (1) the example API
(``sealring.resource.example_api``: middleware + ``requires_token``, verified-token cache on) and
(2) the same route without any token check, each in a uvicorn subprocess (1 worker) on
127.0.0.1, and drives both with ``wrk -t1 -cN -dS`` sending the same ``Authorization`` header.
Reports req/s and the median of the per-round ratios; target: protected >= 85% of unchecked.
Everything is loopback-only and bounded by ``--duration`` per run.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from resource_bench import AUDIENCE, jwks_server, mint_tokens
from sealring.jose.jwk import JWK

TARGET = 0.85


def serve(mode: str, port: int, issuer: str) -> None:
    """Child process: run one variant of the app."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from sealring.resource import AccessTokenVerifier
    from sealring.resource.example_api import create_app

    if mode == "protected":
        app = create_app(AccessTokenVerifier(issuer, audience=AUDIENCE, jwks_uri=f"{issuer}/jwks"))
    else:
        # The example API's /api/hello with the check removed: same response shape, no token.
        async def hello(request: Request) -> Response:
            return JSONResponse(
                {
                    "message": "hello, client-1",
                    "sub": "client-1",
                    "scopes": ["items:read", "items:write"],
                }
            )

        app = Starlette(routes=[Route("/api/hello", hello, methods=["GET"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, token: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=1)
            if r.status_code == 200:
                return
            raise RuntimeError(f"{url} answered {r.status_code}: {r.text}")
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def wrk(url: str, token: str, duration: int, connections: int) -> float:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 30,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return float(match.group(1))


@contextmanager
def served(mode: str, issuer: str, token: str) -> Iterator[str]:
    """One variant of the app in a uvicorn subprocess; yields its /api/hello URL."""
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", mode, "--port", str(port), "--issuer", issuer],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        url = f"http://127.0.0.1:{port}/api/hello"
        wait_ready(url, token)
        yield url
    finally:
        child.terminate()
        child.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--serve", choices=["protected", "unchecked"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--issuer")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.issuer)
        return
    key = JWK.generate("ES256")
    runs: dict[str, list[float]] = {"unchecked": [], "protected": []}
    ratios: list[float] = []
    with (
        jwks_server({"keys": [key.public().to_dict()]}) as issuer,
        served("unchecked", issuer, mint_tokens(key, issuer, 1)[0]) as unchecked_url,
    ):
        token = mint_tokens(key, issuer, 1)[0]
        with served("protected", issuer, token) as protected_url:
            urls = {"unchecked": unchecked_url, "protected": protected_url}
            for url in urls.values():
                wrk(url, token, 1, args.connections)  # warm-up
            # Both servers stay up; short runs alternate so machine drift hits both alike.
            for r in range(args.rounds):
                order = ("unchecked", "protected") if r % 2 == 0 else ("protected", "unchecked")
                got = {m: wrk(urls[m], token, args.duration, args.connections) for m in order}
                for mode, rps in got.items():
                    runs[mode].append(rps)
                ratios.append(got["protected"] / got["unchecked"])
                print(
                    f"round {r + 1}: unchecked {got['unchecked']:.0f} req/s, "
                    f"protected {got['protected']:.0f} req/s, ratio {ratios[-1]:.3f}"
                )
    ratio = statistics.median(ratios)
    print(
        f"median: unchecked {statistics.median(runs['unchecked']):.0f} req/s, "
        f"protected {statistics.median(runs['protected']):.0f} req/s"
    )
    verdict = "PASS" if ratio >= TARGET else "FAIL"
    print(f"target protected/unchecked >= {TARGET:.0%}: {ratio:.1%} {verdict}")


if __name__ == "__main__":
    main()
