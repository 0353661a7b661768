"""Token endpoint throughput and latency: uvicorn vs granian, 1 and 2 workers.

    .venv/bin/python bench/token_bench.py [--duration 10] [--connections 16] [--repeat 3]

Each configuration runs `sealring serve` in a subprocess on a fresh SQLite database in a temp
directory, registers a client_secret_basic client, checks that one request gets a token, then
drives POST /token with wrk (loopback only, bounded by --duration) and prints req/s and the
p50/p99 latency wrk reports.  Rate limiting is switched off for the run; logging stays at the
default level (one JSON line per request) unless --log-level says otherwise.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

SEALRING = [sys.executable, "-m", "sealring"]

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=items:read"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic %s"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not become ready")


def to_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_one(server: str, workers: int, args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEALRING_")}
        env.update(
            SEALRING_KEK=base64.b64encode(secrets.token_bytes(32)).decode(),
            SEALRING_SERVER_SECRET=base64.b64encode(secrets.token_bytes(32)).decode(),
            SEALRING_RATE_LIMIT="0",
            SEALRING_IP_RATE_LIMIT="0",
            SEALRING_LOG_LEVEL=args.log_level,
        )
        created = subprocess.run(
            [*SEALRING, "clients", "create", "--name", "bench", "--scope", "items:read",
             "--audience", "https://api.example", "--json"],
            cwd=tmp, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        creds = json.loads(created.stdout)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [*SEALRING, "serve", "--port", str(port), "--workers", str(workers),
             "--http-server", server],
            cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_ready(base, proc)
            basic = base64.b64encode(f"{creds['client_id']}:{creds['client_secret']}".encode())
            check = httpx.post(
                base + "/token",
                data={"grant_type": "client_credentials", "scope": "items:read"},
                headers={"Authorization": "Basic " + basic.decode()},
            )
            assert check.status_code == 200, check.text
            script = Path(tmp) / "token.lua"
            script.write_text(WRK_SCRIPT % basic.decode())
            # Warm-up, then the measured run.
            subprocess.run(
                ["wrk", "-t1", "-c4", "-d2s", "-s", str(script), base + "/token"],
                capture_output=True, check=True,
            )  # fmt: skip
            out = subprocess.run(
                ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
                 "-s", str(script), base + "/token"],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = to_ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "server": server,
        "workers": workers,
        "req_per_s": round(rps),
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--servers", default="uvicorn,granian")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--log-level", default="info")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds, configurations interleaved; medians shown"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is required (apt-get install wrk)")
    configs = [
        (server, int(w)) for server in args.servers.split(",") for w in args.workers.split(",")
    ]
    results: dict[tuple[str, int], list[dict[str, object]]] = {c: [] for c in configs}
    header = f"{'server':8} {'workers':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}"
    print(header)
    for _ in range(args.repeat):
        for server, workers in configs:  # interleaved, so background load hits all alike
            r = run_one(server, workers, args)
            results[(server, workers)].append(r)
            print(
                f"{r['server']:8} {r['workers']:>7} {r['req_per_s']:>8} {r['p50_ms']:>8} "
                f"{r['p99_ms']:>8} {r['errors']:>8}",
                flush=True,
            )
    if args.repeat > 1:
        print("\nmedians\n" + header)
        for (server, workers), runs in results.items():
            med = {
                k: statistics.median(float(r[k]) for r in runs)
                for k in ("req_per_s", "p50_ms", "p99_ms")
            }  # type: ignore[arg-type]
            errors = sum(int(r["errors"]) for r in runs)  # type: ignore[call-overload]
            print(
                f"{server:8} {workers:>7} {med['req_per_s']:>8.0f} {med['p50_ms']:>8.2f} "
                f"{med['p99_ms']:>8.2f} {errors:>8}"
            )


if __name__ == "__main__":
    main()
