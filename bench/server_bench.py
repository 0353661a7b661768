"""The authorization server side by side with node-oidc-provider, in one run.

    .venv/bin/python bench/server_bench.py [--rounds 3] [--duration 10] [--connections 64]
                                           [--workers 2] [--no-scaling] [--write]
    .venv/bin/python bench/server_bench.py --smoke      # seconds: both answer, tokens verify
    .venv/bin/python bench/server_bench.py --baseline DIR   # also DIR/src's Sealring, side by side
    .venv/bin/python bench/server_bench.py --granian        # also Sealring on granian, side by side

Starts, on 127.0.0.1 and in a temporary folder, ``sealring serve --workers N`` with production
settings (a random KEK and server secret in the environment, the default SQLite database, rate
limit off) twice, once with the default log level (one JSON access-log line per request) and once
with ``SEALRING_LOG_LEVEL=warning``, and node-oidc-provider 9 from ``bench/node/`` as a cluster of
N processes (in-memory adapter, JWT access tokens through resource indicators, ES256, one
``client_secret_basic`` client; it logs nothing per request). Each round waits for a quiet
machine, then drives every variant of every endpoint with ``wrk -t2 -cC -dD`` in alternating
order: ``POST /token`` (``client_credentials``), the JWKS, the discovery document, and
Sealring's ``/healthz`` (a trivial JSON response on the same stack: its HTTP ceiling). It reports
requests/s, p50/p99, non-2xx responses and the servers' CPU time per request (from /proc, summed
over each server's processes), the medians over rounds and the ratios the targets name. Before
the rounds it checks that a token from each server verifies against that server's JWKS with
Sealring's resource verifier; afterwards it checks a sample again. Unless ``--no-scaling``, it
then measures the token endpoint at 1 and 2 workers and the resident memory of each worker after
60 s of load (``--scaling-only``: that part alone). ``--write`` puts the tables, versions and
this command into docs/benchmarks.md. ``--baseline DIR`` adds a third Sealring, with default
settings, run from another checkout's ``DIR/src`` (``git archive main src | tar -x -C DIR``), to
every endpoint's rotation, and prints this checkout's ratio to it: a before/after comparison in
one run, on the same load. ``--granian`` does the same with this checkout's Sealring served by
granian (``--http-server granian``), the measurement behind the default HTTP server.
Needs ``wrk`` (apt-get install wrk) and node with ``npm ci`` done in bench/node (done for you).
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (  # the benchmarks' shared helpers, found by the path above
    AUDIENCE,
    NODE_DIR,
    SCOPE,
    SEALRING,
    Run,
    Server,
    bench_arguments,
    cpu_seconds,
    create_client,
    ensure_node_packages,
    free_port,
    median_run,
    require_wrk,
    rss_mb,
    sealring_env,
    sealring_serve,
    stop,
    to_ms,
    versions,
    wait_quiet,
    wait_ready,
    write_docs,
)

TOKEN_LUA = """
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=items:read"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic %s"
"""

# The targets of the performance issue, as (what, numerator, denominator, floor).
TARGETS = [
    ("token: Sealring default / node", ("token", "sealring"), ("token", "node"), 1.5),
    ("token: access log on / off", ("token", "sealring"), ("token", "sealring-quiet"), 0.95),
    ("jwks: Sealring / node", ("jwks", "sealring"), ("jwks", "node"), 1.2),
    ("discovery: Sealring / node", ("discovery", "sealring"), ("discovery", "node"), 1.2),
    ("token / Sealring's trivial JSON", ("token", "sealring"), ("healthz", "sealring"), 0.5),
]


def worker_pids(server: Server) -> list[int]:
    """The worker processes under ``server``'s supervisor (not multiprocessing's resource tracker)."""
    pids = []
    for pid in server.pids()[1:]:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmdline:
            pids.append(pid)
    return pids


@contextmanager
def sealring_server(
    name: str,
    workers: int,
    log_level: str | None,
    tmp: Path,
    src: Path | None = None,
    options: Sequence[str] = (),
) -> Iterator[Server]:
    home = tmp / name
    home.mkdir()
    env = sealring_env(secrets.token_bytes(32), **({"log_level": log_level} if log_level else {}))
    if src is not None:  # another checkout's code, ahead of the installed one
        env["PYTHONPATH"] = str(src)
    creds = create_client(home, env)
    with sealring_serve(name, home, env, creds, workers, options) as server:
        yield server


@contextmanager
def node_server(workers: int) -> Iterator[Server]:
    ensure_node_packages()
    client_id, client_secret = "bench", secrets.token_urlsafe(32)
    port = free_port()
    env = {
        **os.environ,
        "PEER_PORT": str(port),
        "PEER_WORKERS": str(workers),
        "PEER_CLIENT_ID": client_id,
        "PEER_CLIENT_SECRET": client_secret,
        "PEER_AUDIENCE": AUDIENCE,
        "NODE_ENV": "production",
    }
    proc = subprocess.Popen(
        ["node", "peer.mjs"], cwd=NODE_DIR, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, "/.well-known/openid-configuration", proc)
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        yield Server("node", base, proc, basic)
    finally:
        stop(proc)


def discover(server: Server) -> None:
    doc = httpx.get(server.base + "/.well-known/openid-configuration").json()
    server.paths = {
        "token": doc["token_endpoint"].removeprefix(server.base),
        "jwks": doc["jwks_uri"].removeprefix(server.base),
        "discovery": "/.well-known/openid-configuration",
        "healthz": "/healthz",
    }


def get_token(server: Server) -> str:
    response = httpx.post(
        server.base + server.paths["token"],
        data={"grant_type": "client_credentials", "scope": SCOPE},
        headers={"Authorization": "Basic " + server.basic},
    )
    assert response.status_code == 200, f"{server.name}: {response.status_code} {response.text}"
    token: str = response.json()["access_token"]
    return token


def check_tokens(server: Server, count: int = 3) -> None:
    """Tokens from ``server`` verify against its own JWKS with Sealring's resource verifier."""
    from sealring.resource import AccessTokenVerifier

    verifier = AccessTokenVerifier(
        server.base, audience=AUDIENCE, jwks_uri=server.base + server.paths["jwks"]
    )
    for _ in range(count):
        claims = verifier.verify(get_token(server))
        assert SCOPE in claims.scopes, (server.name, claims)


