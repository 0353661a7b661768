"""What every command group shares: how a command fails, and how a database failure reads."""

from __future__ import annotations

import re
from typing import NoReturn

import typer

__all__ = ["describe_database_error", "fail"]

# scheme://user:password@host -> scheme://user:***@host
_URL_PASSWORD = re.compile(r"(\w[\w+.-]*://[^:/@\s]*:)[^@\s]*@")


def fail(command: str, message: str, code: int = 2) -> NoReturn:
    """Print ``sealring COMMAND: MESSAGE`` on stderr and exit.

    Exit codes: 2 for anything the user can correct in what they typed or configured (bad
    arguments, an unreadable file, a database that cannot be opened, a name that does not exist),
    1 for an operation that failed on its merits.
    """
    typer.echo(f"sealring {command}: {message}", err=True)
    raise typer.Exit(code)


def describe_database_error(exc: BaseException) -> str:
    """One line naming a database failure: the driver's first line, any URL password masked."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip()
    first = text.splitlines()[0][:200] if text else type(cause).__name__
    return "database error: " + _URL_PASSWORD.sub(r"\1***@", first)
