"""The ``sealring`` command.

Each area registers its own commands from its own module so that the command tree reads like the
package: ``verify``/``decode``/``jwk`` (JOSE), ``keys`` (signing keys), ``serve``/``clients``
(authorization server) and ``example-api`` (resource-server toolkit).

Exit codes: 0 success, 1 a verification or operation that failed on its merits, 2 a usage error
(bad arguments, unreadable file, invalid configuration).
"""

from __future__ import annotations

import typer

from sealring.cli import clients, example_api, jose_commands, keys, serve

__all__ = ["app", "main"]

app = typer.Typer(
    name="sealring",
    help="Sealring: JWT authorization server and resource-server toolkit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in (jose_commands, keys, serve, clients, example_api):
    _module.register(app)


def main() -> None:
    app()
