"""Load test: the example API's ``GET /api/hello`` with a valid token vs. the check removed.

    .venv/bin/python bench/resource_load.py [--rounds 6] [--duration 2] [--servers 3]
                                            [--connections 32] [--pin/--no-pin]

Starts a local JWKS server and, on 127.0.0.1, ``--servers`` uvicorn processes (1 worker each) of
each variant: (1) the example API (``sealring.resource.example_api``: middleware, decorators,
verified-token cache on) and (2) the same ``/api/hello`` handler with the check removed (its
claims a constant verified at start-up). Round by round, alternating direction, ``wrk -t1 -cN
-dS`` drives every process with the same ``Authorization`` header. Reports the medians over all
runs of each variant of wrk's req/s and of the server process's CPU time per request (from
/proc: the capacity of a CPU-bound single worker, which moves less with outside load); target:
protected >= 85% of unchecked. Several processes per variant because one process's memory layout
shifts its cost by a few per cent for its whole life. With two or more CPUs the servers are
pinned to one and wrk to another. Loopback only; every wrk run is bounded by ``--duration``.
Needs ``wrk`` (Debian: ``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from resource_bench import AUDIENCE, jwks_server, mint_tokens
from sealring.jose.jwk import JWK

TARGET = 0.85
# With --pin the servers run on one CPU and wrk on the other, so the two never compete for a
# core and the scheduler's placement does not decide the round (it did: unpinned rounds on a
# 2-core machine split into two clusters, about 65% and about 85%).
SERVER_CPU = 0
WRK_CPU = 1


def serve(mode: str, port: int, issuer: str, token: str, pin: bool) -> None:
    """Child process: run one variant of the app."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from sealring.resource import AccessTokenVerifier
    from sealring.resource.example_api import create_app

    verifier = AccessTokenVerifier(issuer, audience=AUDIENCE, jwks_uri=f"{issuer}/jwks")
    if mode == "protected":
        app = create_app(verifier)
    else:
        # The example API's /api/hello with the check removed: the handler is the example's,
        # line for line, but its claims are a constant (verified once, at start-up) instead of
        # what the middleware and the decorator found for the request.
        claims = verifier.verify(token)

        async def hello(request: Request) -> Response:
            return JSONResponse(
                {
                    "message": f"hello, {claims.sub}",
                    "sub": claims.sub,
                    "scopes": sorted(claims.scopes),
                }
            )

        app = Starlette(routes=[Route("/api/hello", hello, methods=["GET"])])
    if pin:
        os.sched_setaffinity(0, {SERVER_CPU})
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


def wrk(url: str, token: str, duration: int, connections: int, pid: int, pin: bool) -> Run:
    before = cpu_seconds(pid)
    out = subprocess.run(
        [
            *(["taskset", "-c", str(WRK_CPU)] if pin else []),
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
def served(mode: str, issuer: str, token: str, pin: bool) -> Iterator[tuple[str, int]]:
    """One variant of the app in a uvicorn subprocess; yields its /api/hello URL and pid."""
    port = free_port()
    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            *("--serve", mode, "--port", str(port), "--issuer", issuer, "--token", token),
            "--pin" if pin else "--no-pin",
        ],
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
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=int, default=2)
    parser.add_argument("--servers", type=int, default=3, help="processes per variant")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=(os.cpu_count() or 1) >= 2,
        help=f"servers on CPU {SERVER_CPU}, wrk on CPU {WRK_CPU} (default when there are two)",
    )
    parser.add_argument("--serve", choices=["protected", "unchecked"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--issuer")
    parser.add_argument("--token")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.issuer, args.token, args.pin)
        return
    if shutil.which("wrk") is None:
        sys.exit("resource_load.py needs wrk on the PATH (Debian: apt-get install wrk)")
    key = JWK.generate("ES256")
    runs: dict[str, list[Run]] = {"unchecked": [], "protected": []}
    with jwks_server({"keys": [key.public().to_dict()]}) as issuer, ExitStack() as stack:
        token = mint_tokens(key, issuer, 1)[0]
        # Several processes per variant: one process's memory layout (address randomisation,
        # hash seed) moves its cost per request by a few per cent for the whole of its life,
        # as much as the effect being measured. Pairs of processes interleave: (u1, p1), ...
        servers = [
            (mode, stack.enter_context(served(mode, issuer, token, args.pin)))
            for _ in range(args.servers)
            for mode in ("unchecked", "protected")
        ]
        for _, (url, pid) in servers:
            wrk(url, token, 1, args.connections, pid, args.pin)  # warm-up
        # All servers stay up; short runs alternate so machine drift hits every one alike.
        for r in range(args.rounds):
            for mode, (url, pid) in servers if r % 2 == 0 else servers[::-1]:
                runs[mode].append(wrk(url, token, args.duration, args.connections, pid, args.pin))
            u = statistics.median(run.cpu_us for run in runs["unchecked"][-args.servers :])
            p = statistics.median(run.cpu_us for run in runs["protected"][-args.servers :])
            print(
                f"round {r + 1}: server CPU/request, median of {args.servers} processes: "
                f"unchecked {u:.1f} us, protected {p:.1f} us ({u / p:.1%})"
            )
    median = {
        mode: (statistics.median(r.rps for r in rs), statistics.median(r.cpu_us for r in rs))
        for mode, rs in runs.items()
    }
    (u_rps, u_cpu), (p_rps, p_cpu) = median["unchecked"], median["protected"]
    print(f"median req/s: unchecked {u_rps:.0f}, protected {p_rps:.0f}")
    print(f"median server CPU per request: unchecked {u_cpu:.1f} us, protected {p_cpu:.1f} us")
    for name, value in (("wrk req/s", p_rps / u_rps), ("CPU-bound capacity", u_cpu / p_cpu)):
        verdict = "PASS" if value >= TARGET else "FAIL"
        print(f"target protected/unchecked >= {TARGET:.0%} ({name}): {value:.1%} {verdict}")


if __name__ == "__main__":
    main()
