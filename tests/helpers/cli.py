"""Running the real ``sealring`` command as a new user would: a clean environment, a free port,
and waiting for (or stopping) the server it starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.helpers.ports import free_port

__all__ = ["SEALRING", "Served", "clean_env", "free_port", "stop", "wait_until_ready"]

SEALRING = [sys.executable, "-m", "sealring"]


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment minus every SEALRING_* variable, with the venv's bin first
    on PATH so ``sealring`` is the command under test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEALRING_", "CLIENT_"))}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


def wait_until_ready(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"exited {proc.returncode} before ready:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"{url} not ready after {timeout} s"
        time.sleep(0.2)


def stop(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


@dataclass
class Served:
    """``sealring serve`` running in ``cwd`` on the embedded default."""

    proc: subprocess.Popen[str]
    cwd: Path
    env: dict[str, str]
    port: int

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SEALRING, *args], cwd=self.cwd, env=self.env, input=input,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
