"""The user grants at the token endpoint side by side with node-oidc-provider, in one run.

    .venv/bin/python bench/login_bench.py [--rounds 3] [--duration 10] [--connections 64]
                                          [--workers 2] [--no-postgres] [--write]
    .venv/bin/python bench/login_bench.py --smoke      # seconds: each server exchanges and refreshes

Measures ``POST /token`` with ``grant_type=authorization_code`` (PKCE S256) and with
``grant_type=refresh_token`` (rotated on every use), ``client_secret_basic`` on both sides:

- ``sealring serve --workers N`` with production settings (a random KEK and server secret in the
  environment, rate limit off), once on SQLite (a file in a temporary folder) and once on
  PostgreSQL (a fresh database on 127.0.0.1:5432, dropped afterwards; ``--no-postgres`` skips it);
- node-oidc-provider 9 from ``bench/node/peer_login.mjs``, a cluster of N processes whose codes,
  refresh tokens and grants live in Redis (127.0.0.1:6379, under a key prefix of its own, deleted
  afterwards) through ``bench/node/redis_adapter.mjs``, so a code minted anywhere is redeemable
  at every process.

Every request spends its own code or refresh token, minted just before the timed window (an
authorization code lives at most 60 s on both sides, so each wrk run gets a fresh batch): for
Sealring in this process, through its own stores on the server's database with the server's
secret (``AuthorizationCodeStore.issue``; refresh tokens by redeeming such a code, as the token
endpoint does); for node by ``peer_login.mjs mint``, through the provider's models.  wrk's Lua
script gives each of its threads its own slice of the list and sends each value once.  A run that
uses up its list is repeated with twice as many (its requests/s would be understated).

Each measurement mints, waits for a quiet machine (never so long that a code would expire),
then runs ``wrk -t2 -cC -dD``; the servers alternate A B C / C B A across at least 3 rounds.
Reported: requests/s, p50/p99, non-2xx and socket errors, server CPU µs per request (from /proc,
summed over the server's processes) and the CPU of the store where it is a process of its own
(Redis for node; for Sealring on PostgreSQL the backends of the bench database, with those that
exited during the run), medians over rounds and the per-round ratios Sealring / node.  A few
successful responses from inside each run are kept by the Lua script and checked like the ones
below.

Before the rounds and after them, each server redeems a freshly minted code and refreshes the
result with plain HTTP: 200, an access token that verifies against the server's JWKS with
Sealring's resource verifier (issuer, audience, scope, subject), a new refresh token that works
once and is refused the second time.  ``--write`` puts the tables, versions and the command into
docs/benchmarks.md between its own markers.  Needs ``wrk``, node (``npm ci`` in bench/node is done
for you), Redis and, unless ``--no-postgres``, PostgreSQL.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (  # the benchmarks' shared helpers, found by the path above
    AUDIENCE,
    CLK_TCK,
    NODE_DIR,
    SCOPE,
    Run,
    Server,
    bench_arguments,
    cpu_seconds,
    create_client,
    ensure_node_packages,
    free_port,
    median_run,
    require_wrk,
    sealring_env,
    sealring_serve,
    stop,
    versions,
    wait_quiet,
    wait_ready,
    write_docs,
)

REDIRECT_URI = "https://app.example/callback"
SUBJECT = "bench-user"  # node's account id; Sealring's account has this username
GRANTS = ("code", "refresh")
GRANT_TYPES = {"code": "authorization_code", "refresh": "refresh_token"}
PG_ADMIN_URL = os.environ.get(
    "SEALRING_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SEALRING_BENCH_REDIS", "redis://127.0.0.1:6379/0")
MARKERS = ("<!-- login_bench:begin -->", "<!-- login_bench:end -->")

# One value of the minted list per request, each thread its own slice (wrk gives every thread its
# own Lua state); the first successful responses of each thread are kept as samples; done()
# reports what wrk measured as one JSON line, then the samples, one a line.
LOGIN_LUA = """
local threads, started = {}, 0
function setup(thread)
  thread:set("id", started)
  started = started + 1
  table.insert(threads, thread)
