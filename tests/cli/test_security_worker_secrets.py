"""Issue 10, item 10: `sealring serve --workers N` gives its workers no secret in their
environment or on their command line.

The server secret, the metrics token, the KEK and the database password are set the ways an
operator sets them (environment variables, files, ``--database``); every process below the
server is then read from ``/proc/PID/environ`` and ``/proc/PID/cmdline``. The server answering
token requests and a metrics scrape shows the secrets did reach the workers.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from sealring.keys import KEKRing
from tests.helpers.cli import SEALRING, clean_env, free_port, stop, wait_until_ready


def _descendants(pid: int) -> list[int]:
    """Every process whose ancestry leads to ``pid``."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone meanwhile
        parents[int(stat.parent.name)] = int(text.rsplit(")", 1)[1].split()[1])
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        todo += children
    return found


def _wait_for_workers(pid: int, count: int, timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        workers = [p for p in _descendants(pid) if "resource_tracker" not in _cmdline(p)]
        if len(workers) >= count:
            return _descendants(pid)
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.2)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.parametrize("http_server", ["uvicorn", "granian"])
@pytest.mark.parametrize("through", ["environment", "files and options"])
def test_no_secret_in_any_worker_environment_or_command_line(
    http_server: str, through: str, fresh_postgres_url: str, tmp_path: Path
) -> None:
    password = "pw-" + secrets.token_hex(12)  # PostgreSQL here trusts loopback: any password
    database = fresh_postgres_url.replace("postgres@", f"postgres:{password}@", 1)
    assert password in database
    server_secret = base64.b64encode(secrets.token_bytes(32)).decode()
    metrics_token = secrets.token_urlsafe(32)
    kek = KEKRing.generate_text()
    env = clean_env(SEALRING_METRICS_TOKEN=metrics_token, SEALRING_HTTP_SERVER=http_server)
    options: list[str] = []
    if through == "environment":
        env.update(
            SEALRING_SERVER_SECRET=server_secret, SEALRING_KEK=kek, SEALRING_DATABASE_URL=database
        )
    else:
        for name, value in (("secret", server_secret), ("kek", kek), ("db", database)):
            (tmp_path / name).write_text(value + "\n")
            (tmp_path / name).chmod(0o600)
        env.update(
            SEALRING_SERVER_SECRET_FILE=str(tmp_path / "secret"),
            SEALRING_KEK_FILE=str(tmp_path / "kek"),
            SEALRING_DATABASE_URL_FILE=str(tmp_path / "db"),
        )
    created = subprocess.run(
        [*SEALRING, "clients", "create", "--name", "w", "--audience", "https://api", "--json"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    client = json.loads(created.stdout)
    if through != "environment":
        options = ["--database", database]  # the parent's own command line: the operator's choice
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [*SEALRING, "serve", "--port", str(port), "--workers", "2", *options],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until_ready(url + "/readyz", proc)
        auth = (client["client_id"], client["client_secret"])
        for _ in range(6):  # both workers authenticate with the server secret and sign
            response = httpx.post(
                url + "/token", data={"grant_type": "client_credentials"}, auth=auth, timeout=10
            )
            assert response.status_code == 200, response.text
        scrape = httpx.get(
            url + "/metrics", headers={"Authorization": f"Bearer {metrics_token}"}, timeout=10
        )
        assert scrape.status_code == 200
        children = _wait_for_workers(proc.pid, 2)
        raw_secret = base64.b64decode(server_secret)
        needles = {
            "server secret": [server_secret, base64.urlsafe_b64encode(raw_secret).decode()[:40]],
            "metrics token": [metrics_token],
            "KEK": [kek, kek[:40]],
            "database password": [password],
        }
        for pid in children:
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
            cmdline = _cmdline(pid)
            names = [entry.split("=", 1)[0] for entry in environ.split("\0") if entry]
            assert not [n for n in names if n.startswith("SEALRING_")], (pid, cmdline, names)
            for what, values in needles.items():
                for value in values:
                    assert value not in environ, f"{what} in the environment of {cmdline}"
                    assert value not in cmdline, f"{what} on the command line of {cmdline}"
        assert len(children) >= 2
    finally:
        _out, err = stop(proc)
    assert "Traceback" not in err, err


def test_the_database_url_from_a_file_and_the_help_that_says_so(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sealring.cli import app
    from sealring.server.settings import Settings

    url_file = tmp_path / "db"
    url_file.write_text("postgresql://sealring:pw@db.example/sealring\n")
    settings = Settings.load(environ={"SEALRING_DATABASE_URL_FILE": str(url_file)})
    assert settings.database_url == "postgresql+psycopg://sealring:pw@db.example/sealring"
    both = {"SEALRING_DATABASE_URL_FILE": str(url_file), "SEALRING_DATABASE_URL": "sqlite:///x"}
    assert Settings.load(environ=both).database_url == "sqlite:///x"  # the variable wins
    for command in (["serve"], ["keys", "list"], ["clients", "list"], ["users", "list"]):
        text = " ".join(CliRunner().invoke(app, [*command, "--help"]).output.split())
        assert "shows in `ps`: prefer SEALRING_DATABASE_URL, or a file named by" in text, command
        assert "SEALRING_DATABASE_URL_FILE" in text
    verify_help = " ".join(CliRunner().invoke(app, ["verify", "--help"]).output.split())
    assert "- to read it from stdin (a token given here shows in `ps`)" in verify_help
