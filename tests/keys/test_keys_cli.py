"""``sealring keys``, and a scan proving that no private material escapes anywhere."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from sealring.cli import app
from sealring.db import make_engine
from sealring.keys import KEKMismatch, KEKRing, KeyManager, RotationPolicy
from sealring.keys.models import SigningKeyRow

runner = CliRunner()


def _run(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["keys", *args], env=env)
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return {
        "SEALRING_DATABASE_URL": database_url,
        "SEALRING_KEK": KEKRing.generate_text(),
        "SEALRING_JWKS_MAX_AGE": "10",
    }


def test_list_rotate_revoke_export(env: dict[str, str]) -> None:
    out = _run(env, "list", code=2)  # listing does not create the database or its keys
    assert "no Sealring schema" in out or "there is no database" in out
    assert "ready: 2 published signing key(s)\n" in _run(env, "init")
    table = _run(env, "list")
    for column in ("kid", "alg", "state", "created", "activates", "retires", "removed"):
        assert column.upper() in table
    listed = json.loads(_run(env, "list", "--json"))
    assert sorted((k["alg"], k["state"]) for k in listed) == [
        ("ES256", "active"),
        ("RS256", "active"),
    ]
    out = _run(env, "rotate", "--alg", "ES256")
    assert "-> pending" in out
    assert "already pending" in _run(env, "rotate", "--alg", "ES256")
    out = _run(env, "rotate", "--alg", "ES256", "--immediately")
    assert "warning: --immediately skips pre-publication" in out
    assert "-> active" in out
    rs256 = next(k["kid"] for k in listed if k["alg"] == "RS256")
    # base64url kids may start with "-": --kid (or "--") keeps them from looking like options
    assert "-> revoked" in _run(env, "revoke", "--reason", "leaked", "--kid", rs256)
    jwks = json.loads(_run(env, "export-public"))
    kids = {k["kid"] for k in jwks["keys"]}
    assert rs256 not in kids
    assert len(kids) == 3
    assert _run(env, "rewrap").startswith("rewrapped 0 key(s)")


def test_usage_errors_exit_2_with_one_line(env: dict[str, str]) -> None:
    out = _run(env, "rotate", "--alg", "HS256", code=2)
    assert (
        out.strip().splitlines()[-1]
        == "sealring keys: algorithm HS256 is not in the rotation policy"
    )
    out = _run(env, "revoke", "nope", "--reason", "x", code=2)
    assert "sealring keys: no key with kid nope" in out
    out = _run(env, "revoke", "--reason", "x", "--", "-not-an-option", code=2)
    assert "sealring keys: no key with kid -not-an-option" in out
    assert "sealring keys: --reason TEXT is required" in _run(env, "revoke", "nope", code=2)
    assert "sealring keys: give the key id once" in _run(env, "revoke", "--reason", "x", code=2)
    out = _run({**env, "SEALRING_KEK": "short"}, "init", code=2)
    assert "sealring keys: KEK #1 is not valid base64" in out or "32 bytes" in out
    out = _run(env, "list", "--database", "mysql://h/db", code=2)
    assert (
        "sealring keys: invalid setting database_url from --database: unsupported database 'mysql'"
        in out
    )
    assert "Traceback" not in out


def test_real_command_on_the_embedded_default(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SEALRING_")}
    cmd = [sys.executable, "-m", "sealring", "keys"]
    done = subprocess.run([*cmd, "list", "--json"], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert not (tmp_path / "sealring.db").exists()  # a read-only command creates nothing
    assert not (tmp_path / "sealring.db.kek").exists()
    done = subprocess.run([*cmd, "init"], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "DEVELOPMENT SETUP" in done.stderr
    assert (tmp_path / "sealring.db").exists()
    assert (tmp_path / "sealring.db.kek").exists()
    done = subprocess.run([*cmd, "revoke", "x"], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def _private_strings(url: str, kek: KEKRing) -> set[str]:
    """Every private JWK member of every stored key, in the encodings a leak could take."""
    found: set[str] = set()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(SigningKeyRow)).all()
    finally:
        engine.dispose()
    for row in rows:
        if row.private_enc is None:
            continue
        private = json.loads(kek.decrypt(row.private_enc, kid=row.kid, alg=row.alg))
        for member in ("d", "p", "q", "dp", "dq", "qi"):
            if member in private:
                raw = base64.urlsafe_b64decode(private[member] + "==")
                found |= {private[member], base64.b64encode(raw).decode(), raw.hex()}
    assert found, "the scan needs some private keys to look for"
    return found


def test_no_private_material_in_logs_errors_jwks_or_cli_output(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    kek_text = KEKRing.generate_text()
    env = {"SEALRING_DATABASE_URL": database_url, "SEALRING_KEK": kek_text}
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for args in (["init"], ["list"], ["list", "--json"], ["rotate"], ["rotate", "--immediately"],
                     ["export-public"], ["rewrap"]):  # fmt: skip
            seen.append(_run(env, *args))
        kek = KEKRing.from_string(kek_text)
        engine = make_engine(database_url)
        try:
            manager = KeyManager(engine, kek=kek, policy=RotationPolicy())
            manager.ensure_ready()
            seen += [manager.jwks().body.decode(), repr(manager.signer("ES256")), repr(kek)]
            seen += [repr(k) for k in manager.list_keys()]
            kid = manager.signer("RS256").kid
            seen.append(_run(env, "revoke", "--kid", kid, "--reason", "scan"))
            wrong = KeyManager(
                engine, kek=KEKRing.from_string(KEKRing.generate_text()), policy=RotationPolicy()
            )
            with pytest.raises(KEKMismatch) as caught:
                wrong.ensure_ready()
            seen += [str(caught.value), repr(caught.value)]
        finally:
            engine.dispose()
        # A KEK that cannot open the keys is configuration: exit 2, as `serve` exits.
        seen.append(_run({**env, "SEALRING_KEK": KEKRing.generate_text()}, "list", code=2))
    seen.append(caplog.text)
    secrets = _private_strings(database_url, kek)
    raw_kek = base64.b64decode(kek_text)
    secrets |= {kek_text, base64.urlsafe_b64encode(raw_kek).decode().rstrip("="), raw_kek.hex()}
    haystack = "\n".join(seen)
    assert "cannot decrypt signing key" in haystack  # the error paths really ran
    for secret in secrets:
        assert secret not in haystack


def test_unopenable_database_is_a_usage_error(env: dict[str, str], tmp_path: Path) -> None:
    out = _run(env, "init", "--database", f"sqlite:///{tmp_path}/no/such/dir/x.db", code=2)
    assert out.strip().splitlines()[-1] == (
        "sealring keys: database error: unable to open database file (check --database)"
    )
    out = _run(env, "list", "--database", f"sqlite:///{tmp_path}/no/such/dir/x.db", code=2)
    assert out.strip().splitlines()[-1].startswith("sealring keys: there is no database ")


def test_keys_commands_follow_the_servers_settings_file(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The same TOML file drives `serve` and `keys`: a PS256 key the server signs with is kept."""
    config = tmp_path / "sealring.toml"
    config.write_text('signing_alg = "PS256"\nkey_algorithms = ["ES256"]\n')
    _run(env, "init", "--config", str(config))
    listed = json.loads(_run(env, "list", "--json", "--config", str(config)))
    assert {k["alg"] for k in listed if k["state"] == "active"} == {"ES256", "PS256"}
    # Without the file the policy is the default one, which has no PS256: the same database
    # then retires that key, so the settings file is what kept it.
    _run(env, "init")
    active = {k["alg"] for k in json.loads(_run(env, "list", "--json")) if k["state"] == "active"}
    assert active == {"ES256", "RS256"}


def test_an_impossible_schedule_is_refused_at_load(env: dict[str, str]) -> None:
    out = _run({**env, "SEALRING_ROTATION_INTERVAL": "5"}, "list", code=2)
    assert (
        out.strip()
        .splitlines()[-1]
        .startswith(
            "sealring keys: invalid key rotation settings: rotation_interval must be longer"
        )
    )
