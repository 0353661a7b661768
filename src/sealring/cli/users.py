"""``sealring users``: the people who sign in through the login page (docs/login.md).

A password is read from standard input only (``--password-stdin``; at a terminal it is asked
for twice without echo), never taken as an argument, where it would land in the shell history
and the process list, and never printed.  Only its argon2id hash is stored.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from sealring.cli._common import (
    Command,
    ConfigOpt,
    DatabaseOpt,
    JsonOpt,
    fail,
    load_settings,
    open_database,
)

if TYPE_CHECKING:
    from sealring.server.accounts import Account
    from sealring.server.stores.accounts import DatabaseAccountStore

__all__ = ["register"]

users_app = typer.Typer(
    name="users", help="Create and manage the accounts people sign in with.", no_args_is_help=True
)

PasswordStdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]
UserArg = Annotated[
    str, typer.Argument(metavar="USER", help="The username (or the account's sub).")
]


def _fail(message: str) -> NoReturn:
    fail("users", message, 2)


@contextmanager
def _store(
    database: str | None, config: Path | None, *, read_only: bool = False
) -> Iterator[DatabaseAccountStore]:
    """The account store; ``read_only``: of an existing database, not migrated (issue 10)."""
    from sealring.server.accounts import PasswordPolicy
    from sealring.server.stores.accounts import DatabaseAccountStore

    settings = load_settings("users", database, config)
    with open_database(
        "users", settings.database_url, read_only=read_only, hide_parameters=True
    ) as engine:
        yield DatabaseAccountStore(engine, PasswordPolicy())


def _read_password(from_stdin: bool) -> str:
    """The new password: one line of standard input, or typed twice at a terminal."""
    if not from_stdin:
        _fail("a password is read from standard input only: add --password-stdin")
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != first:
            _fail("the two passwords differ")
        return first
    data = sys.stdin.read()
    # One trailing newline belongs to `echo`/a file, not to the password.
    if data.endswith("\r\n"):
        data = data[:-2]
    elif data.endswith("\n"):
        data = data[:-1]
    if "\n" in data or "\r" in data:
        _fail("the password must be a single line")
    if not data:
        _fail("no password on standard input")
    return data


def _find(store: DatabaseAccountStore, user: str) -> Account:
    account = store.by_username(user) or store.find(user)
    if account is None:
        _fail(f"no user {user!r}")
    return account


@users_app.command("create", cls=Command)
def create(
    username: Annotated[
        str, typer.Option("--username", metavar="NAME", help="The name to sign in with.")
    ],
    password_stdin: PasswordStdinOpt = False,
    email: Annotated[
        str | None, typer.Option("--email", metavar="ADDRESS", help="Email address.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", metavar="NAME", help="Full name.")] = None,
    database: DatabaseOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an account; prints its sub, the stable id tokens carry."""
    from sealring.server.stores.accounts import AccountError

    claims: dict[str, object] = {}
    if email is not None:
        if email.count("@") != 1 or any(ch.isspace() for ch in email) or len(email) > 254:
            _fail(f"not an email address: {email!r}")
        claims.update(email=email, email_verified=False)
    if name is not None:
        if not name.strip() or len(name) > 200:
            _fail("a name must be 1 to 200 characters")
        claims["name"] = name.strip()
    password = _read_password(password_stdin)
    with _store(database, config) as store:
        try:
            account = store.create(username, password, claims=claims)
        except AccountError as exc:
            _fail(exc.message)
    if as_json:
        typer.echo(json.dumps({"sub": account.subject, "username": account.username}))
    else:
        typer.echo(f"sub:      {account.subject}")
        typer.echo(f"username: {account.username}")


@users_app.command("list", cls=Command)
def list_users(
    database: DatabaseOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False
) -> None:
    """List accounts (never their password hashes)."""
    with _store(database, config, read_only=True) as store:
        accounts = store.list()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "sub": a.subject,
                        "username": a.username,
                        "claims": dict(a.claims),
                        "disabled": a.disabled,
                    }
                    for a in accounts
                ],
                indent=2,
            )
        )
        return
    if not accounts:
        typer.echo("no users")
        return
    typer.echo(f"{'SUB':24} {'USERNAME':24} {'EMAIL':32} NAME")
    for a in accounts:
        email, full_name = a.claims.get("email", ""), a.claims.get("name", "")
        typer.echo(f"{a.subject:24} {a.username:24} {email!s:32} {full_name!s}")


@users_app.command("show", cls=Command)
def show(user: UserArg, database: DatabaseOpt = None, config: ConfigOpt = None) -> None:
    """Show one account as JSON (whether a password is set, never the hash)."""
    with _store(database, config, read_only=True) as store:
        described = store.describe(_find(store, user).subject)
    typer.echo(json.dumps(described, indent=2))


@users_app.command("delete", cls=Command)
def delete(user: UserArg, database: DatabaseOpt = None, config: ConfigOpt = None) -> None:
    """Delete an account with its sessions, grants and remembered consents."""
    with _store(database, config) as store:
        account = _find(store, user)
        if not store.delete(account.subject):
            _fail(f"no user {user!r}")
    typer.echo(f"deleted {account.username}")


@users_app.command("set-password", cls=Command)
def set_password(
    user: UserArg,
    password_stdin: PasswordStdinOpt = False,
    database: DatabaseOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Replace an account's password (read from standard input)."""
    from sealring.server.stores.accounts import AccountError

    password = _read_password(password_stdin)
    with _store(database, config) as store:
        account = _find(store, user)
        try:
            changed = store.set_password(account.subject, password)
        except AccountError as exc:
            _fail(exc.message)
    if not changed:
        _fail(f"no user {user!r}")
    typer.echo(f"password set for {account.username}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``sealring`` command."""
    app.add_typer(users_app, name="users")
