"""What the server benchmarks share: the servers they start, the load they measure with, the report.

``bench/server_bench.py`` (client credentials, the read endpoints) and ``bench/login_bench.py``
(the user grants) both start ``sealring serve`` with production settings beside
node-oidc-provider, drive them with ``wrk`` and read the servers' CPU time from /proc; the pieces
they have in common live here, once.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "bench" / "node"
DOCS = ROOT / "docs" / "benchmarks.md"
SEALRING = [sys.executable, "-m", "sealring"]
AUDIENCE = "https://api.example"
SCOPE = "items:read"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def busy_fraction(seconds: float = 1.0) -> float:
    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + values[4]
        return sum(values), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


def wait_quiet(limit: float = 0.15, patience: float = 60.0) -> float:
    """Wait until the machine is at most ``limit`` busy; return what was last seen."""
    deadline = time.monotonic() + patience
    busy = busy_fraction()
    while busy > limit and time.monotonic() < deadline:
        busy = busy_fraction()
    return busy


@dataclass
class Server:
    name: str
    base: str
    proc: subprocess.Popen[bytes]
    basic: str
    paths: dict[str, str] = field(default_factory=dict)

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)


def wait_ready(base: str, path: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{base}: server exited with {proc.returncode}")
        try:
            if httpx.get(base + path, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{base}: not ready within 60 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def ensure_node_packages() -> None:
    if shutil.which("node") is None:
        raise SystemExit("node is required for the peer (apt-get install nodejs npm)")
    lock = NODE_DIR / "package-lock.json"
    stamp = NODE_DIR / "node_modules" / ".sealring-lock"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != digest:
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=NODE_DIR, check=True
        )
        stamp.write_text(digest)


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float


def to_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    assert match, value
    return float(match[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match[2]]


def median_run(runs: list[Run]) -> Run:
    return Run(
        rps=statistics.median(r.rps for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        errors=sum(r.errors for r in runs),
        cpu_us=statistics.median(r.cpu_us for r in runs),
    )


def versions() -> dict[str, str]:
    from importlib.metadata import version

    node_pkg = json.loads(
        (NODE_DIR / "node_modules" / "oidc-provider" / "package.json").read_text()
    )
    node_version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    return {
        "sealring": version("sealring"),
        "python": sys.version.split()[0],
        "uvicorn": version("uvicorn"),
        "starlette": version("starlette"),
        "oidc-provider": node_pkg["version"],
        "node": node_version.strip(),
        "wrk": (wrk_version.split("\n", 1)[0] or "wrk").split(" [")[0],
    }


def bench_arguments(doc: str | None) -> argparse.ArgumentParser:
    """The options every server benchmark takes: its load, its rounds, ``--write``, ``--smoke``."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    return parser


def require_wrk(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None and not args.smoke:
        raise SystemExit("wrk is required (apt-get install wrk)")


def sealring_env(server_secret: bytes, **settings: str) -> dict[str, str]:
    """This process's environment without its ``SEALRING_*`` settings, plus production ones: a
    random KEK, ``server_secret``, rate limits off, and ``settings`` (``SEALRING_`` + name)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALRING_")}
    env.update(
        SEALRING_KEK=base64.b64encode(secrets.token_bytes(32)).decode(),
        SEALRING_SERVER_SECRET=base64.b64encode(server_secret).decode(),
        SEALRING_RATE_LIMIT="0",
        SEALRING_IP_RATE_LIMIT="0",
    )
    env.update({f"SEALRING_{name.upper()}": value for name, value in settings.items()})
    return env


def create_client(home: Path, env: dict[str, str], options: Sequence[str] = ()) -> dict[str, str]:
    """``sealring clients create`` for the bench's audience and scope: its JSON (id and secret)."""
    created = subprocess.run(
        [*SEALRING, "clients", "create", "--name", "bench", "--scope", SCOPE,
         "--audience", AUDIENCE, *options, "--json"],
        cwd=home, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if created.returncode != 0:
        raise SystemExit(f"{home.name}: sealring clients create failed: {created.stderr.strip()}")
    creds: dict[str, str] = json.loads(created.stdout)
    return creds


@contextmanager
def sealring_serve(
    name: str,
    home: Path,
    env: dict[str, str],
    creds: dict[str, str],
    workers: int,
    options: Sequence[str] = (),
) -> Iterator[Server]:
    """``sealring serve --workers N [options]`` on a free loopback port, once ready; stopped
    afterwards."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [*SEALRING, "serve", "--port", str(port), "--workers", str(workers), *options],
        cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_ready(base, "/readyz", proc)
        basic = base64.b64encode(f"{creds['client_id']}:{creds['client_secret']}".encode())
        yield Server(name, base, proc, basic.decode())
    finally:
        stop(proc)


def write_docs(markers: tuple[str, str], lines: list[str], command: str, heading: str) -> None:
    """Put ``lines`` and ``command`` between ``markers`` in docs/benchmarks.md (a new section
    titled ``heading`` at the end when the markers are not there yet)."""
    begin, end = markers
    block = "\n".join([begin, "", f"Command: `{command}`", "", *lines, "", end])
    text = DOCS.read_text()
    if begin in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + f"\n\n## {heading}\n\n" + block + "\n"
    DOCS.write_text(text)
