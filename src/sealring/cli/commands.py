"""The ``sealring`` command tree; :func:`sealring.cli.main` runs it.

Each area registers its own commands from its own module so that the command tree reads like the
package: ``verify``/``decode``/``jwk`` (JOSE), ``keys`` (signing keys), ``serve``/``clients``/``users``/
``token`` (authorization server), ``example-api`` (resource-server toolkit) and ``demo`` (all of
them together, docs/concepts.md).

Exit codes: 0 success, 1 a verification or operation that failed on its merits, 2 a usage error
(bad arguments, unreadable file, invalid configuration, a port already in use).
"""

from __future__ import annotations

from typing import Annotated

import typer

from sealring.cli import (
    clients,
    demo,
    example_api,
    jose_commands,
    keys,
    package_version,
    serve,
    token,
    users,
)

__all__ = ["app"]

app = typer.Typer(
    name="sealring",
    help="Sealring: JWT authorization server and resource-server toolkit.",
    no_args_is_help=True,
    # --install-completion / --show-completion for bash, zsh, fish and PowerShell.
    add_completion=True,
    pretty_exceptions_enable=False,
    # Plain help, as Unix tools print it: no markup to swallow "[granian]", no boxes.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"sealring {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Sealring: JWT authorization server and resource-server toolkit."""


for _module in (jose_commands, keys, serve, clients, users, token, example_api, demo):
    _module.register(app)
