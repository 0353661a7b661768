"""``sealring clients`` and ``sealring serve`` as a user runs them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from authlib.integrations.requests_client import OAuth2Session
from typer.testing import CliRunner

from sealring.cli import app
from sealring.keys import KEKRing

runner = CliRunner()


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_clients_lifecycle(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server secret the clients' hashes use is sealed under the KEK, as the server's is.
    monkeypatch.setenv("SEALRING_KEK", KEKRing.generate_text())
    db = ["--database", database_url]
    code, out, err = _run(
        "clients", "create", "--name", "billing", "--scope", "a b", "--audience", "https://api",
        "--audience", "https://other", "--json", *db,
    )  # fmt: skip
    assert code == 0, err
    created = json.loads(out)
    client_id, secret = created["client_id"], created["client_secret"]
    assert len(secret) >= 43

    code, out, _ = _run("clients", "list", *db)
    assert code == 0
    assert client_id in out
    assert "billing" in out
    assert secret not in out
    code, out, _ = _run("clients", "list", "--json", *db)
    assert json.loads(out)[0]["audiences"] == ["https://api", "https://other"]
    code, out, _ = _run("clients", "show", client_id, *db)
    shown = json.loads(out)
    assert shown["scope"] == "a b"
    assert shown["token_endpoint_auth_method"] == "client_secret_basic"
    assert secret not in out

    code, out, _ = _run("clients", "rotate-secret", client_id, "--json", *db)
    assert code == 0
    assert json.loads(out)["client_secret"] != secret

    code, out, err = _run(
        "clients", "create", "--name", "api", "--audience", "https://api", "--introspect", *db
    )
    assert code == 0, err
    assert sum(c["introspect"] for c in json.loads(_run("clients", "list", "--json", *db)[1])) == 1
    code, _, err = _run("clients", "create", "--name", "api", "--introspect", *db)
    assert code == 2
    assert "introspect permission" in err

    code, out, _ = _run("clients", "delete", client_id, *db)
    assert code == 0
    code, _, err = _run("clients", "show", client_id, *db)
    assert code == 2
    assert err.strip() == f"sealring clients: no client {client_id!r}"


def test_private_key_jwt_and_public_clients(sqlite_url: str, tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}))  # fmt: skip
    code, out, _ = _run(
        "clients", "create", "--name", "k", "--jwks", str(jwks), "--json", "--database", sqlite_url
    )
    assert code == 0
    assert json.loads(out)["client_secret"] is None
    code, out, _ = _run("clients", "create", "--name", "p", "--public", "--database", sqlite_url)
    assert code == 0
    assert "client_secret" not in out
    public_id = out.split()[1]
    code, _, err = _run("clients", "rotate-secret", public_id, "--database", sqlite_url)
    assert code == 2
    assert "no secret" in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--name", "x", "--auth-method", "magic"], "auth method"),
        (["--name", "x", "--grant-types", "password"], "not supported"),
        (["--name", "x", "--jwks", "/nonexistent.json"], "cannot read"),
        (["--name", "x", "--jwks-uri", "http://evil.example/j"], "https"),
        (["--name", "x", "--database", "mysql://u@h/db"], "database_url"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], fragment: str, sqlite_url: str) -> None:
    if "--database" not in args:
        args = [*args, "--database", sqlite_url]
    code, out, err = _run("clients", "create", *args)
    assert code == 2
    assert fragment in err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1


def test_bad_jwks_file(sqlite_url: str, tmp_path: Path) -> None:
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [{"kty": "oct", "k": "AAAA"}]}))
    code, _, err = _run(
        "clients", "create", "--name", "x", "--jwks", str(private), "--database", sqlite_url
    )
    assert code == 2
    assert "JWK Set" in err


def test_serve_rejects_invalid_settings() -> None:
    code, _out, err = _run("serve", "--port", "0")
    assert code == 2
    assert (
        err.strip()
        == "sealring serve: invalid setting port from --port: 0 is not an integer from 1 to 65535"
    )
    code, _, err = _run("serve", "--issuer", "http://public.example.com")
    assert code == 2
    assert "https" in err
    assert "Traceback" not in err
    code, _, err = _run("serve", "--database", "bogus://x")
    assert code == 2
    assert err.startswith("sealring serve: invalid setting database_url from --database: ")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.slow
@pytest.mark.parametrize(
    ("workers", "http_server"), [(1, "auto"), (2, "auto"), (2, "granian"), ("auto", "auto")]
)
def test_sealring_serve_on_the_embedded_default(
    tmp_path: Path, workers: int | str, http_server: str
) -> None:
    """`sealring serve` in a fresh directory: SQLite file, development KEK, keys on first start."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALRING_")}
    sealring = [sys.executable, "-m", "sealring"]
    proc = subprocess.Popen(
        [
            *sealring,
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--http-server",
            http_server,
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.2)
        created = subprocess.run(
            [*sealring, "clients", "create", "--name", "svc", "--audience", "https://api", "--json"],
            cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        creds = json.loads(created.stdout)
        with OAuth2Session(creds["client_id"], creds["client_secret"]) as oauth:
            token = oauth.fetch_token(base + "/token", grant_type="client_credentials")
        assert token["token_type"] == "Bearer"
        assert (tmp_path / "sealring.db").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert f"issuer http://127.0.0.1:{port}" in out
    count = len(os.sched_getaffinity(0)) if workers == "auto" else workers
    assert f"{count} worker(s) on {'granian' if http_server == 'granian' else 'uvicorn'}" in out
    assert "DEVELOPMENT SETUP" in err
    assert creds["client_secret"] not in out + err
    assert token["access_token"] not in out + err
    assert "Traceback" not in err
    # The access log, written by each worker's own thread, has the token request's line.
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(
        r["msg"] == "request"
        and r["path"] == "/token"
        and r["status"] == 200
        and r["client_id"] == creds["client_id"]
        for r in records
    ), err


def test_client_ids_are_safe_on_a_command_line() -> None:
    """Ids are letters and digits: never read as an option, never escaped in a URL."""
    from sealring.server.clients import new_client_id

    ids = {new_client_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"[a-z2-7]{26}", i) for i in ids)
