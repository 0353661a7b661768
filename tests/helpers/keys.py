"""Keys-layer test helpers: a short rotation policy, waiting on worker processes."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from sealring.keys import RotationPolicy

# Short, valid timings keep the clock arithmetic readable: pre-publication 20 s, retention
# 100 + 10 + 10 = 120 s, rotation every 1000 s.
POLICY = RotationPolicy(
    algorithms=("ES256",),
    rotation_interval=1000,
    jwks_max_age=10,
    max_token_lifetime=100,
    leeway=10,
)


Spawn = Callable[..., subprocess.Popen[str]]


def wait_for(path: Path, procs: list[subprocess.Popen[str]], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"worker exited early: {proc.communicate()[1]}")
        assert time.monotonic() < deadline, f"timed out waiting for {path.name}"
        time.sleep(0.01)
