"""Fixtures for the CLI tests: the real ``sealring`` command in a fresh directory.

Each test gets an empty working directory and an environment without any ``SEALRING_*``
variable, as a new user has; servers are real subprocesses on free loopback ports.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import SEALRING, Served, clean_env, free_port, stop, wait_until_ready


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    env = clean_env()
    proc = subprocess.Popen(
        [*SEALRING, "serve", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz", proc)
        yield Served(proc, tmp_path, env, port)
    finally:
        stop(proc)


def have(command: str) -> bool:
    return shutil.which(command) is not None
