"""Items 4 and 9 of issue 14, and completion and --json: the CLI reads like a Unix tool."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sealring.cli import app
from sealring.jose import JWK, LocalSigner, encode_jwt
from tests.helpers.cli import SEALRING, clean_env

runner = CliRunner()
ISSUER = "https://as.example"


def _commands() -> Iterator[tuple[list[str], object]]:
    """Every command of the tree as (path, click command)."""
    root = typer.main.get_command(app)

    def walk(path: list[str], command: object) -> Iterator[tuple[list[str], object]]:
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk([*path, name], sub)

    yield from walk([], root)


ALL_COMMANDS = [path for path, _ in _commands()]


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "sealring")
def test_help_reads_plainly(path: list[str]) -> None:
    for flag in ("--help", "-h"):
        result = runner.invoke(app, [*path, flag])
        assert result.exit_code == 0, result.output
        text = result.stdout
        assert text.startswith(f"Usage: sealring {' '.join(path)}".rstrip() + " ")
        assert "<bool>" not in text
        assert "{" not in text.splitlines()[0]  # no {token}: arguments are TOKEN, CLIENT_ID, ...
        assert "╭" not in text  # no boxes


def test_markup_does_not_swallow_brackets() -> None:
    text = " ".join(runner.invoke(app, ["serve", "--help"]).stdout.split())
    assert "(pip install 'sealring[granian]')" in text


def test_usage_lines_name_arguments_the_unix_way() -> None:
    assert runner.invoke(app, ["verify", "-h"]).stdout.startswith(
        "Usage: sealring verify [OPTIONS] TOKEN\n"
    )
    assert runner.invoke(app, ["keys", "revoke", "-h"]).stdout.startswith(
        "Usage: sealring keys revoke [OPTIONS] [KID]\n"
    )


def test_version() -> None:
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"sealring {version('sealring')}\n")


def test_version_answers_without_importing_the_command_tree() -> None:
    """Issue 11: `sealring --version` <= 0.3 s; the tree (Typer, the server stack) takes more."""
    from importlib.metadata import version

    probe = (
        "import sys; sys.argv = ['sealring', '--version']; from sealring.cli import main; main(); "
        "print(sorted(m for m in ('typer', 'click', 'sealring.cli.commands', 'sqlalchemy') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=clean_env(), check=True
    )
    assert done.stdout == f"sealring {version('sealring')}\n[]\n"
    # Anything else goes through the tree, --version among other arguments included.
    tree = subprocess.run(
        [*SEALRING, "--version", "--help"], capture_output=True, text=True, env=clean_env()
    )
    assert (tree.returncode, tree.stdout) == (0, f"sealring {version('sealring')}\n")


def test_now_means_one_thing() -> None:
    """--now is a time on verify; the rotation's "sign at once" flag is --immediately."""
    rotate_help = runner.invoke(app, ["keys", "rotate", "-h"]).stdout
    assert "--immediately" in rotate_help
    assert "--now" not in rotate_help
    assert "--now EPOCH" in runner.invoke(app, ["verify", "-h"]).stdout


def test_every_listing_has_json() -> None:
    listings = [p for p, c in _commands() if p and p[-1] in ("list", "rotate", "revoke")]
    assert {" ".join(p) for p in listings} == {
        "clients list", "keys list", "keys rotate", "keys revoke", "users list",
    }  # fmt: skip
    for path, command in _commands():
        if path in listings:
            assert "--json" in [o for p in command.params for o in p.opts]  # type: ignore[attr-defined]


