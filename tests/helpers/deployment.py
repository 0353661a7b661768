"""Real ``sealring serve`` replicas and ``sealring`` CLI runs sharing one PostgreSQL database.

Output goes to files (a full pipe would stall a server), shown when a replica fails to start.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from tests.helpers.ports import free_port

ISSUER = "https://auth.sealring.test"
AUDIENCE = "https://api.sealring.test"
# The compressed schedule. The server refuses a token lifetime under 30 s (settings), so the test
# starts each rotation with `sealring keys rotate` and the replicas' own schedule activates it
# after the pre-publication time (2 x max-age, with unsafe_key_schedule: docs/keys.md).
JWKS_MAX_AGE = 2
TOKEN_LIFETIME = 30


@dataclass
class Replica:
    """One ``sealring serve`` process on its own loopback port."""

    name: str
    port: int
    env: dict[str, str]
    folder: Path
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.close_log()
        self.starts += 1
        self.log = (self.folder / f"{self.name}.{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sealring", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited early:\n{self.output()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{self.name} not ready:\n{self.output()}"
            time.sleep(0.05)

    def sigkill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.close_log()

    def close_log(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None

    def output(self) -> str:
        text = "".join(p.read_text(errors="replace") for p in self.folder.glob(f"{self.name}.*"))
        return text[-4000:]


@dataclass
class Deployment:
    """Replicas behind one issuer, one database, one KEK; plus the operator's CLI."""

    env: dict[str, str]
    folder: Path
    replicas: list[Replica] = field(default_factory=list)

    def add_replicas(self, count: int) -> list[Replica]:
        for i in range(count):
            replica = Replica(f"replica{i}", free_port(), self.env, self.folder)
            self.replicas.append(replica)
            replica.start()
        for replica in self.replicas:
            replica.wait_ready()
        return self.replicas

    def cli(self, *args: str) -> str:
        """Run ``sealring ARGS`` as an operator would; its stdout."""
        done = subprocess.run(
            [sys.executable, "-m", "sealring", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"sealring {' '.join(args)}: {done.stderr}"
        return done.stdout

    def keys(self) -> list[dict[str, object]]:
        infos: list[dict[str, object]] = json.loads(self.cli("keys", "list", "--json"))
        return infos

    def create_client(self) -> tuple[str, str]:
        out = self.cli(
            "clients", "create", "--name", "rotation-e2e", "--audience", AUDIENCE,
            "--scope", "items:read", "--json",
        )  # fmt: skip
        creds = json.loads(out)
        return creds["client_id"], creds["client_secret"]
