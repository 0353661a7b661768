"""Items 2 and 6 of issue 14: credentials a shell can ``eval``, ``sealring token``, a client
without an audience, and ``sealring clients update``."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from typer.testing import CliRunner

from sealring.cli import app
from tests.helpers.cli import SEALRING, Served

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_format_env_is_evaluated_by_a_shell(sqlite_url: str) -> None:
    code, out, err = _run(
        "clients", "create", "--name", "it's mine", "--audience", "https://api.example",
        "--format", "env", "--database", sqlite_url,
    )  # fmt: skip
    assert code == 0, err
    shown = subprocess.run(
        ["bash", "-c", 'eval "$1"; printf "%s\\n%s\\n" "$CLIENT_ID" "$CLIENT_SECRET"', "-", out],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert len(shown) == 2
    client_id, secret = shown
    code, listed, _ = _run("clients", "show", client_id, "--database", sqlite_url)
    assert json.loads(listed)["client_name"] == "it's mine"
    assert len(secret) == 43
    assert "shown only now" in err
    code, _, err = _run(
        "clients", "create", "--name", "x", "--json", "--format", "env", "--database", sqlite_url
    )
    assert code == 2
    assert err == "sealring clients: give --json or --format, not both\n"


def test_a_client_without_audience_is_warned_about(sqlite_url: str) -> None:
    code, out, err = _run("clients", "create", "--name", "x", "--json", "--database", sqlite_url)
    assert code == 0
    client_id = json.loads(out)["client_id"]
    assert err.splitlines()[-1] == (
        f"sealring clients: warning: client {client_id} has no --audience, so it cannot get an "
        f"access token until one is added: sealring clients update {client_id} --audience AUD"
    )
    code, _, err = _run(
        "clients", "create", "--name", "y", "--audience", "https://a", "--database", sqlite_url
    )
    assert code == 0
    assert "warning" not in err


def test_update_changes_every_field_and_checks_them(sqlite_url: str, tmp_path: Path) -> None:
    db = ["--database", sqlite_url]
    code, out, _ = _run("clients", "create", "--name", "svc", "--scope", "a", "--json", *db)
    created = json.loads(out)
    client_id = created["client_id"]

    def shown() -> dict[str, object]:
        result: dict[str, object] = json.loads(_run("clients", "show", client_id, *db)[1])
        return result

    before = shown()
    code, out, err = _run(
        "clients", "update", client_id, "--name", "billing", "--scope", "items:read items:write",
        "--audience", "https://api.example", "--audience", "https://other.example",
        "--redirect-uri", "https://app.example/cb", *db,
    )  # fmt: skip
    assert code == 0, err
    assert out == f"updated {client_id}\n"
    assert "warning" not in err
    after = shown()
    assert after["client_name"] == "billing"
    assert after["scope"] == "items:read items:write"
    assert after["audiences"] == ["https://api.example", "https://other.example"]
    assert after["redirect_uris"] == ["https://app.example/cb"]
    assert after["created_at"] == before["created_at"]

    # a refused value changes nothing
    code, _, err = _run("clients", "update", client_id, "--scope", "bad\x01scope", *db)
    assert code == 2
    assert "scope" in err
    assert shown() == after
    code, _, err = _run("clients", "update", "nosuchclient", "--name", "x", *db)
    assert (code, err) == (2, "sealring clients: no client 'nosuchclient'\n")

    # '' clears a list; the client is then warned about again
    code, _, err = _run("clients", "update", client_id, "--audience", "", *db)
    assert code == 0
    assert shown()["audiences"] == []
    assert "has no --audience" in err

    # to private_key_jwt: the secret goes; back to a secret: a new one, shown once
    jwks = tmp_path / "jwks.json"
    code, out, _ = _run("jwk", "generate", "--alg", "ES256", "--public")
    jwks.write_text(json.dumps({"keys": [json.loads(out)]}))
    code, out, err = _run("clients", "update", client_id, "--jwks", str(jwks), "--json", *db)
    assert code == 0, err
    moved = json.loads(out)
    assert moved["token_endpoint_auth_method"] == "private_key_jwt"
    assert moved["has_jwks"] is True
    assert moved["client_secret"] is None
    code, _, err = _run("clients", "rotate-secret", client_id, *db)
    assert code == 2
    assert "has no secret" in err
    code, out, err = _run(
        "clients", "update", client_id, "--auth-method", "client_secret_post", "--format", "env",
        *db,
    )  # fmt: skip
    assert code == 0, err
    assert f"updated {client_id}\n" in out
    assert "export CLIENT_SECRET=" in out
    back = shown()
    assert back["token_endpoint_auth_method"] == "client_secret_post"
    assert back["has_jwks"] is False
    # a public client has no client_credentials grant; with a redirect URI it gets the user grants
    code, out, err = _run("clients", "update", client_id, "--auth-method", "none", "--json", *db)
    assert code == 0, err
    assert json.loads(out)["grant_types"] == ["authorization_code", "refresh_token"]
    assert json.loads(out)["public"] is True


def _token(
    served: Served, env: dict[str, str], *args: str, stdin: str | None = None
) -> tuple[int, str, str]:
    done = subprocess.run(
        [*SEALRING, "token", "--issuer", served.issuer, *args],
        cwd=served.cwd, env=env, input=stdin, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def test_token_command_and_update_against_a_live_server(served: Served) -> None:
    created = served.run("clients", "create", "--name", "svc", "--scope", "items:read",
                         "--format", "env")  # fmt: skip
    assert created.returncode == 0, created.stderr
    creds = dict(line.removeprefix("export ").split("=", 1) for line in created.stdout.splitlines())
    env = {**served.env, **creds}
    # no audience: the server refuses, and the command says why with exit 1
    code, out, err = _token(served, env, "--scope", "items:read")
    assert (code, out) == (1, "")
    assert err.startswith("sealring token: invalid_target")
    updated = served.run("clients", "update", creds["CLIENT_ID"], "--audience", "https://api")
    assert updated.returncode == 0, updated.stderr
    # the server caches clients for client_cache_ttl (5 s): wait for the change to show
    deadline = time.monotonic() + 20
    while True:
        code, out, err = _token(served, env, "--scope", "items:read")
        if code == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert code == 0, err
    token = out.strip()
    assert token.count(".") == 2
    verified = served.run("verify", token, "--issuer", served.issuer, "--audience",
                          "https://api", "--token-type", "at+jwt", "--json")  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    claims = json.loads(verified.stdout)["claims"]
    assert claims["client_id"] == creds["CLIENT_ID"]
    assert claims["scope"] == "items:read"
    assert creds["CLIENT_SECRET"] not in out + err

    # the secret from stdin instead of the environment
    no_secret = {k: v for k, v in env.items() if k != "CLIENT_SECRET"}
    code, out, err = _token(served, no_secret)
    assert (code, err) == (2, "sealring token: no client secret: set CLIENT_SECRET or use "
                           "--secret-stdin\n")  # fmt: skip
    code, out, err = _token(served, no_secret, "--secret-stdin", "--json",
                            stdin=creds["CLIENT_SECRET"] + "\n")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["token_type"] == "Bearer"
    code, out, err = _token(served, no_secret, "--secret-stdin", stdin="wrong\n")
    assert code == 1
    assert err.startswith("sealring token: invalid_client")


def test_token_refuses_to_send_a_secret_over_plain_http(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["token", "--issuer", "http://as.example"],
        env={"CLIENT_ID": "x", "CLIENT_SECRET": "y"},
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr == (
        "sealring token: --issuer 'http://as.example' must be an https URL "
        "(plain http only on loopback)\n"
    )
