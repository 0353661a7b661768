"""Throw-away PostgreSQL clusters and Redis servers that a fault test may stop, hang and resume.

Fault tests never touch the shared services on 5432 and 6379: each starts its own on a free
loopback port, in a temporary folder, and stops it at the end. ``pause`` sends SIGSTOP (the
process keeps its sockets, so clients hang rather than fail), ``resume`` SIGCONT, ``stop`` and
``start`` shut it down and bring it back on the same port with the same data.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tests.helpers.ports import free_port


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def _postgres_bin() -> Path:
    roots = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for root in roots:
        if (root / "initdb").exists():
            return root
    raise FileNotFoundError("PostgreSQL server binaries not found under /usr/lib/postgresql")


class PostgresCluster:
    """A PostgreSQL cluster of its own (initdb), run as the ``postgres`` user when we are root."""

    def __init__(self, root: Path) -> None:
        self.bin = _postgres_bin()
        self.data = root / "data"
        self.port = free_port()
        self.logfile = root / "postgres.log"
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user:
            entry = pwd.getpwnam(self._user)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{root}'\nfsync = off\n"
                "synchronous_commit = off\nfull_page_writes = off\n"
            )

    @property
    def url(self) -> str:
        """A SQLAlchemy URL for the ``postgres`` database of this cluster."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        if self._user:
            command = ("runuser", "-u", self._user, "--", *command)
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.logfile),
            "-w", "-t", "60", "start",
        )  # fmt: skip
        wait_for_port(self.port)

    def stop(self, mode: str = "fast") -> None:
        """Shut the cluster down (``fast`` disconnects clients; ``immediate`` is a crash)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])

    def _signal_all(self, sig: signal.Signals) -> None:
        # The postmaster and every backend: a paused postmaster alone still serves open
        # connections through their backends.
        try:
            leader = self.pid()
        except FileNotFoundError:  # stopped: nothing to signal
            return
        for pid in [*_descendants(leader), leader]:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)

    def pause(self) -> None:
        self._signal_all(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_all(signal.SIGCONT)


class RedisServer:
    """A redis-server of its own on a free loopback port, without persistence."""

    def __init__(self, root: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server not found (apt-get install redis-server)")
        self.binary = binary
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.resume()
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


@contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    with tempfile.TemporaryDirectory(prefix="sealring-pg-") as root:
        cluster = PostgresCluster(Path(root))
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.resume()
            with suppress(subprocess.CalledProcessError):  # the test may have stopped it
                cluster.stop("immediate")


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="sealring-redis-") as root:
        server = RedisServer(Path(root))
        server.start()
        try:
            yield server
        finally:
            server.stop()
