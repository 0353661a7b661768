"""What every command group shares: how a command fails, how a database failure reads, how
usage lines and tables look."""

from __future__ import annotations

import errno
import re
import socket
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperArgument, TyperCommand

from sealring.errors import SealringError
from sealring.keys.config import DEFAULT_DATABASE_URL

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from sealring.server.settings import Settings

__all__ = [
    "DATABASE_URL_HINT",
    "Command",
    "ConfigOpt",
    "DatabaseOpt",
    "JsonOpt",
    "describe_database_error",
    "ensure_port_free",
    "existing_database",
    "fail",
    "load_settings",
    "open_database",
    "print_table",
    "warn",
]

# scheme://user:password@host -> scheme://user:***@host
_URL_PASSWORD = re.compile(r"(\w[\w+.-]*://[^:/@\s]*:)[^@\s]*@")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
#: Said by every --database option: a command line is visible to every local user (issue 10).
DATABASE_URL_HINT = (
    "A password in it shows in `ps`: prefer SEALRING_DATABASE_URL, or a file named by "
    "SEALRING_DATABASE_URL_FILE."
)
#: The --database and --config of every command that opens the server's database.
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database",
        metavar="URL",
        help=f"SQLAlchemy URL (default: $SEALRING_DATABASE_URL, else {DEFAULT_DATABASE_URL}). "
        f"{DATABASE_URL_HINT}",
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        help="The server's TOML settings file (default: $SEALRING_CONFIG).",
        show_default=False,
    ),
]


class Command(TyperCommand):
    """A command whose usage line reads the Unix way: ``sealring verify [OPTIONS] TOKEN``.

    Typer writes a required argument as ``{token}``; here it is its metavar, upper-case, and an
    optional one is in brackets.
    """

    # ``ctx`` is Typer's vendored click Context, which Typer does not export by that name.
    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = (param.metavar or param.name or "ARG").upper()
                if param.nargs != 1:
                    name += "..."
                pieces.append(name if param.required else f"[{name}]")
        return pieces


def fail(command: str, message: str, code: int = 2) -> NoReturn:
    """Print ``sealring COMMAND: MESSAGE`` on stderr and exit.

    Exit codes: 2 for anything the user can correct in what they typed or configured (bad
    arguments, an unreadable file, a database that cannot be opened, a name that does not exist),
    1 for an operation that failed on its merits.
    """
    typer.echo(f"sealring {command}: {message}", err=True)
    raise typer.Exit(code)


def warn(command: str, message: str) -> None:
    """Print ``sealring COMMAND: warning: MESSAGE`` on stderr and carry on."""
    typer.echo(f"sealring {command}: warning: {message}", err=True)


def describe_database_error(exc: BaseException) -> str:
    """One line naming a database failure: the driver's first line, any URL password masked."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip()
    first = text.splitlines()[0][:200] if text else type(cause).__name__
    return "database error: " + _URL_PASSWORD.sub(r"\1***@", first)


def existing_database(command: str, url: str, **engine_options: Any) -> Engine:
    """An engine on a database that exists and is at the current schema, for commands that only
    read: nothing is created or migrated (issue 10: listing is not a write, and a wrong
    ``--database`` changes nothing). Anything else fails with one line, exit 2."""
    from sealring.db import make_engine, schema_is_current, sqlite_path

    path = sqlite_path(url)
    if path is not None and not path.is_file():
        fail(command, f"there is no database {path} (check --database)")
    engine = make_engine(url, **engine_options)
    try:
        current = schema_is_current(engine)
    except Exception as exc:
        engine.dispose()
        fail(command, f"{describe_database_error(exc)} (check --database)")
    if current is not True:
        engine.dispose()
        fail(
            command,
            "the database has no Sealring schema (check --database)"
            if current is None
            else "the database schema is older than this sealring: migrate it (`sealring keys "
            "init`, or start the server), then run this again",
        )
    return engine


def load_settings(command: str, database: str | None, config: Path | None) -> Settings:
    """The server's settings, ``--database`` over them; a bad one fails with one line, exit 2."""
    from sealring.server.settings import Settings

    try:
        return Settings.load({"database_url": database}, config_file=config)
    except SealringError as exc:
        fail(command, exc.message)


@contextmanager
def open_database(
    command: str, url: str, *, read_only: bool = False, **engine_options: Any
) -> Iterator[Engine]:
    """An engine on ``url``, disposed at the end: with ``read_only`` an existing database at the
    current schema (:func:`existing_database`), else one created or migrated to it.  A database
    that cannot be used fails with one line, exit 2."""
    from sealring.db import make_engine, upgrade

    if read_only:
        engine = existing_database(command, url, **engine_options)
    else:
        engine = make_engine(url, **engine_options)
    try:
        if not read_only:
            try:
                upgrade(engine)
            except SealringError as exc:
                fail(command, exc.message)
            except Exception as exc:
                fail(command, f"{describe_database_error(exc)} (check --database)")
        yield engine
    finally:
        engine.dispose()


def ensure_port_free(command: str, host: str, port: int) -> None:
    """Fail with one line, exit 2, when ``host:port`` cannot be bound.

    Checked before anything starts, whatever the worker count: the HTTP servers only find out
    after their start-up has run (and logged "ready"), then exit 3 with a log line. The probe
    binds the way they do (``SO_REUSEADDR``), so a port in TIME_WAIT is not reported as taken.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        fail(command, f"cannot bind {host!r}: not an address or a known host name (--host)")
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fail(command, f"port {port} on {host} is already in use (--port)")
            if exc.errno == errno.EACCES:
                fail(command, f"port {port} on {host} needs more privileges (--port)")
            if exc.errno == errno.EADDRNOTAVAIL:
                fail(command, f"{host} is not an address of this machine (--host)")
            fail(command, f"cannot bind port {port} on {host}: {exc.strerror} (--host, --port)")


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, no_wrap: Sequence[str] = ()
) -> None:
    """A plain table on stdout, as wide as its content.

    On a terminal it is fitted to the terminal's width (the columns not in ``no_wrap`` wrap);
    into a pipe or a file it is never cut, so ``grep`` and ``awk`` see whole lines. Identifiers
    that people copy (client ids, key ids) belong in ``no_wrap``.
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for header in headers:
        table.add_column(header.upper(), no_wrap=header in no_wrap, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console = Console(
        width=None if sys.stdout.isatty() else 100_000,
        highlight=False,
        soft_wrap=False,
        color_system="auto" if sys.stdout.isatty() else None,
    )
    console.print(table)
