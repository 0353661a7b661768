"""Item 3 of issue 14: a port already in use is one line and exit 2, before anything starts."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli import SEALRING, clean_env, free_port


def _held_port() -> tuple[socket.socket, int]:
    """A real listening socket on a free loopback port, as another server would hold it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", free_port()))
    sock.listen()
    return sock, sock.getsockname()[1]


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_serve_on_a_port_in_use(tmp_path: Path, workers: int) -> None:
    held, port = _held_port()
    with held:
        done = subprocess.run(
            [*SEALRING, "serve", "--port", str(port), "--workers", str(workers)],
            cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"sealring serve: port {port} on 127.0.0.1 is already in use (--port)\n"
    assert done.stdout == ""
    # refused before anything started: no database, no KEK, no "ready" line
    assert list(tmp_path.iterdir()) == []


def test_example_api_on_a_port_in_use(tmp_path: Path) -> None:
    held, port = _held_port()
    with held:
        done = subprocess.run(
            [*SEALRING, "example-api", "--issuer", "http://127.0.0.1:9", "--audience",
             "https://api.example", "--port", str(port)],
            cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"sealring example-api: port {port} on 127.0.0.1 is already in use (--port)\n"
    )


def test_a_port_that_is_free_again_is_accepted() -> None:
    """The probe binds like the HTTP servers (SO_REUSEADDR): a closed port is not "in use"."""
    from sealring.cli._common import ensure_port_free

    held, port = _held_port()
    held.close()
    ensure_port_free("serve", "127.0.0.1", port)  # does not exit


def test_a_host_that_is_not_ours(tmp_path: Path) -> None:
    done = subprocess.run(
        [*SEALRING, "serve", "--host", "192.0.2.1", "--port", str(free_port()),
         "--issuer", "https://as.example"],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == "sealring serve: 192.0.2.1 is not an address of this machine (--host)\n"
