"""Item 10 of issue 14: the docs agree with the tools.

- docs/configuration.md and docs/cli.md are what scripts/gen_docs.py makes of the code today;
- every ``sealring ...`` command the README and the docs show exists, with the options shown;
- every exit status the docs state is checked here by running the command;
- the docs site's build refuses a broken link (strict mode stays on).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sealring.cli import app
from sealring.jose import JWK, LocalSigner, encode_jwt
from sealring.keys import KEKRing
from tests.helpers.cli import SEALRING, clean_env, free_port

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
runner = CliRunner()


def test_generated_pages_are_current() -> None:
    done = subprocess.run([sys.executable, "scripts/gen_docs.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr


# -- commands --------------------------------------------------------------------------------------

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```$", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`\n]+)`")
STOP = {"|", "||", "&&", "&", ";", "#", ")", "<<"}
OPTION = re.compile(r"^\[?(--[a-z][a-z0-9-]*)")


def _snippets(text: str) -> Iterator[tuple[str, bool]]:
    """(line of code, is_inline) for every fenced line and inline code span."""
    for block in FENCE.findall(text):
        for line in block.splitlines():
            yield line, False
    for span in INLINE.findall(FENCE.sub("", text)):
        yield span, True


def _mentions(
    line: str, inline: bool, root: object
) -> Iterator[tuple[list[str], object, list[str]]]:
    """Each command a line shows: (path, click command, the words after it)."""
    words = line.replace("$(", "$( ").split()
    top = getattr(root, "commands", {})
    if (
        inline
        and words
        and words[0] in top
        and len(words) > 1
        and words[1] in getattr(top[words[0]], "commands", {})
    ):
        words = ["sealring", *words]  # a table cell like `keys rotate [--alg ALG]`
    for i, word in enumerate(words):
        if word.rsplit("/", 1)[-1] != "sealring":
            continue
        command, path, j = root, [], i + 1
        while j < len(words) and words[j] in getattr(command, "commands", {}):
            command = command.commands[words[j]]  # type: ignore[attr-defined]
            path.append(words[j])
            j += 1
        if not path:
            continue  # "sealring µs", "sealring kek id", an error line "sealring serve: ..."
        rest = []
        for word in words[j:]:
            if word in STOP or word.startswith("#"):
                break
            rest.append(word)
        yield path, command, rest


def _all_mentions() -> Iterator[tuple[str, list[str], object, list[str]]]:
    root = typer.main.get_command(app)
    for page in PAGES:
        for line, inline in _snippets(page.read_text()):
            for path, command, rest in _mentions(line, inline, root):
                yield page.name, path, command, rest


def test_the_docs_show_commands() -> None:
    shown = {" ".join(path) for _, path, _, _ in _all_mentions()}
    for expected in ("serve", "clients create", "clients update", "token", "verify", "demo",
                     "keys rotate", "keys reset", "example-api"):  # fmt: skip
        assert expected in shown


def test_every_command_the_docs_show_exists_with_its_options() -> None:
    problems = []
    for page, path, command, rest in _all_mentions():
        known = {
            opt
            for param in getattr(command, "params", [])
            for opt in (*param.opts, *getattr(param, "secondary_opts", ()))
        }
        known |= {"--help", "-h"}
        for word in rest:
            match = OPTION.match(word)
            if match and match[1] not in known:
                problems.append(f"{page}: sealring {' '.join(path)} has no option {match[1]}")
    assert problems == []


# -- exit statuses ---------------------------------------------------------------------------------

EXIT = re.compile(r"\bexit(?:s| status)?(?: with)? ([0-9])\b")


def _exit_claims() -> set[tuple[str, str]]:
    """(page, line) of every prose line that states an exit status."""
    found = set()
    for page in PAGES:
        prose = FENCE.sub("", page.read_text())
        for line in prose.splitlines():
            if EXIT.search(line):
                found.add((page.name, line.strip()))
    return found


def _code(args: list[str], **env: str | None) -> int:
    return runner.invoke(app, args, env=env).exit_code


@pytest.fixture
def token_and_jwks(tmp_path: Path) -> tuple[str, str]:
    key = JWK.generate("ES256")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.to_dict()]}))
    now = int(time.time())
    token = encode_jwt({"iss": "https://as", "aud": "a", "sub": "s", "iat": now, "exp": now + 60},
                       LocalSigner(key), typ="at+jwt")  # fmt: skip
    return token, str(jwks)


def _check_verify_and_decode(tmp_path: Path, token: str, jwks: str) -> None:
    assert _code(["verify", token, "--jwks", jwks]) == 0
    assert _code(["verify", token, "--jwks", jwks, "--audience", "other"]) == 1
    assert _code(["verify", token, "--jwks", str(tmp_path / "missing.json")]) == 2
    assert _code(["decode", "not-a-token"]) == 1


def _check_settings_error(tmp_path: Path, token: str, jwks: str) -> None:
    assert _code(["serve", "--port", "0"]) == 2


def _check_port_in_use(tmp_path: Path, token: str, jwks: str) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = str(held.getsockname()[1])
        assert _code(["serve", "--port", port]) == 2
        api = ["example-api", "--issuer", "https://as", "--audience", "a", "--port", port]
        assert _code(api) == 2


def _check_clients_usage(tmp_path: Path, token: str, jwks: str) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert _code(["clients", "show", "nosuchclient", "--database", db]) == 2
    assert (
        _code(["clients", "create", "--name", "x", "--auth-method", "magic", "--database", db]) == 2
    )


def _check_keys_usage_and_wrong_kek(tmp_path: Path, token: str, jwks: str) -> None:
    db = tmp_path / "sealring.db"
    env = {"SEALRING_KEK": KEKRing.generate_text(), "SEALRING_KEK_FILE": None}
    assert _code(["keys", "list", "--database", f"sqlite:///{db}"], **env) == 2  # reads only
    assert _code(["keys", "init", "--database", f"sqlite:///{db}"], **env) == 0
    assert _code(["keys", "revoke", "nope", "--reason", "x", "--database", f"sqlite:///{db}"],
                 **env) == 2  # fmt: skip
    wrong = {"SEALRING_KEK": KEKRing.generate_text()}
    assert _code(["keys", "list", "--database", f"sqlite:///{db}"], **wrong) == 2
    port = str(free_port())
    served = subprocess.run([*SEALRING, "serve", "--port", port, "--database", f"sqlite:///{db}"],
                            env=clean_env(**wrong), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert served.returncode == 2, served.stderr
    assert "cannot decrypt signing key(s)" in served.stderr


def _check_read_only_commands_refuse_a_missing_database(
    tmp_path: Path, token: str, jwks: str
) -> None:
    db = ["--database", f"sqlite:///{tmp_path / 'none.db'}"]
    for command in (["keys", "list"], ["keys", "show", "k"], ["keys", "export-public"],
                    ["clients", "list"], ["clients", "show", "c"], ["users", "list"],
                    ["users", "show", "u"]):  # fmt: skip
        assert _code([*command, *db]) == 2, command
    assert not (tmp_path / "none.db").exists()


def _check_kek_file_mode_and_clients_kek(tmp_path: Path, token: str, jwks: str) -> None:
    from tests.helpers.postgres import throwaway_database

    kek_file = tmp_path / "kek"
    kek_file.write_text(KEKRing.generate_text())
    kek_file.chmod(0o644)
    env = {"SEALRING_KEK_FILE": str(kek_file), "SEALRING_KEK": None}
    db = ["--database", f"sqlite:///{tmp_path / 'k.db'}"]
    assert _code(["keys", "init", *db], **env) == 2
    assert _code(["serve", "--port", str(free_port()), *db], **env) == 2
    with throwaway_database() as url:
        none = {"SEALRING_KEK": None, "SEALRING_KEK_FILE": None, "SEALRING_SERVER_SECRET": None}
        assert _code(["clients", "create", "--name", "x", "--database", url], **none) == 2


CheckFn = Callable[[Path, str, str], None]
# Every exit-status sentence of the docs, and the check that runs its commands.
CLAIMS: dict[tuple[str, str], CheckFn] = {
    ("jose.md", "`verify` exits 0"): _check_verify_and_decode,
    ("jose.md", "exits 1 on a malformed token"): _check_verify_and_decode,
    ("keys.md", "A wrong KEK stops the start (exit status 2"): _check_keys_usage_and_wrong_kek,
    ("keys.md", "missing KEK included) exit 2"): _check_keys_usage_and_wrong_kek,
    ("server.md", "setting, its source and what is allowed, exit status 2"): _check_settings_error,
    (
        "server.md",
        "anything starts, whatever the worker count, with exit status 2",
    ): _check_port_in_use,
    ("server.md", "print one line `sealring clients: <message>` and exit 2"): _check_clients_usage,
    ("configuration.md", "exit status 2:"): _check_settings_error,
    ("keys.md", "has no current schema is an error (exit 2)"): (
        _check_read_only_commands_refuse_a_missing_database
    ),
    ("server.md", "does not exist or has no current schema they stop with exit 2"): (
        _check_read_only_commands_refuse_a_missing_database
    ),
    ("security.md", "a database that does not exist or has no current schema is exit 2"): (
        _check_read_only_commands_refuse_a_missing_database
    ),
    ("security.md", "`sealring keys` and `sealring serve` exit 2 on it"): (
        _check_kek_file_mode_and_clients_kek
    ),
    ("security.md", "on PostgreSQL without either it stops with exit 2"): (
        _check_kek_file_mode_and_clients_kek
    ),
}


def test_every_stated_exit_status_is_checked() -> None:
    unchecked = [
        f"{page}: {line}"
        for page, line in _exit_claims()
        if not any(page == p and snippet in line for p, snippet in CLAIMS)
    ]
    assert unchecked == [], "add a check to CLAIMS for each"
    stale = [key for key in CLAIMS if not any(p == key[0] and key[1] in line
                                              for p, line in _exit_claims())]  # fmt: skip
    assert stale == []


@pytest.mark.parametrize("check", sorted(set(CLAIMS.values()), key=lambda f: f.__name__),
                         ids=lambda f: f.__name__)  # fmt: skip
def test_stated_exit_statuses_hold(
    check: CheckFn, tmp_path: Path, token_and_jwks: tuple[str, str]
) -> None:
    check(tmp_path, *token_and_jwks)


# -- the site --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_site_build_refuses_a_broken_link(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).with_name("mkdocs")
    copy = tmp_path / "site-src"
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    env = clean_env(NO_MKDOCS_2_WARNING="1")
    build = [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "out")]
    done = subprocess.run(build, cwd=copy, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    page = copy / "docs" / "concepts.md"
    page.write_text(page.read_text() + "\nSee [the keys page](keys.md#no-such-section).\n")
    done = subprocess.run(build, cwd=copy, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "no-such-section" in done.stderr