end
function init(args)
  values, sent, exhausted, samples = {}, 0, 0, {}
  local i = 0
  for line in io.lines([[%(file)s]]) do
    if i %% %(threads)d == id then values[#values + 1] = line end
    i = i + 1
  end
end
local headers = {
  ["Authorization"] = "Basic %(basic)s",
  ["Content-Type"] = "application/x-www-form-urlencoded",
}
function request()
  sent = sent + 1
  local value = values[sent]
  if value == nil then
    exhausted = 1
    wrk.thread:stop()
    value = "exhausted"
  end
  return wrk.format("POST", nil, headers, [[%(prefix)s]] .. value .. [[%(suffix)s]])
end
function response(status, headers, body)
  if status == 200 and #samples < %(samples)d then samples[#samples + 1] = body end
end
function done(summary, latency, requests)
  local exhausted_threads = 0
  for _, thread in ipairs(threads) do exhausted_threads = exhausted_threads + thread:get("exhausted") end
  local e = summary.errors
  io.write(string.format(
    'login_bench {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, '
    .. '"status_errors": %%d, "socket_errors": %%d, "exhausted_threads": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout, exhausted_threads))
  for _, thread in ipairs(threads) do
    for _, body in ipairs(thread:get("samples")) do io.write("login_bench_sample ", body, "\\n") end
  end
end
"""
WRK_THREADS = 2
SAMPLES_PER_THREAD = 3
MINT_THREADS = 8
# An authorization code's lifetime on both servers (Sealring's maximum, node's default), seconds.
CODE_LIFETIME = 60


@dataclass
class Pkce:
    """RFC 7636: the verifier the client keeps and the S256 challenge its codes are bound to."""

    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


def grant_form(grant: str, value: str, pkce: Pkce) -> dict[str, str]:
    if grant == "code":
        return {
            "grant_type": "authorization_code",
            "code": value,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
        }
    return {"grant_type": "refresh_token", "refresh_token": value}


@dataclass
class Target:
    """A server under test, how to mint codes and refresh tokens for it, and its store's CPU."""

    server: Server
    pkce: Pkce
    mint: Callable[[str, int], list[str]]
    subject: str
    #: A snapshot of the store's CPU seconds by process (none: SQLite runs inside the server).
    store_cpu: Callable[[], dict[str, float]] = dict


# -- Sealring ---------------------------------------------------------------------------------


class SealringMinter:
    """Codes and refresh tokens made with Sealring's own stores on the server's database."""

    def __init__(self, database_url: str, server_secret: bytes, client_id: str, pkce: Pkce) -> None:
        from sealring.db import make_engine
        from sealring.server.accounts import PasswordPolicy
        from sealring.server.stores import tables  # noqa: F401 - maps oauth_clients for the FKs
        from sealring.server.stores.accounts import DatabaseAccountStore
        from sealring.server.stores.authorization_codes import AuthorizationCodeStore
        from sealring.server.stores.refresh_tokens import RefreshTokenStore
        from sealring.server.tokens.handles import HandleHasher

        self.engine = make_engine(database_url)
        hasher = HandleHasher(server_secret)
        self.codes = AuthorizationCodeStore(self.engine, hasher)
        # The server's default policy: its grants last as long as the ones minted here.
        self.refresh_tokens = RefreshTokenStore(self.engine, hasher, server_secret)
        self.client_id = client_id
        self.pkce = pkce
        # The user who signed in: codes and grants name an existing account (no password: the
        # sign-in itself is not measured).
        accounts = DatabaseAccountStore(self.engine, PasswordPolicy())
        self.subject = accounts.create(SUBJECT, None).subject

    def __call__(self, grant: str, count: int) -> list[str]:
        from sealring.server.stores.authorization_codes import CodeGrant

        def code() -> str:
            now = time.time()
            bound = CodeGrant(
                client_id=self.client_id,
                subject=self.subject,
                session_id=None,
                redirect_uri=REDIRECT_URI,
                redirect_uri_in_request=True,
                scope=(SCOPE,),
                code_challenge=self.pkce.challenge,
                auth_time=now,
                resources=(AUDIENCE,),
            )
            return self.codes.issue(bound, now=now)

        def refresh_token() -> str:
            redeemed = self.codes.redeem(
                code(),
                now=time.time(),
                grant_lifetime=self.refresh_tokens.policy.absolute_lifetime,
                refresh_tokens=self.refresh_tokens,
            )
            assert redeemed.refresh_token is not None
            return redeemed.refresh_token

        # One transaction per value, as the stores do it; a few at a time so that a batch for a
        # 10 s run is ready well within a code's 60 s on PostgreSQL too.
        with ThreadPoolExecutor(MINT_THREADS) as pool:
            return list(
                pool.map(lambda _: (code if grant == "code" else refresh_token)(), range(count))
            )


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one run, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = "sealring_bench_" + secrets.token_hex(4)
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def process_cpu(pid: int) -> tuple[float, float]:
    """(own CPU seconds, CPU seconds of its children that it has reaped), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    own, reaped = int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])
    return own / CLK_TCK, reaped / CLK_TCK


def postgres_cpu(database_url: str) -> Callable[[], dict[str, float]]:
    """CPU of the PostgreSQL backends serving ``database_url``'s database (same host).

    The server's connection pool opens and closes connections under load, so backends come and
    go: the snapshot holds each live backend's CPU and the postmaster's reaped-children CPU, where
    an exited backend's CPU ends up (on a shared machine that also counts other databases').
    """
    from sqlalchemy import create_engine, text

    name = database_url.rsplit("/", 1)[1]

    def snapshot() -> dict[str, float]:
        engine = create_engine(database_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity"
                        " WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
                pids = [int(row[0]) for row in rows]
        finally:
            engine.dispose()
        found = {f"backend {pid}": process_cpu(pid)[0] for pid in pids}
        if pids:
            stat = Path(f"/proc/{pids[0]}/stat").read_text().rsplit(")", 1)[1].split()
            found["postmaster"] = process_cpu(int(stat[1]))[1]
        return found

    return snapshot


def store_cpu_used(before: Mapping[str, float], after: Mapping[str, float]) -> float:
    """CPU seconds between two snapshots; a process that appeared in between counts from zero."""
    return sum(value - before.get(key, 0.0) for key, value in after.items())


@contextmanager
def sealring_login_server(
    name: str, database_url: str, workers: int, tmp: Path
) -> Iterator[Target]:
    home = tmp / name
    home.mkdir()
    server_secret = secrets.token_bytes(32)
    env = sealring_env(server_secret, database_url=database_url)
    creds = create_client(
        home,
        env,
        ["--grant-types", "authorization_code,refresh_token", "--redirect-uri", REDIRECT_URI],
    )
    pkce = Pkce.new()
    minter = SealringMinter(database_url, server_secret, creds["client_id"], pkce)
    try:
        with sealring_serve(name, home, env, creds, workers) as server:
            store_cpu = postgres_cpu(database_url) if database_url.startswith("postgres") else dict
            yield Target(server, pkce, minter, minter.subject, store_cpu)
    finally:
        minter.engine.dispose()


# -- node-oidc-provider -----------------------------------------------------------------------


def redis_cpu() -> dict[str, float]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return {"redis": process_cpu(int(client.info("server")["process_id"]))[0]}
    finally:
        client.close()


def delete_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        batch = []
        for key in client.scan_iter(match=prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)
    finally:
        client.close()


@contextmanager
def node_login_server(workers: int, tmp: Path) -> Iterator[Target]:
    ensure_node_packages()
    client_id, client_secret = "bench", secrets.token_urlsafe(32)
    pkce = Pkce.new()
    prefix = f"sealring-login-bench:{secrets.token_hex(4)}:"
    port = free_port()
    env = {
        **os.environ,
        "PEER_PORT": str(port),
        "PEER_WORKERS": str(workers),
        "PEER_CLIENT_ID": client_id,
        "PEER_CLIENT_SECRET": client_secret,
        "PEER_AUDIENCE": AUDIENCE,
        "PEER_REDIRECT_URI": REDIRECT_URI,
        "PEER_CODE_CHALLENGE": pkce.challenge,
        "PEER_REDIS_URL": REDIS_URL,
        "PEER_REDIS_PREFIX": prefix,
        "NODE_ENV": "production",
    }

    def mint(grant: str, count: int) -> list[str]:
        out = tmp / f"node-mint-{grant}.txt"
        done = subprocess.run(
            ["node", "peer_login.mjs", "mint", grant, str(count), str(out)],
            cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"node mint failed: {done.stderr.strip()}")
        return out.read_text().split()

    proc = subprocess.Popen(
        ["node", "peer_login.mjs"], cwd=NODE_DIR, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, "/.well-known/openid-configuration", proc)
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        yield Target(Server("node", base, proc, basic), pkce, mint, SUBJECT, redis_cpu)
    finally:
        stop(proc)
        delete_prefix(prefix)


# -- checks -----------------------------------------------------------------------------------


def discover(target: Target) -> None:
    server = target.server
    doc = httpx.get(server.base + "/.well-known/openid-configuration").json()
    server.paths = {
        "token": doc["token_endpoint"].removeprefix(server.base),
        "jwks": doc["jwks_uri"].removeprefix(server.base),
    }


def redeem(target: Target, grant: str, value: str) -> httpx.Response:
    server = target.server
    return httpx.post(
        server.base + server.paths["token"],
        data=grant_form(grant, value, target.pkce),
        headers={"Authorization": "Basic " + server.basic},
    )


def token_checker(target: Target) -> Callable[[Mapping[str, Any], str], str]:
    """Checks a token response: an access token that verifies against the server's JWKS with
    Sealring's resource verifier, for the bench user and scope, and a refresh token other than
    the one presented; returns that refresh token."""
    from sealring.resource import AccessTokenVerifier

    server = target.server
    verifier = AccessTokenVerifier(
        server.base, audience=AUDIENCE, jwks_uri=server.base + server.paths["jwks"]
    )

    def check(body: Mapping[str, Any], presented: str) -> str:
        claims = verifier.verify(body["access_token"])
        assert SCOPE in claims.scopes, (server.name, claims)
        assert claims.sub == target.subject, (server.name, claims)
        refresh = body.get("refresh_token")
        assert isinstance(refresh, str), (server.name, "no refresh token")
        assert refresh != presented, (server.name, "the refresh token was not rotated")
        return refresh

    return check


def check_login(target: Target) -> None:
    """A fresh code and a fresh refresh token each give valid tokens; rotation holds."""
    server = target.server
    check = token_checker(target)

    def tokens(response: httpx.Response, presented: str) -> str:
        assert response.status_code == 200, f"{server.name}: {response.status_code} {response.text}"
        return check(response.json(), presented)

    (code,) = target.mint("code", 1)
    first = tokens(redeem(target, "code", code), code)
    tokens(redeem(target, "refresh", first), first)
    # Each of these refusals also revokes the family (RFC 9700 §4.14.2, RFC 6749 §4.1.2).
    reused = redeem(target, "refresh", first)
    assert reused.status_code == 400, (server.name, "refresh reuse", reused.status_code)
    replayed = redeem(target, "code", code)
    assert replayed.status_code == 400, (server.name, "code replay", replayed.status_code)
    (minted,) = target.mint("refresh", 1)
    tokens(redeem(target, "refresh", minted), minted)


# -- measuring --------------------------------------------------------------------------------


@dataclass
class LoginRun:
    run: Run
    store_cpu_us: float
    exhausted: bool
    minted: int
    mint_seconds: float
    busy_before: float | None


def wrk_login(target: Target, grant: str, count: int, duration: float, connections: int,
              tmp: Path, quiet_patience: float | None = None) -> LoginRun:  # fmt: skip
    """Mint ``count`` values, wait for a quiet machine (up to ``quiet_patience`` seconds, and
    never so long that a code would expire during the run), then spend them with wrk for
    ``duration`` seconds."""
    server = target.server
    started = time.monotonic()
    values = target.mint(grant, count)
    minting = time.monotonic() - started
    if grant == "code" and minting + duration > CODE_LIFETIME - 5:
        # The first codes would expire before the run ends: errors that are not the server's.
        raise SystemExit(
            f"{server.name}: minting {count} codes took {minting:.0f} s; with a {duration} s run "
            f"that comes too close to a code's {CODE_LIFETIME} s (use a shorter --duration)"
        )
    busy = None
    if quiet_patience is not None:
        if grant == "code":
            quiet_patience = min(quiet_patience, CODE_LIFETIME - 5 - minting - duration)
        busy = wait_quiet(patience=quiet_patience)
    listing = tmp / f"{server.name}-{grant}.txt"
    listing.write_text("\n".join(values) + "\n")
    form = grant_form(grant, "\0", target.pkce)
    body = "&".join(f"{k}={quote(v, safe='')}" for k, v in form.items())
    prefix, suffix = body.split("%00")
    script = tmp / f"{server.name}-{grant}.lua"
    script.write_text(
        LOGIN_LUA
        % {
            "file": listing,
            "threads": WRK_THREADS,
            "basic": server.basic,
            "prefix": prefix,
            "suffix": suffix,
            "samples": SAMPLES_PER_THREAD,
        }
    )
    pids = server.pids()
    before, store_before = cpu_seconds(pids), target.store_cpu()
    out = subprocess.run(
        ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{duration}s", "-s", str(script),
         server.base + server.paths["token"]],
        capture_output=True, text=True, check=True, timeout=duration + 60,
    ).stdout  # fmt: skip
    used = cpu_seconds(pids) - before
    store_used = store_cpu_used(store_before, target.store_cpu())
    match = re.search(r"^login_bench (\{.*\})$", out, re.M)
    if match is None:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    summary = json.loads(match[1])
    samples = re.findall(r"^login_bench_sample (.*)$", out, re.M)
    if summary["requests"] > summary["status_errors"] and not samples:
        raise SystemExit(f"{server.name} {grant}: wrk kept no sample response")
    check, minted = token_checker(target), set(values)
    for sample in samples:
        # Each sampled response carries valid tokens and a refresh token not among those minted.
        assert check(json.loads(sample), "") not in minted, (server.name, "refresh token reused")
    count_done = max(int(summary["requests"]), 1)
    return LoginRun(
        Run(
            rps=summary["requests"] / (summary["duration_us"] / 1e6),
            p50_ms=summary["p50_us"] / 1000,
            p99_ms=summary["p99_us"] / 1000,
            errors=summary["status_errors"] + summary["socket_errors"],
            cpu_us=used / count_done * 1e6,
        ),
        store_used / count_done * 1e6,
        summary["exhausted_threads"] > 0,
        len(values),
        minting,
        busy,
    )


def measure(
    targets: dict[str, Target], args: argparse.Namespace, tmp: Path
) -> tuple[dict[tuple[str, str], list[LoginRun]], list[float]]:
    names = list(targets)
    # Warm-up (not reported): warms each server and estimates how many values a run spends.
    rate: dict[tuple[str, str], float] = {}
    for grant in GRANTS:
        for name in names:
            count = 3000
            while True:
                warm = wrk_login(targets[name], grant, count, 3, args.connections, tmp)
                if not warm.exhausted:
                    break
                count *= 2
            rate[(grant, name)] = warm.run.rps
            print(f"warm-up {grant:7} {name:15} {warm.run.rps:8.0f} req/s", flush=True)
    results: dict[tuple[str, str], list[LoginRun]] = {(g, n): [] for g in GRANTS for n in names}
    quiet: list[float] = []
    for round_no in range(args.rounds):
        for grant in GRANTS:
            for name in names if round_no % 2 == 0 else list(reversed(names)):
                key = (grant, name)
                count = int(rate[key] * args.duration * 1.5) + 1000
                for _attempt in range(3):
                    run = wrk_login(targets[name], grant, count, args.duration, args.connections,
                                    tmp, args.quiet_patience)  # fmt: skip
                    rate[key] = max(rate[key], run.run.rps)
                    if not run.exhausted:
                        break
                    count *= 2
                else:
                    raise SystemExit(f"{name} {grant}: ran out of minted values three times")
                results[key].append(run)
                assert run.busy_before is not None
                quiet.append(run.busy_before)
                r = run.run
                print(
                    f"round {round_no + 1} {grant:7} {name:15} {r.rps:8.0f} req/s "
                    f"p50 {r.p50_ms:6.2f} ms p99 {r.p99_ms:6.2f} ms errors {r.errors:4} "
                    f"cpu {r.cpu_us:6.0f} us/req store {run.store_cpu_us:5.0f} us/req "
                    f"(minted {run.minted} in {run.mint_seconds:.0f} s)",
                    flush=True,
                )
    return results, quiet


def report(
    results: dict[tuple[str, str], list[LoginRun]],
    quiet: list[float],
    args: argparse.Namespace,
) -> list[str]:
    lines = [
        f"`wrk -t{WRK_THREADS} -c{args.connections} -d{args.duration}s`, {args.rounds} rounds "
        f"alternating, {args.workers} workers or processes per server; machine busy before each "
        f"measurement: {min(quiet):.0%}-{max(quiet):.0%} (median {statistics.median(quiet):.0%}).",
        "",
        "| grant | server | req/s by round | median req/s | p50 ms | p99 ms | errors "
        "| server CPU µs/req | store CPU µs/req |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (grant, name), runs in results.items():
        m = median_run([r.run for r in runs])
        store = statistics.median(r.store_cpu_us for r in runs)
        lines.append(
            f"| {GRANT_TYPES[grant]} | {name} | "
            + " / ".join(f"{r.run.rps:,.0f}" for r in runs)
            + f" | {m.rps:,.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | {m.errors} | "
            f"{m.cpu_us:.0f} | {store:.0f} |"
        )
    lines += [
        "",
        "| ratio (median of per-round ratios) | authorization_code | refresh_token | target |",
        "|---|---:|---:|---|",
    ]
    for name in (n for n in ("sealring-sqlite", "sealring-pg") if (GRANTS[0], n) in results):
        cells = []
        for grant in GRANTS:
            ratios = [
                a.run.rps / b.run.rps
                for a, b in zip(results[(grant, name)], results[(grant, "node")], strict=True)
            ]
            cells.append(f"{statistics.median(ratios):.2f}")
        target = ">= 1.0 both" if name == "sealring-sqlite" else "reported"
        lines.append(f"| {name} / node | {cells[0]} | {cells[1]} | {target} |")
    return lines


def store_versions() -> dict[str, str]:
    import redis
    from sqlalchemy import create_engine, text

    found = {}
    client = redis.Redis.from_url(REDIS_URL)
    try:
        found["redis"] = str(client.info("server")["redis_version"])
    finally:
        client.close()
    engine = create_engine(PG_ADMIN_URL)
    try:
        with engine.connect() as conn:
            found["postgresql"] = str(conn.execute(text("SHOW server_version")).scalar())
    finally:
        engine.dispose()
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    found["ioredis"] = lock["packages"]["node_modules/ioredis"]["version"]
    found["sqlite"] = __import__("sqlite3").sqlite_version
    return found


def main() -> None:
    parser = bench_arguments(__doc__)
    parser.add_argument(
        "--quiet-patience", type=float, default=30.0, help="longest wait for a quiet machine, s"
    )
    parser.add_argument("--no-postgres", dest="postgres", action="store_false")
    parser.add_argument(
        "--smoke", action="store_true", help="seconds: each server exchanges a code and refreshes"
    )
    args = parser.parse_args()
    require_wrk(args)
    with tempfile.TemporaryDirectory() as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        targets = {
            "sealring-sqlite": stack.enter_context(
                sealring_login_server(
                    "sealring-sqlite", f"sqlite:///{tmp / 'sealring.db'}", args.workers, tmp
                )
            ),
            "node": stack.enter_context(node_login_server(args.workers, tmp)),
        }
        if args.postgres and not args.smoke:
            url = stack.enter_context(postgres_database())
            targets["sealring-pg"] = stack.enter_context(
                sealring_login_server("sealring-pg", url, args.workers, tmp)
            )
        for target in targets.values():
            discover(target)
            check_login(target)
        if args.smoke:
            print(
                "smoke: "
                + ", ".join(targets)
                + ": code exchange and refresh answer 200, tokens verify, rotation and replay hold"
            )
            return
        results, quiet = measure(targets, args, tmp)
        for target in targets.values():
            check_login(target)
        lines = report(results, quiet, args)
        print("\n".join(lines))
        found = {**versions(), **store_versions()}
        lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in found.items()) + "."]
        print(lines[-1])
        if args.write:
            command = "python bench/login_bench.py " + " ".join(sys.argv[1:])
            write_docs(MARKERS, lines, command.strip(), "User grants against node-oidc-provider")


if __name__ == "__main__":
    main()
