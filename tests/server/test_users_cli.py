"""``sealring users`` run as a user runs it: the installed command in a child process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sealring.db import make_engine
from sealring.server.accounts import AuthenticationFailed, PasswordPolicy
from sealring.server.stores.accounts import DatabaseAccountStore

PASSWORD = "correct horse battery"


def sealring(*args: str, stdin: str = "", cwd: Path | None = None) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "sealring", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def authenticate(database_url: str, username: str, password: str) -> str:
    engine = make_engine(database_url)
    try:
        return (
            DatabaseAccountStore(engine, PasswordPolicy()).authenticate(username, password).subject
        )
    finally:
        engine.dispose()


def test_users_lifecycle(database_url: str) -> None:
    db = ["--database", database_url]
    code, out, err = sealring(
        "users", "create", "--username", "Alice", "--password-stdin", "--email", "alice@example.com",
        "--name", "Alice Liddell", "--json", *db, stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert code == 0, err
    created = json.loads(out)
    assert created["username"] == "alice"
    sub = created["sub"]
    assert authenticate(database_url, "alice", PASSWORD) == sub

    code, out, err = sealring("users", "list", "--json", *db)
    assert code == 0, err
    assert json.loads(out) == [
        {
            "sub": sub,
            "username": "alice",
            "claims": {
                "email": "alice@example.com",
                "email_verified": False,
                "name": "Alice Liddell",
            },
            "disabled": False,
        }
    ]
    code, out, _ = sealring("users", "list", *db)
    assert sub in out
    assert "alice@example.com" in out

    code, out, _ = sealring("users", "show", "ALICE", *db)
    shown = json.loads(out)
    assert shown["sub"] == sub
    assert shown["password_set"] is True
    assert "argon2" not in out
    assert PASSWORD not in out

    new_password = "a whole new password"
    code, out, err = sealring(
        "users", "set-password", sub, "--password-stdin", *db, stdin=new_password
    )
    assert code == 0, err
    assert new_password not in out + err
    with pytest.raises(AuthenticationFailed):
        authenticate(database_url, "alice", PASSWORD)
    assert authenticate(database_url, "alice", new_password) == sub

    code, out, _ = sealring("users", "delete", "alice", *db)
    assert code == 0
    code, _, err = sealring("users", "show", "alice", *db)
    assert code == 2
    assert err.strip() == "sealring users: no user 'alice'"
    code, out, _ = sealring("users", "list", *db)
    assert out.strip() == "no users"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        ([], PASSWORD, "a password is read from standard input only: add --password-stdin"),
        (["--password-stdin"], "", "no password on standard input"),
        (["--password-stdin"], "one\ntwo\n", "the password must be a single line"),
        (["--password-stdin"], "short\n", "a password must be 8 to 1024 characters"),
        (["--password-stdin", "--email", "nobody"], PASSWORD, "not an email address: 'nobody'"),
    ],
)
def test_create_errors_are_one_line(
    args: list[str], stdin: str, message: str, sqlite_url: str
) -> None:
    code, out, err = sealring(
        "users", "create", "--username", "bob", *args, "--database", sqlite_url, stdin=stdin
    )
    assert code == 2
    assert err.strip() == f"sealring users: {message}"
    assert out == ""
    if stdin:
        assert stdin.strip() not in err


def test_duplicate_username_is_refused(sqlite_url: str) -> None:
    db = ["--database", sqlite_url]
    code, _, err = sealring(
        "users", "create", "--username", "bob", "--password-stdin", *db, stdin=PASSWORD
    )
    assert code == 0, err
    code, _, err = sealring(
        "users", "create", "--username", "BOB", "--password-stdin", *db, stdin=PASSWORD
    )
    assert code == 2
    assert err.strip() == "sealring users: the username 'bob' is taken"


def test_a_password_on_the_command_line_is_refused_and_not_echoed(sqlite_url: str) -> None:
    code, out, err = sealring(
        "users",
        "create",
        "--username",
        "bob",
        "--password",
        "hunter2-secret",
        "--database",
        sqlite_url,
    )
    assert code == 2
    assert "hunter2-secret" not in out + err
    code, out, err = sealring("users", "list", "--database", sqlite_url)
    assert code == 2  # refused before anything was made: there is no database to list
    assert "there is no database" in err


def test_unknown_user_and_bad_database(sqlite_url: str) -> None:
    code, _, err = sealring(
        "users",
        "set-password",
        "ghost",
        "--password-stdin",
        "--database",
        sqlite_url,
        stdin=PASSWORD,
    )
    assert code == 2
    assert err.strip() == "sealring users: no user 'ghost'"
    code, _, err = sealring("users", "delete", "ghost", "--database", sqlite_url)
    assert err.strip() == "sealring users: no user 'ghost'"
    code, _, err = sealring("users", "list", "--database", "mysql://u@h/db")
    assert code == 2
    assert err.startswith("sealring users: ")
    assert "Traceback" not in err