def test_completion_for_bash(tmp_path: Path) -> None:
    env = clean_env(_SEALRING_COMPLETE="complete_bash", COMP_WORDS="sealring clients u",
                    COMP_CWORD="2")  # fmt: skip
    done = subprocess.run(["sealring"], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["update"]
    script = subprocess.run(["sealring", "--show-completion", "bash"], env=clean_env(),
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "_SEALRING_COMPLETE=complete_bash" in script.stdout
    assert "complete " in script.stdout


# -- item 4: verify says which checks it did not make -------------------------------------------


@pytest.fixture
def signed(tmp_path: Path) -> tuple[str, Path]:
    key = JWK.generate("ES256")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.to_dict()]}))
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "https://api", "sub": "s", "iat": now, "exp": now + 60}
    token = encode_jwt(claims, LocalSigner(key), typ="at+jwt")
    return token, jwks


def test_verify_names_the_checks_it_skipped(signed: tuple[str, Path]) -> None:
    token, jwks = signed
    result = runner.invoke(app, ["verify", token, "--jwks", str(jwks)])
    assert result.exit_code == 0
    assert result.stderr == (
        "sealring verify: warning: valid, but not checked: iss (--issuer), aud (--audience), "
        "typ (--token-type)\n"
    )
    result = runner.invoke(app, ["verify", token, "--jwks", str(jwks), "--issuer", ISSUER,
                                 "--json"])  # fmt: skip
    assert json.loads(result.stdout)["unchecked"] == ["aud (--audience)", "typ (--token-type)"]
    assert result.stderr.endswith("not checked: aud (--audience), typ (--token-type)\n")
    full = ["--issuer", ISSUER, "--audience", "https://api", "--token-type", "at+jwt"]
    result = runner.invoke(app, ["verify", token, "--jwks", str(jwks), *full, "--json"])
    assert result.exit_code == 0
    assert result.stderr == ""
    assert json.loads(result.stdout)["unchecked"] == []


# -- item 9: error text says each thing once, and names the file --------------------------------


def test_errors_say_it_once_and_name_the_file(tmp_path: Path, signed: tuple[str, Path]) -> None:
    token, _ = signed
    result = runner.invoke(app, ["decode", "a.b"])
    assert (result.exit_code, result.stderr) == (
        1, "sealring decode: malformed token: a compact JWS has exactly three segments\n",
    )  # fmt: skip
    missing = tmp_path / "nope.json"
    result = runner.invoke(app, ["verify", token, "--jwks", str(missing)])
    assert (result.exit_code, result.stderr) == (
        2, f"sealring verify: cannot read JWKS file {missing}: No such file or directory\n",
    )  # fmt: skip
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [{"kty": "oct", "k": "AAAA"}]}))
    result = runner.invoke(app, ["verify", token, "--jwks", str(private)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"sealring verify: the JWKS in {private} is refused: ")
    assert result.stderr.lower().count("refused") == 1
    result = runner.invoke(app, ["verify", "x.y.z", "--jwks", str(signed[1])])
    assert result.exit_code == 1
    assert result.stderr.startswith("sealring verify: invalid token (malformed): ")
    assert result.stderr.count("malformed") == 1


# -- item 9: tables fit their content ---------------------------------------------------------


def test_tables_are_never_cut_in_a_pipe(tmp_path: Path) -> None:
    env = clean_env()
    long_name = "a client with a rather long name that a fixed-width table would cut " * 2
    run = [*SEALRING, "clients", "create", "--name", long_name.strip(), "--scope",
           "items:read items:write admin:everything", "--audience", "https://api.example",
           "--json"]  # fmt: skip
    created = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=120, check=True)  # fmt: skip
    client_id = json.loads(created.stdout)["client_id"]
    listed = subprocess.run([*SEALRING, "clients", "list"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    row = next(line for line in listed.stdout.splitlines() if client_id in line)
    assert long_name.strip() in row
    assert "items:read items:write admin:everything" in row
    keys = subprocess.run([*SEALRING, "keys", "list"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    kids = subprocess.run([*SEALRING, "keys", "list", "--json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    for key in json.loads(kids.stdout):
        line = next(line for line in keys.stdout.splitlines() if key["kid"] in line)
        assert key["alg"] in line
        assert key["state"] in line
