"""Load test: the example API's ``GET /api/hello`` with a valid token vs. the check removed.

    .venv/bin/python bench/resource_load.py [--rounds 8] [--duration 3] [--connections 32]

Starts a local JWKS server and two uvicorn subprocesses (1 worker each) on 127.0.0.1: (1) the
example API (``sealring.resource.example_api``: middleware + ``requires_token``, verified-token
cache on) and (2) the same route with the check removed. Round by round, in alternating order,
``wrk -t1 -cN -dS`` drives each with the same ``Authorization`` header. Reports req/s and the median of the per-round ratios; target: protected >= 85% of unchecked.
Because other work shares the 2 cores, it also reports the server process's CPU time per request
(from /proc), whose ratio is the capacity ratio of a CPU-bound single worker and barely moves with
outside load. Loopback only; every wrk run is bounded by ``--duration``.
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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Run:
    rps: float  # what wrk measured
    cpu_us: float  # server CPU time per request: robust to other load on a shared machine


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, token: str, duration: int, connections: int, pid: int) -> Run:
    before = cpu_seconds(pid)
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
    cpu = cpu_seconds(pid) - before
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if rps is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return Run(float(rps.group(1)), cpu / int(total.group(1)) * 1e6)


@contextmanager
def served(mode: str, issuer: str, token: str) -> Iterator[tuple[str, int]]:
    """One variant of the app in a uvicorn subprocess; yields its /api/hello URL and pid."""
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", mode, "--port", str(port), "--issuer", issuer],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        url = f"http://127.0.0.1:{port}/api/hello"
        wait_ready(url, token)
        yield url, child.pid
    finally:
        child.terminate()
        child.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
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
    runs: dict[str, list[Run]] = {"unchecked": [], "protected": []}
    with jwks_server({"keys": [key.public().to_dict()]}) as issuer:
        token = mint_tokens(key, issuer, 1)[0]
        with (
            served("unchecked", issuer, token) as unchecked,
            served("protected", issuer, token) as protected,
        ):
            servers = {"unchecked": unchecked, "protected": protected}
            for url, pid in servers.values():
                wrk(url, token, 1, args.connections, pid)  # warm-up
            # Both servers stay up; short runs alternate so machine drift hits both alike.
            for r in range(args.rounds):
                order = ("unchecked", "protected") if r % 2 == 0 else ("protected", "unchecked")
                for mode in order:
                    url, pid = servers[mode]
                    runs[mode].append(wrk(url, token, args.duration, args.connections, pid))
                u, p = runs["unchecked"][-1], runs["protected"][-1]
                print(
                    f"round {r + 1}: req/s unchecked {u.rps:.0f} protected {p.rps:.0f} "
                    f"({p.rps / u.rps:.1%}); server CPU/request unchecked {u.cpu_us:.1f} us "
                    f"protected {p.cpu_us:.1f} us ({u.cpu_us / p.cpu_us:.1%})"
                )
    rps_ratio = statistics.median(
        p.rps / u.rps for u, p in zip(runs["unchecked"], runs["protected"], strict=True)
    )
    cpu_ratio = statistics.median(
        u.cpu_us / p.cpu_us for u, p in zip(runs["unchecked"], runs["protected"], strict=True)
    )
    print(
        f"median req/s: unchecked {statistics.median(r.rps for r in runs['unchecked']):.0f}, "
        f"protected {statistics.median(r.rps for r in runs['protected']):.0f}"
    )
    print(
        f"median server CPU per request: unchecked "
        f"{statistics.median(r.cpu_us for r in runs['unchecked']):.1f} us, protected "
        f"{statistics.median(r.cpu_us for r in runs['protected']):.1f} us"
    )
    for name, value in (("wrk req/s", rps_ratio), ("CPU-bound capacity", cpu_ratio)):
        verdict = "PASS" if value >= TARGET else "FAIL"
        print(f"target protected/unchecked >= {TARGET:.0%} ({name}): {value:.1%} {verdict}")


if __name__ == "__main__":
    main()