def wrk(server: Server, endpoint: str, args: argparse.Namespace, tmp: Path) -> Run:
    url = server.base + server.paths[endpoint]
    command = ["wrk", "-t2", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    if endpoint == "token":
        script = tmp / f"token-{server.name}.lua"
        script.write_text(TOKEN_LUA % server.basic)
        command += ["-s", str(script)]
    pids = server.pids()
    before = cpu_seconds(pids)
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=args.duration + 30
    ).stdout
    used = cpu_seconds(pids) - before
    requests_match = re.search(r"(\d+) requests in", out)
    rps_match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50_match = re.search(r"\s50%\s+(\S+)", out)
    p99_match = re.search(r"\s99%\s+(\S+)", out)
    if not (requests_match and rps_match and p50_match and p99_match):
        raise SystemExit(f"unexpected wrk output:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    count = int(requests_match[1])
    return Run(
        rps=float(rps_match[1]),
        p50_ms=to_ms(p50_match[1]),
        p99_ms=to_ms(p99_match[1]),
        errors=(int(errors[1]) if errors else 0)
        + (sum(int(v) for v in socket_errors.groups()) if socket_errors else 0),
        cpu_us=used / max(count, 1) * 1e6,
    )


PLAN = [
    ("token", ["sealring", "sealring-quiet", "node"]),
    ("jwks", ["sealring", "node"]),
    ("discovery", ["sealring", "node"]),
    ("healthz", ["sealring"]),
]
BASELINE = "baseline"
GRANIAN = "granian"
MARKERS = ("<!-- server_bench:begin -->", "<!-- server_bench:end -->")
HEADING = "Authorization server against node-oidc-provider"


def plan(servers: dict[str, Server]) -> list[tuple[str, list[str]]]:
    """:data:`PLAN`, with the baseline's Sealring and the granian-served one beside this one at
    every endpoint when they run."""
    extra = [name for name in (BASELINE, GRANIAN) if name in servers]
    return [(endpoint, [*names, *extra]) for endpoint, names in PLAN]


def measure_rounds(
    servers: dict[str, Server], args: argparse.Namespace, tmp: Path
) -> tuple[dict[tuple[str, str], list[Run]], list[float]]:
    results: dict[tuple[str, str], list[Run]] = {
        (endpoint, name): [] for endpoint, names in plan(servers) for name in names
    }
    quiet: list[float] = []
    for round_no in range(args.rounds):
        quiet.append(wait_quiet())
        for endpoint, names in plan(servers):
            order = names if round_no % 2 == 0 else list(reversed(names))
            for name in order:
                run = wrk(servers[name], endpoint, args, tmp)
                results[(endpoint, name)].append(run)
                print(
                    f"round {round_no + 1} {endpoint:9} {name:15} {run.rps:9.0f} req/s "
                    f"p50 {run.p50_ms:6.2f} ms p99 {run.p99_ms:6.2f} ms "
                    f"errors {run.errors:4} cpu {run.cpu_us:6.1f} us/req",
                    flush=True,
                )
    return results, quiet


def measure_scaling(args: argparse.Namespace, tmp: Path) -> list[str]:
    """Token endpoint at 1 and 2 workers; resident memory per worker after 60 s of load."""
    lines = ["| workers | req/s | CPU µs per request | p99 ms |", "|---:|---:|---:|---:|"]
    cpu_per_request: dict[int, float] = {}
    for workers in (1, 2):
        with sealring_server(f"scale{workers}", workers, None, tmp) as server:
            discover(server)
            wait_quiet()
            run = wrk(server, "token", args, tmp)
            cpu_per_request[workers] = run.cpu_us
            lines.append(f"| {workers} | {run.rps:,.0f} | {run.cpu_us:.0f} | {run.p99_ms:.1f} |")
            print(lines[-1], flush=True)
            if workers == 2:
                soak = argparse.Namespace(**{**vars(args), "duration": args.memory_seconds})
                wrk(server, "token", soak, tmp)
                workers_rss = [rss_mb(pid) for pid in worker_pids(server)]
    cores = os.cpu_count() or 1
    per_core = 1e6 / cpu_per_request[2]
    lines += [
        "",
        f"Resident memory of each worker process of `sealring serve --workers 2` after "
        f"{args.memory_seconds} s of token load: "
        + ", ".join(f"{mb:.0f} MB" for mb in sorted(workers_rss))
        + f" (target <= 150 MB: {'met' if max(workers_rss) <= 150 else 'not met'}).",
        "",
        f"At {cpu_per_request[2]:.0f} µs of server CPU per token, one core issues about "
        f"{per_core:,.0f} tokens/s; a third worker on a machine with a third free core would add "
        f"about that much, as long as wrk and the workers do not share cores "
        f"(this machine has {cores}).",
    ]
    return lines


def report(
    results: dict[tuple[str, str], list[Run]], quiet: list[float], args: argparse.Namespace
) -> list[str]:
    medians = {key: median_run(runs) for key, runs in results.items()}
    lines = [
        f"`wrk -t2 -c{args.connections} -d{args.duration}s`, {args.rounds} rounds alternating, "
        f"{args.workers} workers or processes per server, machine busy before each round: "
        + ", ".join(f"{b:.0%}" for b in quiet)
        + ".",
        "",
        "| endpoint | server | req/s by round | median req/s | p50 ms | p99 ms | errors | CPU µs/req |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for (endpoint, name), runs in results.items():
        m = medians[(endpoint, name)]
        by_round = " / ".join(f"{r.rps:,.0f}" for r in runs)
        lines.append(
            f"| {endpoint} | {name} | {by_round} | {m.rps:,.0f} | {m.p50_ms:.2f} | "
            f"{m.p99_ms:.2f} | {m.errors} | {m.cpu_us:.0f} |"
        )
    lines += ["", "| target | median of per-round ratios | floor | met |", "|---|---:|---:|---|"]
    for what, num, den, floor in TARGETS:
        ratios = [a.rps / b.rps for a, b in zip(results[num], results[den], strict=True)]
        ratio = statistics.median(ratios)
        lines.append(f"| {what} | {ratio:.2f} | {floor} | {'yes' if ratio >= floor else 'no'} |")
    token = medians[("token", "sealring")]
    lines.append(
        f"| token p99 at {args.connections} connections, default settings | "
        f"{token.p99_ms:.1f} ms | <= 50 ms | {'yes' if token.p99_ms <= 50 else 'no'} |"
    )
    for other, what in ((BASELINE, "baseline"), (GRANIAN, "on granian")):
        if not any(name == other for _, name in results):
            continue
        # CPU per request is the steadier figure on a shared machine: other tenants take
        # throughput from both alike, but add little to the server's own CPU time per request.
        lines += [
            "",
            f"| endpoint | this checkout / {what}: req/s "
            f"| {what} / this checkout: CPU µs per request |",
            "|---|---:|---:|",
        ]
        for endpoint, _ in PLAN:
            pairs = list(
                zip(results[(endpoint, "sealring")], results[(endpoint, other)], strict=True)
            )
            rps = statistics.median(a.rps / b.rps for a, b in pairs)
            cpu = statistics.median(b.cpu_us / a.cpu_us for a, b in pairs)
            lines.append(f"| {endpoint} | {rps:.2f} | {cpu:.2f} |")
    return lines


def version_time() -> str:
    start = time.perf_counter()
    done = subprocess.run([*SEALRING, "--version"], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        return "`sealring --version`: not available in this build"
    return f"`sealring --version` returned in {elapsed:.2f} s (target <= 0.3 s)."


def main() -> None:
    parser = bench_arguments(__doc__)
    parser.add_argument("--memory-seconds", type=int, default=60)
    parser.add_argument("--no-scaling", dest="scaling", action="store_false")
    parser.add_argument(
        "--scaling-only", action="store_true", help="only the 1/2-worker and memory measurement"
    )
    parser.add_argument(
        "--baseline", type=Path, metavar="DIR", help="also run DIR/src's Sealring, for ratios"
    )
    parser.add_argument(
        "--granian",
        action="store_true",
        help="also run Sealring on granian (--http-server granian), for ratios",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="seconds: both servers answer and tokens verify"
    )
    args = parser.parse_args()
    require_wrk(args)
    if args.scaling_only:
        with tempfile.TemporaryDirectory() as tmp_name:
            print("\n".join(measure_scaling(args, Path(tmp_name))))
        return
    with tempfile.TemporaryDirectory() as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        servers = {
            "sealring": stack.enter_context(sealring_server("sealring", args.workers, None, tmp)),
            "node": stack.enter_context(node_server(args.workers)),
        }
        if not args.smoke:
            servers["sealring-quiet"] = stack.enter_context(
                sealring_server("quiet", args.workers, "warning", tmp)
            )
        if args.baseline is not None and not args.smoke:
            src = args.baseline.resolve() / "src"
            if not (src / "sealring").is_dir():
                raise SystemExit(f"--baseline: no sealring package in {src}")
            servers[BASELINE] = stack.enter_context(
                sealring_server(BASELINE, args.workers, None, tmp, src)
            )
        if args.granian and not args.smoke:
            servers[GRANIAN] = stack.enter_context(
                sealring_server(
                    GRANIAN, args.workers, None, tmp, None, ["--http-server", "granian"]
                )
            )
        for server in servers.values():
            discover(server)
            check_tokens(server)
            for endpoint in ("jwks", "discovery", "healthz"):
                if server.name == "node" and endpoint == "healthz":
                    continue  # node-oidc-provider has no such endpoint
                response = httpx.get(server.base + server.paths[endpoint])
                assert response.status_code == 200, (server.name, endpoint, response.status_code)
        if args.smoke:
            print("smoke: both servers answer; tokens from each verify against its JWKS")
            return
        results, quiet = measure_rounds(servers, args, tmp)
        for server in servers.values():
            check_tokens(server, count=1)
        lines = report(results, quiet, args)
        stack.close()
        print("\n".join(lines))
        if args.scaling:
            scaling = measure_scaling(args, tmp)
            lines += ["", "Scaling of the token endpoint (default settings):", "", *scaling]
            print("\n".join(scaling))
        lines += [
            "",
            version_time(),
            "",
            "Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()) + ".",
        ]
        if args.write:
            command = "python bench/server_bench.py " + " ".join(sys.argv[1:])
            write_docs(MARKERS, lines, command.strip(), HEADING)


if __name__ == "__main__":
    main()
