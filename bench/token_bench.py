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
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import create_client, sealring_env, sealring_serve, to_ms

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=items:read"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic %s"
"""


def run_one(server: str, workers: int, args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = sealring_env(secrets.token_bytes(32), log_level=args.log_level)
        creds = create_client(home, env)
        options = ["--http-server", server]
        with sealring_serve(server, home, env, creds, workers, options) as live:
            check = httpx.post(
                live.base + "/token",
                data={"grant_type": "client_credentials", "scope": "items:read"},
                headers={"Authorization": "Basic " + live.basic},
            )
            assert check.status_code == 200, check.text
            script = home / "token.lua"
            script.write_text(WRK_SCRIPT % live.basic)
            # Warm-up, then the measured run.
            subprocess.run(
                ["wrk", "-t1", "-c4", "-d2s", "-s", str(script), live.base + "/token"],
                capture_output=True, check=True,
            )  # fmt: skip
            out = subprocess.run(
                ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
                 "-s", str(script), live.base + "/token"],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
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
